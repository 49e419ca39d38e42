//! The demo: a sensor stream (pumps) and a transaction stream (payments)
//! with injected anomalies are produced to Kafka (librdkafka's in-process
//! mock cluster unless real brokers are given), the daemon scores them with
//! every key learning online, flags are read back from the flags topic as
//! they arrive and matched to the injected truth.
//!
//! The demo judges what was scored, never the machine's speed: past its
//! `duration` it drains (waits for the daemon to score every event it
//! produced, at most `drain`), and if the drain bound is reached it says
//! how many events went unscored and judges only the injected anomalies
//! whose events were scored (read back from the daemon's committed
//! offsets).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use tidewatch_runtime::config::{DaemonConfig, HttpConfig, KafkaConfig, RunConfig, StreamBinding};
use tidewatch_runtime::daemon;
use tidewatch_runtime::error::DaemonError;
use tidewatch_runtime::metrics::Metrics;
use tidewatch_runtime::sink::alert::Flag;
use tidewatch_stream::config::StreamConfig;

use crate::models::LearnedModels;
use crate::simulate::{Truth, simulate_payments, simulate_readings};

/// What the demo simulates and how long it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Real brokers to use; `None` starts an in-process mock cluster.
    pub brokers: Option<String>,
    /// How long flags are shown as they arrive; the summary comes earlier
    /// once every event is scored.
    pub duration: Duration,
    /// Past `duration`, the longest the demo waits for the rest of its
    /// events to be scored before it judges.
    pub drain: Duration,
    pub devices: usize,
    /// Readings per device (one a minute).
    pub readings_per_device: usize,
    pub accounts: usize,
    pub payments_per_account: usize,
    pub seed: u64,
    /// Address for /metrics during the demo.
    pub http_listen: String,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            brokers: None,
            duration: Duration::from_secs(60),
            drain: Duration::from_secs(300),
            devices: 4,
            readings_per_device: 2400,
            accounts: 40,
            payments_per_account: 300,
            seed: 7,
            http_listen: "127.0.0.1:9898".to_owned(),
        }
    }
}

/// The shipped sensor stream config (`examples/sensor.toml`).
pub fn sensor_config() -> StreamConfig {
    toml::from_str(include_str!("../../examples/sensor.toml"))
        .expect("the shipped sensor config parses")
}

/// The shipped transaction stream config (`examples/transactions.toml`).
pub fn payments_config() -> StreamConfig {
    toml::from_str(include_str!("../../examples/transactions.toml"))
        .expect("the shipped transaction config parses")
}

/// Readings each pump learns from before it is scored.
pub const SENSOR_WARMUP: u64 = 600;

/// Topic names the demo uses.
pub const SENSOR_TOPIC: &str = "sensor-readings";
pub const PAYMENTS_TOPIC: &str = "payments";
pub const FLAGS_TOPIC: &str = "tidewatch-flags";
pub const DEAD_LETTER_TOPIC: &str = "tidewatch-dead-letters";

/// How one stream did against its truth.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamSummary {
    pub events: usize,
    /// Events scored before the summary (all of them unless the drain
    /// bound was reached).
    pub scored: usize,
    pub flags: usize,
    pub true_flags: usize,
    /// Injected anomalies judged: those flagged or whose events were all
    /// scored.
    pub injected: usize,
    pub detected: usize,
    /// Injected anomalies not judged: their events were not all scored.
    pub unjudged: usize,
}

impl StreamSummary {
    pub fn precision(&self) -> f64 {
        if self.flags == 0 {
            0.0
        } else {
            self.true_flags as f64 / self.flags as f64
        }
    }

    pub fn recall(&self) -> f64 {
        if self.injected == 0 {
            0.0
        } else {
            self.detected as f64 / self.injected as f64
        }
    }
}

/// What the demo reports while it runs.
#[derive(Debug, Clone)]
pub enum DemoEvent {
    Started {
        brokers: String,
        metrics_address: std::net::SocketAddr,
        events: usize,
    },
    Progress {
        scored: u64,
        events: usize,
    },
    /// `duration` has passed with events still to score.
    Draining {
        scored: u64,
        events: usize,
    },
    Flag {
        flag: Box<Flag>,
        caught: Option<Truth>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the demo, reporting as it goes; returns each stream's summary.
pub fn run_demo(
    options: &DemoOptions,
    mut report: impl FnMut(DemoEvent),
) -> Result<BTreeMap<String, StreamSummary>, DemoError> {
    let mock = match options.brokers {
        Some(_) => None,
        None => Some(MockCluster::new(1)?),
    };
    let brokers = match (&options.brokers, &mock) {
        (Some(brokers), _) => brokers.clone(),
        (None, Some(cluster)) => cluster.bootstrap_servers(),
        (None, None) => unreachable!("a mock cluster exists when no brokers are given"),
    };
    if let Some(cluster) = &mock {
        for (topic, partitions) in [
            (SENSOR_TOPIC, 3),
            (PAYMENTS_TOPIC, 3),
            (FLAGS_TOPIC, 1),
            (DEAD_LETTER_TOPIC, 1),
        ] {
            cluster.create_topic(topic, partitions, 1)?;
        }
    }

    let (readings, sensor_truth) = simulate_readings(
        options.devices,
        options.readings_per_device,
        SENSOR_WARMUP as usize,
        options.seed,
    );
    let payments_warmup = payments_config().online.warmup_events.unwrap_or(150) as usize;
    let (payments, payment_truth) = simulate_payments(
        options.accounts,
        options.payments_per_account,
        payments_warmup,
        1,
        options.seed,
    );
    let events = readings.len() + payments.len();
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()?;
    for r in &readings {
        send_json(&producer, SENSOR_TOPIC, &r.device, r)?;
    }
    for p in &payments {
        send_json(&producer, PAYMENTS_TOPIC, &p.account, p)?;
    }
    producer.flush(Duration::from_secs(30))?;

    let dir = tempfile::tempdir()?;
    let mut sensor = sensor_config();
    sensor.online.warmup_events = Some(SENSOR_WARMUP);
    let run = RunConfig {
        kafka: KafkaConfig {
            brokers: brokers.clone(),
            group_id: run_group(options),
            properties: BTreeMap::new(),
            consumer_properties: [("session.timeout.ms".to_owned(), "6000".to_owned())].into(),
            producer_properties: BTreeMap::new(),
        },
        daemon: DaemonConfig {
            workers: 1,
            ..DaemonConfig::default()
        },
        http: HttpConfig {
            listen: options.http_listen.clone(),
        },
        streams: vec![
            binding(dir.path(), "sensor.toml", &sensor, SENSOR_TOPIC)?,
            binding(
                dir.path(),
                "transactions.toml",
                &payments_config(),
                PAYMENTS_TOPIC,
            )?,
        ],
    };
    let metrics = Metrics::new();
    let handle = daemon::start(run, Arc::new(LearnedModels), metrics.clone())?;
    report(DemoEvent::Started {
        brokers: brokers.clone(),
        metrics_address: handle.http_address(),
        events,
    });

    let flags: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set(
            "group.id",
            format!("tidewatch-demo-reader-{}", options.seed),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(FLAGS_TOPIC, 0, Offset::Beginning)?;
    flags.assign(&assignment)?;

    let truth: Vec<Truth> = sensor_truth.into_iter().chain(payment_truth).collect();
    let mut detected = vec![false; truth.len()];
    let mut summaries: BTreeMap<String, StreamSummary> = BTreeMap::new();
    summaries.entry("pump".into()).or_default().events = readings.len();
    summaries.entry("payments".into()).or_default().events = payments.len();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut finished_at: Option<Instant> = None;
    let mut draining = false;
    // Offset of the next flag to read.
    let mut next_flag = 0;
    // Counts a flag against the truth and returns what to report.
    let mut take_flag = |message: &BorrowedMessage<'_>| {
        let flag = message
            .payload()
            .and_then(|p| serde_json::from_slice::<Flag>(p).ok())?;
        let caught = truth.iter().position(|t| {
            t.stream == flag.stream
                && t.key == flag.key
                && (t.start_ms..=t.caught_until_ms).contains(&flag.timestamp_ms)
        });
        let summary = summaries.entry(flag.stream.clone()).or_default();
        summary.flags += 1;
        if let Some(i) = caught {
            summary.true_flags += 1;
            detected[i] = true;
        }
        Some(DemoEvent::Flag {
            flag: Box::new(flag),
            caught: caught.map(|i| truth[i].clone()),
        })
    };
    loop {
        if let Some(Ok(message)) = flags.poll(Duration::from_millis(100)) {
            next_flag = message.offset() + 1;
            if let Some(event) = take_flag(&message) {
                report(event);
            }
        }
        let scored = metrics.scored_total();
        if last_progress.elapsed() >= Duration::from_secs(5) {
            last_progress = Instant::now();
            report(DemoEvent::Progress { scored, events });
        }
        // Once everything is scored, wait a moment for the last flags.
        if scored as usize >= events {
            let done = *finished_at.get_or_insert_with(Instant::now);
            if done.elapsed() >= Duration::from_secs(2) {
                break;
            }
        }
        if !draining && started.elapsed() >= options.duration {
            draining = true;
            report(DemoEvent::Draining { scored, events });
        }
        if started.elapsed() >= options.duration + options.drain {
            break;
        }
    }
    let all_scored = metrics.scored_total() as usize >= events;
    handle.shutdown();
    handle.join()?;
    // The flags of the last events scored may still be unread.
    let (_, end) = flags.fetch_watermarks(FLAGS_TOPIC, 0, Duration::from_secs(10))?;
    while next_flag < end {
        match flags.poll(Duration::from_secs(10)) {
            Some(message) => {
                let message = message?;
                next_flag = message.offset() + 1;
                if let Some(event) = take_flag(&message) {
                    report(event);
                }
            }
            None => break,
        }
    }
    // Each key's latest scored event time, by stream: every event when all
    // were scored, else what the daemon committed.
    let scored_until = if all_scored {
        None
    } else {
        Some(scored_until(&brokers, &run_group(options))?)
    };
    for summary in summaries.values_mut() {
        summary.scored = summary.events;
    }
    if let Some(scored_until) = &scored_until {
        for (stream, summary) in summaries.iter_mut() {
            summary.scored = scored_until
                .get(stream)
                .map_or(0, |keys| keys.values().map(|(count, _)| count).sum());
        }
    }
    for (t, hit) in truth.iter().zip(&detected) {
        let summary = summaries.entry(t.stream.clone()).or_default();
        let judged = *hit
            || scored_until.as_ref().is_none_or(|until| {
                until
                    .get(&t.stream)
                    .and_then(|keys| keys.get(&t.key))
                    .is_some_and(|(_, last_ms)| *last_ms >= t.caught_until_ms)
            });
        if judged {
            summary.injected += 1;
            summary.detected += usize::from(*hit);
        } else {
            summary.unjudged += 1;
        }
    }
    Ok(summaries)
}

/// Per stream, per key: events scored and the latest one's event time.
type ScoredUntil = BTreeMap<String, BTreeMap<String, (usize, i64)>>;

/// The daemon's consumer group in the demo.
fn run_group(options: &DemoOptions) -> String {
    format!("tidewatch-demo-{}", options.seed)
}

/// Per stream and key, how many events the daemon committed as done and
/// the latest one's event time: the input topics read back up to the
/// group's committed offsets.
fn scored_until(brokers: &str, group: &str) -> Result<ScoredUntil, DemoError> {
    #[derive(serde::Deserialize)]
    struct Event {
        timestamp: i64,
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let mut scored = ScoredUntil::new();
    for (topic, stream) in [(SENSOR_TOPIC, "pump"), (PAYMENTS_TOPIC, "payments")] {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut partitions = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            partitions.add_partition(topic, partition.id());
        }
        let committed = consumer.committed_offsets(partitions, Duration::from_secs(10))?;
        for element in committed.elements() {
            let Offset::Offset(end) = element.offset() else {
                continue;
            };
            let mut assignment = TopicPartitionList::new();
            assignment.add_partition_offset(topic, element.partition(), Offset::Beginning)?;
            consumer.assign(&assignment)?;
            let mut next = 0;
            while next < end {
                let Some(message) = consumer.poll(Duration::from_secs(10)) else {
                    break;
                };
                let message = message?;
                next = message.offset() + 1;
                let key = message
                    .key()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                let Some(event) = message
                    .payload()
                    .and_then(|p| serde_json::from_slice::<Event>(p).ok())
                else {
                    continue;
                };
                let entry = scored
                    .entry(stream.to_owned())
                    .or_default()
                    .entry(key.into_owned())
                    .or_insert((0, i64::MIN));
                entry.0 += 1;
                entry.1 = entry.1.max(event.timestamp);
            }
        }
    }
    Ok(scored)
}

fn send_json<T: serde::Serialize>(
    producer: &BaseProducer,
    topic: &str,
    key: &str,
    value: &T,
) -> Result<(), DemoError> {
    let payload = serde_json::to_vec(value).expect("simulated events serialise");
    let mut record = BaseRecord::to(topic).key(key).payload(&payload);
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                r,
            )) => {
                record = r;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => return Err(error.into()),
        }
    }
}

fn binding(
    dir: &Path,
    file: &str,
    config: &StreamConfig,
    topic: &str,
) -> Result<StreamBinding, DemoError> {
    let path = dir.join(file);
    std::fs::write(
        &path,
        toml::to_string(config).expect("a stream config serialises"),
    )?;
    Ok(StreamBinding {
        config: path,
        model: None,
        input_topic: topic.to_owned(),
        flags_topic: FLAGS_TOPIC.to_owned(),
        dead_letter_topic: DEAD_LETTER_TOPIC.to_owned(),
        state_topic: None,
        format: Default::default(),
        schema_registry: None,
        flags_format: Default::default(),
        key_from_message: false,
        timestamp_from_message: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configs_are_valid() {
        sensor_config().validate().unwrap();
        payments_config().validate().unwrap();
    }
}
