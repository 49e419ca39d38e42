//! What an operator meets before and around the daemon: `tidewatch
//! validate`, environment variables in configs, JSON logs, and secrets
//! kept out of every output.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{
    FLAG_EVERY_EVENT_STREAM, Nisshi, free_port, http_get, log_text, run_config, stderr, tidewatch,
    wait_for,
};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn validate(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["validate", "--config"])
        .arg(config)
        .args(extra)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A shipped daemon config with its stream configs found in this checkout
/// (the container images put them under /etc/tidewatch/examples).
fn shipped_config(dir: &Path, text: &str, brokers: Option<&str>) -> PathBuf {
    let examples = repo("examples").display().to_string();
    let mut text = text
        .replace("/etc/tidewatch/examples", &examples)
        .replace("config = \"", &format!("config = \"{examples}/"))
        .replace(&format!("{examples}/{examples}"), &examples);
    if let Some(brokers) = brokers {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("brokers = "))
            .unwrap()
            .to_owned();
        text = text.replace(&line, &format!("brokers = \"{brokers}\""));
    }
    let path = dir.join(format!("run-{}.toml", free_port()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_shipped_config_validates() {
    let dir = tempfile::tempdir().unwrap();
    let configmap: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo("deploy/k8s/configmap.yaml")).unwrap())
            .unwrap();
    let shipped = [
        std::fs::read_to_string(repo("examples/run.toml")).unwrap(),
        std::fs::read_to_string(repo("deploy/docker/run.toml")).unwrap(),
        configmap["data"]["run.toml"].as_str().unwrap().to_owned(),
    ];
    // The files alone.
    for text in &shipped {
        let config = if text.contains("/etc/tidewatch") {
            shipped_config(dir.path(), text, None)
        } else {
            repo("examples/run.toml")
        };
        let output = validate(&config, &["--no-environment"], &[]);
        assert!(output.status.success(), "{}", stderr(&output));
        let report = stdout(&output);
        assert!(
            report.contains("stream pump: sensor-readings (json) -> flags tidewatch-flags"),
            "{report}"
        );
        assert!(report.ends_with("ok\n"), "{report}");
    }
    // And against a broker that has their topics.
    let broker = Nisshi::start();
    for topic in [
        "sensor-readings",
        "payments",
        "tidewatch-flags",
        "tidewatch-dead-letters",
    ] {
        broker.create_topic(topic, 2);
    }
    for text in &shipped {
        let config = shipped_config(dir.path(), text, Some(&broker.brokers()));
        let output = validate(&config, &[], &[]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
}

#[test]
fn validate_lists_every_problem_and_exits_78() {
    let broker = Nisshi::start();
    broker.create_topic("flags", 1);
    broker.create_topic("dead-letters", 1);
    let dir = tempfile::tempdir().unwrap();
    // Three mistakes: no worker, a stream config that is not there, and an
    // input topic the broker does not have.
    let config = run_config(&broker.brokers(), "checked", None, "workers = 0");
    let path = dir.path().join("run.toml");
    std::fs::write(&path, config.replace("stream.toml", "missing.toml")).unwrap();
    let second = dir.path().join("second.toml");
    std::fs::write(dir.path().join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &second,
        format!(
            "{text}\n[[streams]]\nconfig = \"stream.toml\"\ninput_topic = \"no-such-topic\"\n\
             flags_topic = \"flags\"\ndead_letter_topic = \"dead-letters\"\n"
        ),
    )
    .unwrap();
    let output = validate(&second, &[], &[]);
    assert_eq!(output.status.code(), Some(78), "{}", stderr(&output));
    let problems = stderr(&output);
    let lines: Vec<&str> = problems.lines().collect();
    assert_eq!(lines.len(), 3, "{problems}");
    assert!(
        lines[0].contains("daemon.workers must be in [1, 1024], got 0"),
        "{problems}"
    );
    assert!(
        lines.iter().any(|l| l.contains("missing.toml")),
        "{problems}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("input topic \"no-such-topic\" does not exist")),
        "{problems}"
    );
    // Without the environment, the broker's part is not asked.
    let output = validate(&second, &["--no-environment"], &[]);
    assert_eq!(output.status.code(), Some(78));
    assert_eq!(stderr(&output).lines().count(), 2, "{}", stderr(&output));
}

#[test]
fn an_unset_variable_stops_start_up_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    let path = dir.path().join("run.toml");
    std::fs::write(
        &path,
        run_config("${TW_TEST_BROKERS}", "g", None, "workers = 1"),
    )
    .unwrap();
    let output = tidewatch(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("${TW_TEST_BROKERS} is not set"),
        "{}",
        stderr(&output)
    );
    // With it set (and a default for another), the config is read.
    std::fs::write(
        &path,
        run_config(
            "${TW_TEST_BROKERS}",
            "${TW_TEST_GROUP:-tidewatch}",
            None,
            "workers = 1",
        ),
    )
    .unwrap();
    let output = validate(
        &path,
        &["--no-environment"],
        &[("TW_TEST_BROKERS", "kafka-9:9092")],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("brokers kafka-9:9092, group tidewatch,"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_password_from_the_environment_appears_in_no_log_metric_or_report() {
    const PASSWORD: &str = "hunter2-Tw9q";
    let broker = Nisshi::start();
    for topic in ["readings", "flags", "dead-letters"] {
        broker.create_topic(topic, 1);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    let config = run_config(&broker.brokers(), "secret", None, "workers = 1").replace(
        "properties = {",
        "properties = { \"sasl.password\" = \"${TW_TEST_PASSWORD}\", \"sasl.username\" = \"tw\",",
    );
    let path = dir.path().join("run.toml");
    std::fs::write(&path, config).unwrap();
    let log = dir.path().join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["run", "--log-format", "json", "--config"])
        .arg(&path)
        .env("TIDEWATCH_LOG", "debug")
        .env("TW_TEST_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (readings, _) = tidewatch::simulate::simulate_readings(2, 100, 100, 1);
    support::produce_readings(&broker.brokers(), "readings", &readings, Duration::ZERO);
    let mut address = String::new();
    wait_for(Duration::from_secs(120), "events scored", || {
        assert!(daemon.try_wait().unwrap().is_none(), "{}", log_text(&log));
        http_address_json(&log).is_some_and(|http| {
            address = http;
            support::metric(&address, "tidewatch_events_scored_total{stream=\"pump\"}") >= 200.0
        })
    });
    let metrics = http_get(&address, "/metrics").1;
    let report = validate(&path, &[], &[("TW_TEST_PASSWORD", PASSWORD)]);
    assert!(report.status.success(), "{}", stderr(&report));
    let report = stdout(&report);
    assert!(report.contains("sasl.password = [redacted]"), "{report}");
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    daemon.wait().unwrap();

    let logs = log_text(&log);
    // Every line is one JSON object with the fields a log pipeline reads.
    for line in logs.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for field in ["timestamp", "level", "target", "message"] {
            assert!(event.get(field).is_some(), "no {field}: {line}");
        }
    }
    assert!(logs.lines().count() > 5, "{logs}");
    for (what, text) in [
        ("log", &logs),
        ("/metrics", &metrics),
        ("validate", &report),
    ] {
        assert!(!text.contains(PASSWORD), "the password is in the {what}");
    }
}

/// The HTTP address a daemon logged as JSON once it was listening.
fn http_address_json(log: &Path) -> Option<String> {
    log_text(log).lines().find_map(|line| {
        let event: serde_json::Value = serde_json::from_str(line).ok()?;
        (event["message"] == "serving /metrics, /healthz and /readyz")
            .then(|| event["address"].as_str().map(str::to_owned))?
    })
}
