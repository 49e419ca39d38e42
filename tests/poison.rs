//! One device's bad messages on a real broker (Nisshi, installed by
//! scripts/test.sh): a reading of 1e308, one of NaN, one of -inf and a
//! 2 MB message are dead-lettered with their reasons, an absurd but
//! representable reading is scored, and the device's injected anomalies
//! are flagged exactly as in the same stream without them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::BaseProducer;
use tidewatch::jobs::demo::{SENSOR_WARMUP, sensor_config};
use tidewatch::models::LearnedModels;
use tidewatch::simulate::{Reading, Truth, simulate_readings};
use tidewatch_runtime::config::{DaemonConfig, HttpConfig, KafkaConfig, RunConfig, StreamBinding};
use tidewatch_runtime::daemon;
use tidewatch_runtime::metrics::Metrics;
use tidewatch_runtime::sink::alert::Flag;

use support::{Nisshi, Received, flush, read_topic, send, wait_for};

/// A counter's value in the metrics text (0 when it has no sample yet).
fn counter(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .render()
        .lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs the daemon on `messages` (produced to a topic of their own, named
/// after `run`) until each is scored or dead-lettered; returns the flags
/// and the dead letters.
fn run_stream(broker: &Nisshi, run: &str, messages: &[Vec<u8>]) -> (Vec<Flag>, Vec<Received>) {
    let (input, flags, dead) = (
        format!("{run}-readings"),
        format!("{run}-flags"),
        format!("{run}-dead"),
    );
    for topic in [&input, &flags, &dead] {
        broker.create_topic(topic, 1);
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", broker.brokers())
        .set("message.max.bytes", "4000000")
        .create()
        .unwrap();
    for payload in messages {
        send(&producer, &input, "pump-0", payload);
    }
    flush(&producer);

    let dir = tempfile::tempdir().unwrap();
    let mut stream = sensor_config();
    stream.online.warmup_events = Some(SENSOR_WARMUP);
    let stream_path = dir.path().join("sensor.toml");
    std::fs::write(&stream_path, toml::to_string(&stream).unwrap()).unwrap();
    let config = RunConfig {
        kafka: KafkaConfig {
            brokers: broker.brokers(),
            group_id: format!("{run}-group"),
            properties: BTreeMap::new(),
            consumer_properties: [("session.timeout.ms".to_owned(), "6000".to_owned())].into(),
            producer_properties: BTreeMap::new(),
        },
        daemon: DaemonConfig {
            workers: 1,
            ..DaemonConfig::default()
        },
        http: HttpConfig {
            listen: "127.0.0.1:0".to_owned(),
        },
        streams: vec![StreamBinding {
            config: stream_path,
            model: None,
            input_topic: input,
            flags_topic: flags.clone(),
            dead_letter_topic: dead.clone(),
            state_topic: None,
            format: Default::default(),
            schema_registry: None,
            flags_format: Default::default(),
            key_from_message: false,
            timestamp_from_message: false,
        }],
    };
    config.validate().unwrap();
    let metrics = Metrics::new();
    let handle = daemon::start(config, Arc::new(LearnedModels), metrics.clone()).unwrap();
    wait_for(Duration::from_secs(300), "every message handled", || {
        counter(&metrics, "tidewatch_events_scored_total")
            + counter(&metrics, "tidewatch_events_dead_lettered_total")
            >= messages.len() as f64
    });
    handle.shutdown();
    handle.join().unwrap();
    let flag_count = counter(&metrics, "tidewatch_flags_produced_total") as usize;
    let dead_count = counter(&metrics, "tidewatch_events_dead_lettered_total") as usize;
    let flags = read_topic(
        &broker.brokers(),
        &flags,
        1,
        flag_count,
        Duration::from_secs(60),
    );
    assert_eq!(flags.len(), flag_count);
    let dead = read_topic(
        &broker.brokers(),
        &dead,
        1,
        dead_count,
        Duration::from_secs(60),
    );
    (flags.iter().map(Received::json).collect(), dead)
}

/// The injected anomalies a flag fell on.
fn caught(truth: &[Truth], flags: &[Flag]) -> BTreeSet<usize> {
    flags
        .iter()
        .filter_map(|flag| {
            truth
                .iter()
                .position(|t| (t.start_ms..=t.caught_until_ms).contains(&flag.timestamp_ms))
        })
        .collect()
}

fn reading_json(reading: &Reading, temperature: &str) -> Vec<u8> {
    format!(
        r#"{{"device":"{}","timestamp":{},"temperature":{temperature},"pressure":{}}}"#,
        reading.device, reading.timestamp, reading.pressure
    )
    .into_bytes()
}

#[test]
fn bad_messages_are_dead_lettered_and_leave_the_key_flagging_as_before() {
    let broker = Nisshi::start();
    let (readings, truth) = simulate_readings(1, 2400, SENSOR_WARMUP as usize, 11);
    let clean: Vec<Vec<u8>> = readings
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();

    // Bad messages during the warm-up and after it, each an extra event
    // at the time of the reading before it.
    let oversized = format!(
        r#"{{"device":"pump-0","timestamp":{},"temperature":1.0,"pressure":1.0,"note":"{}"}}"#,
        readings[1999].timestamp,
        "x".repeat(2 << 20)
    )
    .into_bytes();
    let bad: BTreeMap<usize, (Vec<u8>, Option<&str>)> = [
        (
            100,
            (reading_json(&readings[99], "1e308"), Some("bad_value")),
        ),
        (
            200,
            (reading_json(&readings[199], "\"NaN\""), Some("bad_value")),
        ),
        (
            1500,
            (reading_json(&readings[1499], "\"-inf\""), Some("bad_value")),
        ),
        (2000, (oversized.clone(), Some("oversized"))),
        // Absurd but representable: scored, never learned from.
        (300, (reading_json(&readings[299], "3e38"), None)),
        (1700, (reading_json(&readings[1699], "-3e38"), None)),
    ]
    .into();
    let mut poisoned = Vec::new();
    for (i, message) in clean.iter().enumerate() {
        if let Some((payload, _)) = bad.get(&i) {
            poisoned.push(payload.clone());
        }
        poisoned.push(message.clone());
    }

    let (clean_flags, clean_dead) = run_stream(&broker, "clean", &clean);
    assert!(clean_dead.is_empty());
    let expected = caught(&truth, &clean_flags);
    assert!(!expected.is_empty(), "the clean stream flags its anomalies");

    let (flags, dead) = run_stream(&broker, "poisoned", &poisoned);
    assert_eq!(caught(&truth, &flags), expected, "{flags:#?}");

    let reasons: Vec<(&str, usize)> = dead
        .iter()
        .map(|letter| {
            (
                letter.header("tidewatch.reason").unwrap(),
                letter.payload.len(),
            )
        })
        .collect();
    let mut expected_reasons: Vec<(&str, usize)> = bad
        .values()
        .filter_map(|(payload, reason)| Some((reason.as_deref()?, payload.len())))
        .map(|(reason, len)| (reason, if reason == "oversized" { 1024 } else { len }))
        .collect();
    expected_reasons.sort();
    let mut found = reasons.clone();
    found.sort();
    assert_eq!(found, expected_reasons);
    let letter = dead
        .iter()
        .find(|l| l.header("tidewatch.reason") == Some("oversized"))
        .unwrap();
    assert_eq!(
        letter.header("tidewatch.payload_bytes"),
        Some(oversized.len().to_string().as_str())
    );
}
