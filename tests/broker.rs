//! The daemon against a real broker (Nisshi, installed by scripts/test.sh):
//! flags and dead letters, and at-least-once delivery across SIGKILL,
//! SIGTERM and a consumer group of two.
//!
//! Delivery is read from the daemons' own trace of settled offsets (target
//! `tidewatch::settled`): an offset is settled once its event went through
//! the whole pipeline and its flag, if any, was acknowledged.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use tidewatch::jobs::demo::{
    DEAD_LETTER_TOPIC, DemoEvent, DemoOptions, FLAGS_TOPIC, PAYMENTS_TOPIC, SENSOR_TOPIC, run_demo,
};
use tidewatch::simulate::simulate_readings;
use tidewatch_runtime::sink::alert::Flag;

use support::{
    DaemonProcess, FLAG_EVERY_EVENT_STREAM, Nisshi, committed_offsets, flush, free_port,
    http_address, http_get, log_text, next_offsets, producer, read_topic, run_config, send,
    settled_offsets, wait_for,
};

const PARTITIONS: i32 = 3;
const INPUT: &str = "readings";

/// A daemon config for `group` in `dir`, serving HTTP on a port of its own
/// choosing (see [`support::http_address`]); returns its path.
fn write_config(dir: &Path, brokers: &str, group: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    let config = run_config(
        brokers,
        group,
        None,
        "workers = 1\nshutdown_timeout_secs = 20",
    );
    let path = dir.join(format!("{group}-{}.toml", free_port()));
    std::fs::write(&path, config).unwrap();
    path
}

/// A broker with the delivery tests' topics.
fn broker() -> Nisshi {
    let broker = Nisshi::start();
    broker.create_topic(INPUT, PARTITIONS);
    broker.create_topic("flags", 1);
    broker.create_topic("dead-letters", 1);
    broker
}

/// Produces readings `range` of a fixed simulated stream (6 devices, 6000
/// readings).
fn produce_readings(brokers: &str, range: std::ops::Range<usize>) {
    produce_readings_paced(brokers, range, Duration::ZERO);
}

/// As [`produce_readings`], pausing `pause` after every 50 readings.
fn produce_readings_paced(brokers: &str, range: std::ops::Range<usize>, pause: Duration) {
    let (readings, _) = simulate_readings(6, 1000, 200, 11);
    support::produce_readings(brokers, INPUT, &readings[range], pause);
}

/// Every (topic, partition, offset) of the first `count` input messages,
/// read back (Nisshi's high watermarks lag behind, so they are not used).
fn all_offsets(brokers: &str, count: usize) -> BTreeSet<(String, i32, i64)> {
    let offsets: BTreeSet<_> =
        read_topic(brokers, INPUT, PARTITIONS, count, Duration::from_secs(60))
            .into_iter()
            .map(|m| (INPUT.to_owned(), m.partition, m.offset))
            .collect();
    assert_eq!(offsets.len(), count, "input messages read back");
    offsets
}

fn settled_in(logs: &[&Path]) -> BTreeSet<(String, i32, i64)> {
    logs.iter().flat_map(|log| settled_offsets(log)).collect()
}

fn wait_until_settled(logs: &[&Path], expected: &BTreeSet<(String, i32, i64)>) {
    wait_for(
        Duration::from_secs(240),
        "every offset to be settled",
        || settled_in(logs).is_superset(expected),
    );
}

#[test]
fn sigkill_mid_stream_then_restart_leaves_no_offset_unscored() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &broker.brokers(), "killed");
    let (first_log, second_log) = (dir.path().join("first.log"), dir.path().join("second.log"));

    // The stream is still coming when the first daemon is killed.
    let brokers = broker.brokers();
    let producing = std::thread::spawn(move || {
        produce_readings_paced(&brokers, 0..6000, Duration::from_millis(40));
    });
    let first = DaemonProcess::start(&config, &first_log);
    wait_for(
        Duration::from_secs(240),
        "the first daemon to settle 1500 events",
        || settled_offsets(&first_log).len() >= 1500,
    );
    first.signal("KILL");
    drop(first);
    let before_kill = settled_offsets(&first_log);
    producing.join().unwrap();

    let mut second = DaemonProcess::start(&config, &second_log);
    let expected = all_offsets(&broker.brokers(), 6000);
    wait_until_settled(&[&first_log, &second_log], &expected);
    second.signal("TERM");
    assert!(second.wait(Duration::from_secs(60)).success());

    let union = settled_in(&[&first_log, &second_log]);
    let missing: Vec<_> = expected.difference(&union).take(5).collect();
    assert!(missing.is_empty(), "never settled: {missing:?}");
    assert!(before_kill.len() < expected.len(), "killed mid-stream");
}

#[test]
fn sigterm_drains_and_commits_so_a_restart_rereads_nothing() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &broker.brokers(), "stopped");
    let logs: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("run-{i}.log")))
        .collect();

    produce_readings(&broker.brokers(), 0..900);
    let mut first = DaemonProcess::start(&config, &logs[0]);
    let first_half = all_offsets(&broker.brokers(), 900);
    wait_until_settled(&[&logs[0]], &first_half);
    first.signal("TERM");
    let status = first.wait(Duration::from_secs(60));
    assert!(status.success(), "{status}: {}", log_text(&logs[0]));
    assert_eq!(
        committed_offsets(&broker.brokers(), "stopped", INPUT, PARTITIONS),
        next_offsets(first_half.iter().map(|(_, p, o)| (*p, *o)), PARTITIONS),
        "SIGTERM commits every settled event"
    );

    // A restart is assigned the partitions and finds nothing to re-read.
    let mut second = DaemonProcess::start(&config, &logs[1]);
    wait_for(Duration::from_secs(60), "the restart to be ready", || {
        http_address(&logs[1]).is_some_and(|http| {
            std::net::TcpStream::connect(&http).is_ok() && http_get(&http, "/readyz").0 == 200
        })
    });
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        settled_offsets(&logs[1]).is_empty(),
        "re-read committed events"
    );
    // ...and scores what comes next.
    produce_readings(&broker.brokers(), 900..960);
    let expected = all_offsets(&broker.brokers(), 960);
    wait_until_settled(&[&logs[0], &logs[1]], &expected);
    second.signal("TERM");
    assert!(second.wait(Duration::from_secs(60)).success());
    assert_eq!(settled_offsets(&logs[1]).len(), 60);
}

#[test]
fn two_daemons_in_one_group_split_the_partitions_and_score_everything() {
    let broker = broker();
    let dir = tempfile::tempdir().unwrap();
    let config_a = write_config(dir.path(), &broker.brokers(), "pair");
    let config_b = write_config(dir.path(), &broker.brokers(), "pair");
    let (log_a, log_b) = (dir.path().join("a.log"), dir.path().join("b.log"));

    let mut a = DaemonProcess::start(&config_a, &log_a);
    let mut b = DaemonProcess::start(&config_b, &log_b);
    // Both join before the events come, so each takes a share.
    let assigned = |log: &Path| log_text(log).contains("partitions assigned");
    wait_for(
        Duration::from_secs(120),
        "both daemons to be assigned",
        || {
            assert!(
                a.still_running() && b.still_running(),
                "a daemon exited:\n{}\n{}",
                log_text(&log_a),
                log_text(&log_b)
            );
            assigned(&log_a) && assigned(&log_b)
        },
    );
    produce_readings(&broker.brokers(), 0..1800);
    let expected = all_offsets(&broker.brokers(), 1800);
    wait_until_settled(&[&log_a, &log_b], &expected);
    a.signal("TERM");
    b.signal("TERM");
    assert!(a.wait(Duration::from_secs(60)).success());
    assert!(b.wait(Duration::from_secs(60)).success());

    let partitions = |log: &Path| -> BTreeSet<i32> {
        settled_offsets(log)
            .into_iter()
            .map(|(_, p, _)| p)
            .collect()
    };
    let (mine, theirs) = (partitions(&log_a), partitions(&log_b));
    assert!(
        !mine.is_empty() && !theirs.is_empty(),
        "{mine:?} {theirs:?}"
    );
    assert!(mine.is_disjoint(&theirs), "{mine:?} {theirs:?}");
}

#[test]
fn demo_streams_on_a_real_broker_flag_anomalies_and_dead_letter_bad_input() {
    let broker = Nisshi::start();
    for (topic, partitions) in [
        (SENSOR_TOPIC, 3),
        (PAYMENTS_TOPIC, 3),
        (FLAGS_TOPIC, 1),
        (DEAD_LETTER_TOPIC, 1),
    ] {
        broker.create_topic(topic, partitions);
    }
    // Bad input first: the good events after it must still flow.
    let bad: [(&[u8], &str); 3] = [
        (b"pressure=3", "not_json"),
        (
            br#"{"device":"pump-9","timestamp":1700000000000,"temperature":1.0}"#,
            "missing_field",
        ),
        (
            br#"{"device":"pump-9","timestamp":1700000000000,"temperature":"hot","pressure":1.0}"#,
            "not_numeric",
        ),
    ];
    let producer = producer(&broker.brokers());
    for (payload, _) in &bad {
        send(&producer, SENSOR_TOPIC, "pump-9", payload);
    }
    flush(&producer);

    let options = DemoOptions {
        brokers: Some(broker.brokers()),
        duration: Duration::from_secs(400),
        http_listen: "127.0.0.1:0".to_owned(),
        ..DemoOptions::default()
    };
    let mut flags: Vec<Flag> = Vec::new();
    let summaries = run_demo(&options, |event| {
        if let DemoEvent::Flag { flag, .. } = event {
            flags.push(*flag);
        }
    })
    .unwrap();
    for (stream, summary) in &summaries {
        assert!(
            summary.precision() >= 0.8 && summary.recall() >= 0.8,
            "{stream}: {summary:?}"
        );
    }

    // Every flag points at the input message it was raised for.
    let mut inputs = BTreeMap::new();
    for topic in [SENSOR_TOPIC, PAYMENTS_TOPIC] {
        // Nisshi's high watermarks lag, so the topics are read in full.
        let total = if topic == SENSOR_TOPIC {
            4 * 2400 + bad.len()
        } else {
            40 * 300
        };
        for message in read_topic(&broker.brokers(), topic, 3, total, Duration::from_secs(60)) {
            inputs.insert(
                (topic.to_owned(), message.partition, message.offset),
                message,
            );
        }
    }
    assert!(!flags.is_empty());
    for flag in &flags {
        let source = (
            flag.source.topic.clone(),
            flag.source.partition,
            flag.source.offset,
        );
        let message = inputs
            .get(&source)
            .unwrap_or_else(|| panic!("no input at {source:?}"));
        let event: serde_json::Value = message.json();
        let key_field = if source.0 == SENSOR_TOPIC {
            "device"
        } else {
            "account"
        };
        assert_eq!(
            event[key_field].as_str(),
            Some(flag.key.as_str()),
            "{source:?}"
        );
        assert_eq!(
            event["timestamp"].as_i64(),
            Some(flag.timestamp_ms),
            "{source:?}"
        );
    }

    // Each bad message is a dead letter with its reason and source.
    let dead = read_topic(
        &broker.brokers(),
        DEAD_LETTER_TOPIC,
        1,
        bad.len(),
        Duration::from_secs(30),
    );
    assert_eq!(dead.len(), bad.len(), "{dead:?}");
    for letter in &dead {
        let partition: i32 = letter
            .header("tidewatch.source.partition")
            .unwrap()
            .parse()
            .unwrap();
        let offset: i64 = letter
            .header("tidewatch.source.offset")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(letter.header("tidewatch.source.topic"), Some(SENSOR_TOPIC));
        let original = &inputs[&(SENSOR_TOPIC.to_owned(), partition, offset)];
        assert_eq!(letter.payload, original.payload, "the original bytes");
        let (_, reason) = bad
            .iter()
            .find(|(payload, _)| *payload == letter.payload.as_slice())
            .expect("a dead letter of a bad message");
        assert_eq!(letter.header("tidewatch.reason"), Some(*reason));
    }
}
