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
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events_per_key > args.clean_events + 50,
        "--events-per-key must exceed --clean-events by more than 50"
    );
    let (events, truth): (Vec<(String, Vec<u8>)>, Vec<Truth>) = match args.stream {
        StreamKind::Sensor => {
            let (readings, truth) =
                simulate_readings(args.keys, args.events_per_key, args.clean_events, args.seed);
            (
                readings
                    .iter()
                    .map(|r| (r.device.clone(), json(r)))
                    .collect(),
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
                    .map(|p| (p.account.clone(), json(p)))
                    .collect(),
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

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("simulated events serialise")
}
