//! Avro and Protobuf topics through a Schema Registry, end to end on the
//! real broker (Nisshi) with an in-process registry that speaks the
//! Confluent REST API: the daemon reads the sensor and payment streams in
//! both formats and flags exactly what it flags from JSON; bad headers and
//! unknown schema ids are dead-lettered by reason; a registry outage loses
//! nothing, whether the schemas are cached or not; flags can be written as
//! Avro.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tidewatch::models::LearnedModels;
use tidewatch_runtime::config::RunConfig;
use tidewatch_runtime::daemon;
use tidewatch_runtime::metrics::Metrics;
use tidewatch_runtime::sink::alert::Flag;
use tidewatch_runtime::source::registry::{
    MessageFormat, RegistryConfig, WireDecoder, WireEncoder,
};
use tidewatch_stream::source::decode::{FieldValue, Fields};

use support::{FakeRegistry, Nisshi, flush, producer, read_topic, send, wait_for};

const KEYS: usize = 3;
const EVENTS_PER_KEY: usize = 700;

fn simulate(broker: &Nisshi, registry: &FakeRegistry, stream: &str, format: &str, dir: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_tidewatch"))
        .args(["simulate", "--stream", stream, "--keys", &KEYS.to_string()])
        .args(["--events-per-key", &EVENTS_PER_KEY.to_string()])
        .args(["--clean-events", "300", "--format", format])
        .args(["--schema-registry", &registry.url])
        .args(["--topic", &format!("{stream}-{format}")])
        .args(["--brokers", &broker.brokers()])
        .arg("--truth")
        .arg(dir.join(format!("{stream}-{format}.truth")))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", support::stderr(&output));
}

/// The shipped stream configs, warming up on 200 events for the sensor.
fn write_streams(dir: &Path) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let sensor = std::fs::read_to_string(examples.join("sensor.toml"))
        .unwrap()
        .replace("[online]\n", "[online]\nwarmup_events = 200\n");
    std::fs::write(dir.join("sensor.toml"), sensor).unwrap();
    std::fs::copy(
        examples.join("transactions.toml"),
        dir.join("payments.toml"),
    )
    .unwrap();
}

/// A daemon config reading both streams written in `format`.
fn run_config(broker: &Nisshi, registry: &FakeRegistry, format: &str) -> String {
    let binding = |stream: &str, config: &str| {
        format!(
            r#"
[[streams]]
config = "{config}"
input_topic = "{stream}-{format}"
flags_topic = "flags-{format}"
dead_letter_topic = "dead-letters-{format}"
format = "{format}"
schema_registry = {{ url = "{url}" }}
{flags_format}"#,
            url = registry.url,
            // The Avro run writes its flags as Avro too.
            flags_format = if format == "avro" {
                "flags_format = \"avro\"\n"
            } else {
                ""
            },
        )
    };
    format!(
        r#"
[kafka]
brokers = "{brokers}"
group_id = "registry-{format}"

[daemon]
workers = 2

[http]
listen = "127.0.0.1:0"
{sensor}{payments}"#,
        brokers = broker.brokers(),
        sensor = binding("sensor", "sensor.toml"),
        payments = binding("payments", "payments.toml"),
    )
}

fn scored(metrics: &Metrics, stream: &str) -> u64 {
    metrics.stream_numbers(stream, "").scored_total
}

/// (stream, key, event time) of every flag on `flags-{format}`: JSON, or
/// for the Avro run Avro, read back through the registry.
fn flags(
    broker: &Nisshi,
    registry: &FakeRegistry,
    format: &str,
) -> BTreeSet<(String, String, i64)> {
    let avro = WireDecoder::new(MessageFormat::Avro, &RegistryConfig::at(&registry.url));
    read_topic(
        &broker.brokers(),
        &format!("flags-{format}"),
        1,
        usize::MAX,
        Duration::from_secs(5),
    )
    .iter()
    .map(|m| {
        if format != "avro" {
            let flag: Flag = m.json();
            return (flag.stream, flag.key, flag.timestamp_ms);
        }
        let fields = avro.decode(&m.payload).expect("an Avro flag");
        let text = |name: &str| match fields.get(name) {
            Some(FieldValue::Text(text)) => text.to_owned(),
            other => panic!("{name}: {other:?}"),
        };
        let Some(FieldValue::Number(ms)) = fields.get("timestamp_ms") else {
            panic!("no timestamp_ms");
        };
        assert!(matches!(
            fields.get("model.version"),
            Some(FieldValue::Text("online"))
        ));
        (text("stream"), text("key"), ms as i64)
    })
    .collect()
}

#[test]
fn avro_and_protobuf_topics_flag_what_json_does_and_survive_a_registry_outage() {
    let broker = Nisshi::start();
    let registry = FakeRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    write_streams(dir.path());
    let formats = ["json", "avro", "protobuf"];
    for format in formats {
        for topic in ["sensor", "payments"] {
            broker.create_topic(&format!("{topic}-{format}"), 2);
        }
        broker.create_topic(&format!("flags-{format}"), 1);
        broker.create_topic(&format!("dead-letters-{format}"), 1);
        for stream in ["sensor", "payments"] {
            simulate(&broker, &registry, stream, format, dir.path());
        }
    }
    // Two messages no schema can read, among the Avro readings.
    let bad = producer(&broker.brokers());
    send(&bad, "sensor-avro", "pump-1", b"{\"device\":\"pump-1\"}");
    send(&bad, "sensor-avro", "pump-1", &[0, 0, 0, 0, 99, 2, 4, 6]);
    flush(&bad);
    // A schema registered now and first used while the registry is down.
    let later = WireEncoder::register(
        &RegistryConfig::at(&registry.url),
        "sensor-avro-value",
        MessageFormat::Avro,
        &include_str!("../examples/schemas/sensor.avsc")
            .replace("One pump's reading", "A pump's reading (version 2)"),
    )
    .unwrap();

    let events = (KEYS * EVENTS_PER_KEY) as u64;
    for format in formats {
        let path = dir.path().join(format!("run-{format}.toml"));
        let mut text = run_config(&broker, &registry, format);
        if format == "json" {
            text = text.replace("format = \"json\"\nschema_registry", "# schema_registry");
        }
        std::fs::write(&path, text).unwrap();
        let metrics = Metrics::new();
        let handle = daemon::start(
            RunConfig::load(&path).unwrap(),
            Arc::new(LearnedModels),
            metrics.clone(),
        )
        .unwrap();
        if format == "avro" {
            // Once both streams' schemas are cached, the registry goes down.
            wait_for(Duration::from_secs(120), "first events scored", || {
                scored(&metrics, "pump") > 0 && scored(&metrics, "payments") > 0
            });
            let before = registry.requests();
            registry.set_available(false);
            wait_for(
                Duration::from_secs(240),
                "every event scored, registry down",
                || scored(&metrics, "pump") >= events && scored(&metrics, "payments") >= events,
            );
            // A record of a schema not seen yet waits for the registry...
            let waiting = producer(&broker.brokers());
            let record = serde_json::json!({
                "device": "pump-9", "timestamp": 1_800_000_000_000i64,
                "temperature": 20.0, "pressure": 101.0
            });
            send(
                &waiting,
                "sensor-avro",
                "pump-9",
                &later.encode(&record).unwrap(),
            );
            flush(&waiting);
            wait_for(Duration::from_secs(30), "the daemon to ask again", || {
                registry.requests() > before + 2
            });
            assert_eq!(scored(&metrics, "pump"), events, "it waits");
            // ...and is scored, not dead-lettered, once the registry is back.
            registry.set_available(true);
            wait_for(Duration::from_secs(60), "the waiting record scored", || {
                scored(&metrics, "pump") == events + 1
            });
        } else {
            wait_for(Duration::from_secs(240), "every event scored", || {
                scored(&metrics, "pump") >= events && scored(&metrics, "payments") >= events
            });
        }
        handle.shutdown();
        handle.join().unwrap();
        let text = metrics.render();
        if format == "avro" {
            for reason in ["bad_header", "unknown_schema"] {
                let line = format!(
                    "tidewatch_events_dead_lettered_total{{reason=\"{reason}\",stream=\"pump\"}} 1"
                );
                assert!(text.contains(&line), "no {line} in\n{text}");
            }
        } else {
            assert!(
                !text.contains("tidewatch_events_dead_lettered_total{"),
                "{text}"
            );
        }
    }

    let from_json = flags(&broker, &registry, "json");
    assert!(
        from_json.iter().any(|(s, _, _)| s == "pump")
            && from_json.iter().any(|(s, _, _)| s == "payments"),
        "both streams flag from JSON: {from_json:?}"
    );
    assert_eq!(
        flags(&broker, &registry, "avro"),
        from_json,
        "Avro flags what JSON does (and writes its flags as Avro)"
    );
    assert_eq!(
        flags(&broker, &registry, "protobuf"),
        from_json,
        "Protobuf flags what JSON does"
    );
    let dead = read_topic(
        &broker.brokers(),
        "dead-letters-avro",
        1,
        2,
        Duration::from_secs(30),
    );
    let reasons: BTreeSet<_> = dead
        .iter()
        .map(|m| m.header("tidewatch.reason").unwrap().to_owned())
        .collect();
    assert_eq!(
        reasons,
        BTreeSet::from(["bad_header".into(), "unknown_schema".into()])
    );
}
