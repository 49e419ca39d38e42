//! The status page in a real browser: headless Chromium (Debian's
//! `chromium`, installed by scripts/test.sh) loads `/` of a daemon fed by
//! the simulator, its script fills in the streams and the flags, and a
//! screenshot is saved (to `TIDEWATCH_SCREENSHOT` when set: the README's
//! `docs/status-page.png` is made that way).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tidewatch::models::LearnedModels;
use tidewatch_runtime::config::RunConfig;
use tidewatch_runtime::daemon;
use tidewatch_runtime::metrics::Metrics;

use support::{Nisshi, http_get, run_config, wait_for};

const CHROMIUM_INSTALL: &str = "sudo apt-get install chromium";

/// Debian's `chromium`, or a failure that says how to get it.
fn chromium() -> PathBuf {
    ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| {
            let output = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            let path = String::from_utf8(output.stdout).ok()?;
            (!path.trim().is_empty()).then(|| PathBuf::from(path.trim()))
        })
        .unwrap_or_else(|| panic!("chromium is missing: {CHROMIUM_INSTALL}"))
}

/// Headless Chromium on `url` with `args`, given time for the page's
/// script to fetch and render.
fn headless(chromium: &Path, url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_status_page_shows_streams_and_flags_in_a_browser() {
    let chromium = chromium();
    let broker = Nisshi::start();
    for (topic, partitions) in [("readings", 2), ("flags", 1), ("dead-letters", 1)] {
        broker.create_topic(topic, partitions);
    }
    let dir = tempfile::tempdir().unwrap();
    // The shipped sensor stream, learning from each pump's first 300
    // readings instead of 750, so that the page fills within seconds.
    let sensor =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sensor.toml"))
            .unwrap()
            .replace("[online]\n", "[online]\nwarmup_events = 300\n");
    assert!(sensor.contains("warmup_events = 300"));
    std::fs::write(dir.path().join("stream.toml"), sensor).unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        run_config(&broker.brokers(), "status", None, "workers = 1"),
    )
    .unwrap();
    let metrics = Metrics::new();
    let handle = daemon::start(
        RunConfig::load(&dir.path().join("run.toml")).unwrap(),
        Arc::new(LearnedModels),
        metrics,
    )
    .unwrap();
    let address = handle.http_address().to_string();
    let mut simulator = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["simulate", "--stream", "sensor", "--keys", "4"])
        .args(["--events-per-key", "3000", "--clean-events", "400"])
        .args(["--events-per-second", "1000", "--topic", "readings"])
        .args(["--brokers", &broker.brokers()])
        .arg("--truth")
        .arg(dir.path().join("truth.jsonl"))
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(180), "flags on /api/status", || {
        let (status, body) = http_get(&address, "/api/status");
        status == 200 && !body.contains("\"recent_flags\":[]")
    });

    let url = format!("http://{address}/");
    let mut dom = String::new();
    wait_for(Duration::from_secs(60), "a flag row in the page", || {
        dom = headless(&chromium, &url, &["--dump-dom"]);
        dom.contains("class=\"flag-row\"")
    });
    assert!(dom.contains("pump — readings"), "the stream's card");
    assert!(dom.contains("flags in the last hour"));
    let screenshot = std::env::var_os("TIDEWATCH_SCREENSHOT").map_or_else(
        || Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png"),
        PathBuf::from,
    );
    headless(
        &chromium,
        &url,
        &[
            &format!("--screenshot={}", screenshot.display()),
            "--window-size=1280,900",
        ],
    );
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG"),
        "a PNG at {}",
        screenshot.display()
    );

    let _ = simulator.kill();
    let _ = simulator.wait();
    handle.shutdown();
    handle.join().unwrap();
}
