//! `tidewatch simulate`: synthetic streams with injected, labelled anomalies,
//! to a Kafka topic or a JSON Lines file, with the truth beside them.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use tidewatch::simulate::{Truth, simulate_payments, simulate_readings};
use tidewatch_runtime::source::registry::{MessageFormat, RegistryConfig, WireEncoder};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StreamKind {
    /// Pumps: two correlated sensors with a daily cycle; spikes, level
    /// shifts, frequency changes, flat lines, correlation breaks.
    Sensor,
    /// Payments per account with habitual amounts, merchants, countries and
    /// hours; bursts, unusual amounts, a new country at night.
    Payments,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["out", "topic"])))]
pub struct SimulateArgs {
    #[arg(long, value_enum)]
    pub stream: StreamKind,
    /// Devices or accounts.
    #[arg(long, default_value_t = 4)]
    pub keys: usize,
    /// Events per device or account.
    #[arg(long, default_value_t = 2400)]
    pub events_per_key: usize,
    /// Events per key before the first anomaly (the online warm-up).
    #[arg(long, default_value_t = 600)]
    pub clean_events: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Write JSON Lines here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Produce to this Kafka topic (keyed by device or account).
    #[arg(long, requires = "brokers")]
    pub topic: Option<String>,
    #[arg(long)]
    pub brokers: Option<String>,
    /// Pace production to this many events per second (0: as fast as the
    /// broker takes them); a paced run feeds a live demo for a while.
    #[arg(long, default_value_t = 0.0, requires = "topic")]
    pub events_per_second: f64,
    /// Write the injected anomalies here (JSON Lines: stream, key, kind,
    /// start_ms, end_ms, caught_until_ms).
    #[arg(long)]
    pub truth: PathBuf,
    /// Message format: JSON objects, or a Schema Registry's wire format
    /// with the shipped schemas (examples/schemas), registered under the
    /// subject TOPIC-value.
    #[arg(long, value_enum, default_value_t = WireFormat::Json, requires = "topic")]
    pub format: WireFormat,
    /// The Schema Registry's URL, for the wire formats.
    #[arg(long)]
    pub schema_registry: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WireFormat {
    Json,
    Avro,
    Protobuf,
    JsonSchema,
}

impl WireFormat {
    fn message_format(self) -> MessageFormat {
        match self {
            WireFormat::Json => MessageFormat::Json,
            WireFormat::Avro => MessageFormat::Avro,
            WireFormat::Protobuf => MessageFormat::Protobuf,
            WireFormat::JsonSchema => MessageFormat::JsonSchema,
        }
    }
}

/// The shipped schema of `stream` in `format`.
fn shipped_schema(stream: StreamKind, format: WireFormat) -> &'static str {
    match (stream, format) {
        (StreamKind::Sensor, WireFormat::Avro) => {
            include_str!("../../examples/schemas/sensor.avsc")
        }
        (StreamKind::Sensor, WireFormat::Protobuf) => {
            include_str!("../../examples/schemas/sensor.proto")
        }
        (StreamKind::Payments, WireFormat::Avro) => {
            include_str!("../../examples/schemas/payments.avsc")
        }
        (StreamKind::Payments, WireFormat::Protobuf) => {
            include_str!("../../examples/schemas/payments.proto")
        }
        (_, WireFormat::JsonSchema) => r#"{"type":"object"}"#,
        (_, WireFormat::Json) => "",
    }
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events_per_key > args.clean_events + 50,
        "--events-per-key must exceed --clean-events by more than 50"
    );
    let encoder = match (args.format, &args.schema_registry, &args.topic) {
        (WireFormat::Json, _, _) => None,
        (format, Some(url), Some(topic)) => Some(
            WireEncoder::register(
                &RegistryConfig::at(url),
                &format!("{topic}-value"),
                format.message_format(),
                shipped_schema(args.stream, format),
            )
            .map_err(|e| anyhow::anyhow!("schema registry {url}: {e}"))?,
        ),
        (_, None, _) => anyhow::bail!("--format {:?} needs --schema-registry", args.format),
        (_, _, None) => anyhow::bail!("--format needs --topic"),
    };
    let encode = |value: serde_json::Value| -> anyhow::Result<Vec<u8>> {
        match &encoder {
            None => Ok(serde_json::to_vec(&value)?),
            Some(encoder) => encoder.encode(&value).map_err(|e| anyhow::anyhow!(e)),
        }
    };
    let (events, truth): (Vec<(String, Vec<u8>)>, Vec<Truth>) = match args.stream {
        StreamKind::Sensor => {
            let (readings, truth) =
                simulate_readings(args.keys, args.events_per_key, args.clean_events, args.seed);
            (
                readings
                    .iter()
                    .map(|r| Ok((r.device.clone(), encode(json(r))?)))
                    .collect::<anyhow::Result<_>>()?,
                truth,
            )
        }
        StreamKind::Payments => {
            let (payments, truth) = simulate_payments(
                args.keys,
                args.events_per_key,
                args.clean_events,
                1,
                args.seed,
            );
            (
                payments
                    .iter()
                    .map(|p| Ok((p.account.clone(), encode(json(p))?)))
                    .collect::<anyhow::Result<_>>()?,
                truth,
            )
        }
    };
    match (&args.out, &args.topic, &args.brokers) {
        (Some(out), _, _) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(out).with_context(|| format!("{}", out.display()))?,
            );
            for (_, payload) in &events {
                file.write_all(payload)?;
                file.write_all(b"\n")?;
            }
            file.flush()?;
        }
        (None, Some(topic), Some(brokers)) => {
            let producer: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", brokers)
                .create()?;
            let started = std::time::Instant::now();
            for (i, (key, payload)) in events.iter().enumerate() {
                if args.events_per_second > 0.0 {
                    let due = started + Duration::from_secs_f64(i as f64 / args.events_per_second);
                    while std::time::Instant::now() < due {
                        producer.poll(due.saturating_duration_since(std::time::Instant::now()));
                    }
                }
                let mut record = BaseRecord::to(topic).key(key).payload(payload);
                while let Err((error, returned)) = producer.send(record) {
                    anyhow::ensure!(
                        matches!(
                            error,
                            rdkafka::error::KafkaError::MessageProduction(
                                rdkafka::types::RDKafkaErrorCode::QueueFull
                            )
                        ),
                        "producing to {topic}: {error}"
                    );
                    record = returned;
                    producer.poll(Duration::from_millis(10));
                }
            }
            producer.flush(Duration::from_secs(60))?;
        }
        _ => anyhow::bail!("give --out, or --topic with --brokers"),
    }
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&args.truth).with_context(|| format!("{}", args.truth.display()))?,
    );
    for t in &truth {
        serde_json::to_writer(&mut file, t)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    eprintln!(
        "{} events, {} injected anomalies",
        events.len(),
        truth.len()
    );
    Ok(())
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("simulated events serialise")
}
