//! Each key's state survives a SIGKILL, a rebalance and a model reload, on
//! a real broker (Nisshi, installed by scripts/test.sh).
//!
//! The daemons run as processes and are read through `/metrics`:
//! `tidewatch_events_learning_total` counts the events absorbed by keys
//! still warming up, so a key that kept its state adds nothing to it.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tidewatch::simulate::{Reading, Truth, simulate_readings};
use tidewatch_runtime::sink::alert::Flag;

use support::{
    DaemonProcess, Nisshi, free_port, http_address, http_get, log_text, metric, read_topic,
    run_config, settled_offsets, tidewatch, wait_for,
};

const PARTITIONS: i32 = 3;
const INPUT: &str = "readings";

/// Devices that learn online from their first 150 readings and then judge
/// with the stream's default detection.
const ONLINE_STREAM: &str = r#"
[schema]
name = "pump"
key_field = "device"
timestamp_field = "timestamp"
features = [{ name = "temperature" }, { name = "pressure" }]

[model]
window_len = 8
burn_in_steps = 2
forecaster = { cell = "gru", hidden_size = 4 }
autoencoder = { hidden_widths = [4, 2] }

[training]
max_epochs = 3

[online]
warmup_events = 150
"#;

const LEARNING: &str = "tidewatch_events_learning_total{stream=\"pump\"}";
const RESTORED: &str = "tidewatch_keys_restored_total{stream=\"pump\"}";

fn broker() -> Nisshi {
    let broker = Nisshi::start();
    broker.create_topic(INPUT, PARTITIONS);
    broker.create_topic("dead-letters", 1);
    broker
}

/// A daemon config in `dir` for `group`, with its own flags topic and
/// changelog, checkpointing every 200 ms; returns its path.
fn write_config(
    dir: &Path,
    broker: &Nisshi,
    group: &str,
    stream: &str,
    model: Option<&str>,
) -> PathBuf {
    std::fs::write(dir.join("stream.toml"), stream).unwrap();
    broker.create_topic(&format!("flags-{group}"), 1);
    let config = run_config(
        &broker.brokers(),
        group,
        model,
        "workers = 2\ncheckpoint_interval_ms = 200\nshutdown_timeout_secs = 20",
    )
    .replace(
        "flags_topic = \"flags\"",
        &format!("flags_topic = \"flags-{group}\"\nstate_topic = \"state-{group}\""),
    );
    let path = dir.join(format!("{group}-{}.toml", free_port()));
    std::fs::write(&path, config).unwrap();
    path
}

fn produce(broker: &Nisshi, readings: &[Reading]) {
    support::produce_readings(&broker.brokers(), INPUT, readings, Duration::ZERO);
}

/// Every input offset up to `count` messages, read back.
fn input_offsets(broker: &Nisshi, count: usize) -> BTreeSet<(String, i32, i64)> {
    let offsets: BTreeSet<_> = read_topic(
        &broker.brokers(),
        INPUT,
        PARTITIONS,
        count,
        Duration::from_secs(60),
    )
    .into_iter()
    .map(|m| (INPUT.to_owned(), m.partition, m.offset))
    .collect();
    assert_eq!(offsets.len(), count, "input messages read back");
    offsets
}

/// Waits until the daemons logging to `logs` settled the first `count`
/// input messages: scored, flagged and checkpointed, all acknowledged.
fn wait_settled(broker: &Nisshi, logs: &[&Path], count: usize) {
    let expected = input_offsets(broker, count);
    wait_for(
        Duration::from_secs(300),
        "every offset to be settled",
        || {
            logs.iter()
                .flat_map(|log| settled_offsets(log))
                .collect::<BTreeSet<_>>()
                .is_superset(&expected)
        },
    );
}

/// Starts a daemon and waits until `/readyz` says it is ready (its keys
/// restored); returns it with its HTTP address.
fn start_ready(config: &Path, log: &Path) -> (DaemonProcess, String) {
    let mut daemon = DaemonProcess::start(config, log);
    let mut address = String::new();
    wait_for(Duration::from_secs(120), "the daemon to be ready", || {
        assert!(daemon.still_running(), "exited:\n{}", log_text(log));
        http_address(log).is_some_and(|http| {
            address = http;
            std::net::TcpStream::connect(&address).is_ok() && http_get(&address, "/readyz").0 == 200
        })
    });
    (daemon, address)
}

fn flags(broker: &Nisshi, group: &str) -> Vec<Flag> {
    // Every flag there is: read until the topic has been quiet for a while.
    read_topic(
        &broker.brokers(),
        &format!("flags-{group}"),
        1,
        usize::MAX,
        Duration::from_secs(5),
    )
    .iter()
    .map(|m| m.json())
    .collect()
}

/// For each injected anomaly starting at or after `from_ms`, whether a
/// flag caught it.
fn caught(truth: &[Truth], flags: &[Flag], from_ms: i64) -> Vec<(String, i64, bool)> {
    truth
        .iter()
        .filter(|t| t.start_ms >= from_ms)
        .map(|t| {
            let hit = flags.iter().any(|f| {
                f.key == t.key && (t.start_ms..=t.caught_until_ms).contains(&f.timestamp_ms)
            });
            (t.key.clone(), t.start_ms, hit)
        })
        .collect()
}

#[test]
fn a_killed_daemon_restarts_with_its_keys_state_and_no_second_warm_up() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let (readings, truth) = simulate_readings(4, 1000, 400, 5);
    let split = 1600;
    let restart_ms = readings[split].timestamp;

    // The reference: one daemon that reads the whole stream uninterrupted.
    let reference = write_config(dir.path(), &broker, "reference", ONLINE_STREAM, None);
    let (mut whole, _) = start_ready(&reference, &dir.path().join("reference.log"));

    // The daemon under test learns, is killed once its keys have warmed up
    // and every event is checkpointed, and restarts.
    let config = write_config(dir.path(), &broker, "killed", ONLINE_STREAM, None);
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));
    let (first, first_http) = start_ready(&config, &first_log);
    produce(&broker, &readings[..split]);
    wait_settled(&broker, &[&first_log], split);
    let learned = metric(&first_http, LEARNING);
    assert!(
        learned >= 4.0 * 150.0,
        "the keys warmed up first: {learned}"
    );
    first.signal("KILL");
    drop(first);

    let (mut second, second_http) = start_ready(&config, &second_log);
    assert_eq!(metric(&second_http, RESTORED), 4.0, "every key restored");
    produce(&broker, &readings[split..]);
    wait_settled(&broker, &[&first_log, &second_log], readings.len());
    assert_eq!(
        metric(&second_http, LEARNING),
        0.0,
        "a restored key learns nothing again"
    );
    assert_eq!(
        metric(
            &second_http,
            "tidewatch_keys_restore_refused_total{reason=\"model\",stream=\"pump\"}"
        ),
        0.0
    );
    second.signal("TERM");
    assert!(second.wait(Duration::from_secs(60)).success());
    whole.signal("TERM");
    assert!(whole.wait(Duration::from_secs(60)).success());

    let after_restart = |flags: Vec<Flag>| -> Vec<Flag> {
        flags
            .into_iter()
            .filter(|f| f.timestamp_ms >= restart_ms)
            .collect()
    };
    let restarted = after_restart(flags(&broker, "killed"));
    let uninterrupted = after_restart(flags(&broker, "reference"));
    let expected = caught(&truth, &uninterrupted, restart_ms);
    assert!(
        expected.iter().any(|(_, _, hit)| *hit),
        "the uninterrupted run catches anomalies after the restart point: {expected:?}"
    );
    assert_eq!(caught(&truth, &restarted, restart_ms), expected);
    let times = |flags: &[Flag]| -> BTreeSet<(String, i64)> {
        flags
            .iter()
            .map(|f| (f.key.clone(), f.timestamp_ms))
            .collect()
    };
    assert_eq!(
        times(&restarted),
        times(&uninterrupted),
        "the restarted daemon flags exactly what the uninterrupted one does"
    );
}

#[test]
fn keys_move_with_their_partitions_when_a_daemon_joins_and_leaves() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let (readings, _) = simulate_readings(8, 500, 300, 9);
    let config = write_config(dir.path(), &broker, "pair", ONLINE_STREAM, None);
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));

    let (mut a, http_a) = start_ready(&config, &log_a);
    produce(&broker, &readings[..2400]);
    wait_settled(&broker, &[&log_a], 2400);
    let learned = metric(&http_a, LEARNING);
    assert!(learned >= 8.0 * 150.0, "the keys warmed up: {learned}");

    // B joins and takes some partitions: their keys come with their state.
    let (mut b, http_b) = start_ready(&config, &log_b);
    wait_for(Duration::from_secs(60), "B to restore keys", || {
        metric(&http_b, RESTORED) > 0.0
    });
    produce(&broker, &readings[2400..3200]);
    wait_settled(&broker, &[&log_a, &log_b], 3200);
    assert!(
        !settled_offsets(&log_b).is_empty(),
        "B scores its partitions"
    );
    assert_eq!(
        metric(&http_b, LEARNING),
        0.0,
        "B's keys did not warm up again"
    );
    assert_eq!(metric(&http_a, LEARNING), learned, "A's keys neither");

    // B leaves: A takes every partition back, keys and all.
    let restored_before = metric(&http_a, RESTORED);
    b.signal("TERM");
    assert!(b.wait(Duration::from_secs(60)).success());
    wait_for(Duration::from_secs(60), "A to restore B's keys", || {
        metric(&http_a, RESTORED) >= restored_before + 8.0
    });
    produce(&broker, &readings[3200..]);
    wait_settled(&broker, &[&log_a, &log_b], readings.len());
    assert_eq!(metric(&http_a, LEARNING), learned, "no key warmed up again");
    a.signal("TERM");
    assert!(a.wait(Duration::from_secs(60)).success());
}

#[test]
fn evicted_keys_leave_the_changelog_and_a_bad_record_costs_only_its_key() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let (readings, _) = simulate_readings(3, 300, 300, 4);
    // One worker keeps two keys: the device that goes quiet is evicted.
    let config = write_config(dir.path(), &broker, "evict", ONLINE_STREAM, None);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("workers = 2", "workers = 1\nmax_keys = 2");
    std::fs::write(&config, text).unwrap();
    // A record this build cannot read, waiting in the changelog.
    broker.create_topic("state-evict", PARTITIONS);
    let producer = support::producer(&broker.brokers());
    support::send(
        &producer,
        "state-evict",
        "ghost",
        b"TWKS\x63 from the future",
    );
    support::flush(&producer);

    let log = dir.path().join("daemon.log");
    let (mut daemon, http) = start_ready(&config, &log);
    assert_eq!(
        metric(
            &http,
            "tidewatch_keys_restore_refused_total{reason=\"version\",stream=\"pump\"}"
        ),
        1.0
    );
    assert_eq!(metric(&http, RESTORED), 0.0);
    let quiet = "pump-3";
    let (early, late) = readings.split_at(300);
    produce(&broker, early);
    wait_settled(&broker, &[&log], early.len());
    let still: Vec<Reading> = late.iter().filter(|r| r.device != quiet).cloned().collect();
    produce(&broker, &still);
    wait_settled(&broker, &[&log], early.len() + still.len());
    wait_for(Duration::from_secs(60), "an eviction", || {
        metric(
            &http,
            "tidewatch_key_evictions_total{reason=\"max_keys\",stream=\"pump\"}",
        ) >= 1.0
    });
    daemon.signal("TERM");
    assert!(daemon.wait(Duration::from_secs(60)).success());

    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", broker.brokers());
    let kept: BTreeSet<String> = (0..PARTITIONS)
        .flat_map(|p| {
            tidewatch_runtime::changelog::read_partition(
                &client,
                "state-evict",
                p,
                Duration::from_secs(60),
            )
            .unwrap()
            .into_keys()
        })
        .collect();
    assert_eq!(
        kept,
        BTreeSet::from(["ghost".to_owned(), "pump-1".to_owned(), "pump-2".to_owned()]),
        "the evicted key's record is gone; the unreadable one was left alone"
    );
}

/// A stream whose every scored event is flagged, so that each flag shows
/// the model that scored it.
const BUNDLE_STREAM: &str = r#"
[schema]
name = "pump"
key_field = "device"
timestamp_field = "timestamp"
features = [{ name = "temperature" }, { name = "pressure" }]

[model]
window_len = 6
burn_in_steps = 2
forecaster = { cell = "gru", hidden_size = 4 }
autoencoder = { hidden_widths = [4, 2] }

[detect.threshold]
kind = "fixed"
value = 0.0

[detect.hygiene]
min_consecutive = 1
cooldown_events = 0
"#;

/// Trains a bundle on `readings` with training seed `seed`; returns its
/// directory.
fn train(dir: &Path, readings: &[Reading], seed: u64) -> PathBuf {
    let data = dir.join("train.jsonl");
    let lines: Vec<String> = readings
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let config = dir.join(format!("train-{seed}.toml"));
    std::fs::write(
        &config,
        format!("{BUNDLE_STREAM}\n[training]\nmax_epochs = 2\nseed = {seed}\n"),
    )
    .unwrap();
    let out = dir.join(format!("bundle-{seed}"));
    let path = |p: &Path| p.display().to_string();
    let output = tidewatch(&[
        "train",
        "--quiet",
        "--input",
        &path(&data),
        "--schema",
        &path(&config),
        "--out",
        &path(&out),
    ]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    out
}

/// Replaces the files of bundle directory `to` with those of `from`.
fn copy_bundle(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn sighup_reloads_the_bundle_and_a_corrupt_one_is_refused() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let (readings, _) = simulate_readings(3, 400, 400, 3);
    let (first, second) = (
        train(dir.path(), &readings, 1),
        train(dir.path(), &readings, 2),
    );
    let version = |bundle: &Path| -> String {
        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(bundle.join("manifest.json")).unwrap())
                .unwrap();
        manifest["model_version"].as_str().unwrap().to_owned()
    };
    let (v1, v2) = (version(&first), version(&second));
    assert_ne!(v1, v2);
    let live = dir.path().join("model");
    copy_bundle(&first, &live);

    let config = write_config(dir.path(), &broker, "reload", BUNDLE_STREAM, Some("model"));
    let log = dir.path().join("daemon.log");
    let (mut daemon, http) = start_ready(&config, &log);
    // The versions on the flags of the events settled since the last call.
    let mut seen = BTreeSet::new();
    let mut new_versions = || -> BTreeSet<String> {
        flags(&broker, "reload")
            .into_iter()
            .filter(|f| seen.insert((f.source.partition, f.source.offset)))
            .map(|f| f.model.version)
            .collect()
    };
    produce(&broker, &readings[..300]);
    wait_settled(&broker, &[&log], 300);
    assert_eq!(new_versions(), BTreeSet::from([v1.clone()]));

    copy_bundle(&second, &live);
    daemon.signal("HUP");
    wait_for(Duration::from_secs(60), "the reload", || {
        metric(
            &http,
            "tidewatch_model_reloads_total{result=\"loaded\",stream=\"pump\"}",
        ) == 1.0
    });
    produce(&broker, &readings[300..600]);
    wait_settled(&broker, &[&log], 600);
    assert_eq!(new_versions(), BTreeSet::from([v2.clone()]));

    // A damaged bundle: refused, and the running model goes on.
    std::fs::write(live.join("manifest.json"), "{ not a manifest").unwrap();
    daemon.signal("HUP");
    wait_for(Duration::from_secs(60), "the refusal", || {
        metric(
            &http,
            "tidewatch_model_reloads_total{result=\"refused\",stream=\"pump\"}",
        ) == 1.0
    });
    produce(&broker, &readings[600..]);
    wait_settled(&broker, &[&log], readings.len());
    assert_eq!(new_versions(), BTreeSet::from([v2.clone()]));
    assert_eq!(http_get(&http, "/readyz").0, 200, "still ready");
    assert_eq!(
        metric(
            &http,
            &format!("tidewatch_model_info{{name=\"pump\",stream=\"pump\",version=\"{v2}\"}}")
        ),
        1.0
    );
    assert!(log_text(&log).contains("model reload refused"));
    daemon.signal("TERM");
    assert!(daemon.wait(Duration::from_secs(60)).success());
}
