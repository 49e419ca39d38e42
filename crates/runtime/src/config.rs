//! `tidewatch run`: the daemon's TOML configuration.
//!
//! ```toml
//! [kafka]
//! brokers = "kafka-1:9092,kafka-2:9092"
//! group_id = "tidewatch"
//! properties = { "security.protocol" = "SASL_SSL", "sasl.mechanism" = "PLAIN" }
//!
//! [[streams]]
//! config = "sensor.toml"         # stream config, relative to this file
//! model = "models/pump"          # bundle; absent: every key learns online
//! input_topic = "sensor-readings"
//! flags_topic = "tidewatch-flags"
//! dead_letter_topic = "tidewatch-dead-letters"
//! state_topic = "tidewatch-pump-state"  # keys' state survives restarts
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::source::registry::{MessageFormat, RegistryConfig};
use tidewatch_stream::config::{ConfigError, env, one_line, out_of_range};

/// The daemon's whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub http: HttpConfig,
    pub streams: Vec<StreamBinding>,
}

/// Where the brokers are and how to talk to them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Consumer group: daemons sharing it split the partitions.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Any librdkafka property, passed to the consumer and the producer
    /// (SASL, SSL, timeouts...). The daemon's own delivery settings
    /// (`enable.auto.offset.store`) cannot be overridden; its consumer
    /// defaults (`auto.offset.reset = earliest`, `statistics.interval.ms =
    /// 5000`, `fetch.queue.backoff.ms = 10`) can.
    #[serde(default)]
    pub properties: std::collections::BTreeMap<String, String>,
    /// Properties for the consumer only.
    #[serde(default)]
    pub consumer_properties: std::collections::BTreeMap<String, String>,
    /// Properties for the producer only.
    #[serde(default)]
    pub producer_properties: std::collections::BTreeMap<String, String>,
}

fn default_group_id() -> String {
    "tidewatch".to_owned()
}

/// How the daemon processes events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Scoring threads; keys are sharded over them.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Most events a worker scores in one micro-batch.
    #[serde(default = "default_max_batch_events")]
    pub max_batch_events: usize,
    /// Longest a worker waits to fill a micro-batch.
    #[serde(default = "default_max_batch_wait_ms")]
    pub max_batch_wait_ms: u64,
    /// Events queued per worker before consumption pauses.
    #[serde(default = "default_queue_events")]
    pub queue_events: usize,
    /// Messages larger than this go to the dead-letter topic with only
    /// their first 1 KiB. At most the producer's `message.max.bytes`
    /// (1,000,000 unless set) less 64 KiB, so that any dead letter, which
    /// carries a bad message whole, can be produced.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
    /// Keys idle this long are forgotten.
    #[serde(default = "default_key_ttl_secs")]
    pub key_ttl_secs: u64,
    /// Most keys a worker keeps per stream; the least recently seen go first.
    #[serde(default = "default_max_keys")]
    pub max_keys: usize,
    /// Time allowed on SIGTERM/SIGINT to drain, flush and commit.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// How often each worker writes the state of the keys that changed to
    /// their stream's `state_topic`. Input offsets are committed only once
    /// the checkpoint holding their effect is acknowledged, so this also
    /// bounds how far commits trail consumption.
    #[serde(default = "default_checkpoint_interval_ms")]
    pub checkpoint_interval_ms: u64,
    /// Longest the daemon may take to read one assigned partition's
    /// changelog; past it the daemon stops rather than score keys that
    /// forgot their state.
    #[serde(default = "default_restore_timeout_secs")]
    pub restore_timeout_secs: u64,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}
fn default_max_batch_events() -> usize {
    256
}
fn default_max_batch_wait_ms() -> u64 {
    5
}
fn default_queue_events() -> usize {
    8192
}
fn default_max_message_bytes() -> usize {
    900_000
}

/// librdkafka's default `message.max.bytes`.
const PRODUCER_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// Room left in a dead letter for its key and headers.
const DEAD_LETTER_OVERHEAD_BYTES: usize = 64 << 10;
fn default_key_ttl_secs() -> u64 {
    86_400
}
fn default_max_keys() -> usize {
    1_000_000
}
fn default_shutdown_timeout_secs() -> u64 {
    30
}
fn default_checkpoint_interval_ms() -> u64 {
    5000
}
fn default_restore_timeout_secs() -> u64 {
    300
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            workers: default_workers(),
            max_batch_events: default_max_batch_events(),
            max_batch_wait_ms: default_max_batch_wait_ms(),
            queue_events: default_queue_events(),
            max_message_bytes: default_max_message_bytes(),
            key_ttl_secs: default_key_ttl_secs(),
            max_keys: default_max_keys(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            checkpoint_interval_ms: default_checkpoint_interval_ms(),
            restore_timeout_secs: default_restore_timeout_secs(),
        }
    }
}

/// The HTTP endpoint for /metrics, /healthz and /readyz.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free one.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "0.0.0.0:9898".to_owned()
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
        }
    }
}

/// One stream the daemon scores: where it comes from and goes to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamBinding {
    /// Stream config file (schema and settings), relative to the run config.
    /// With a `model`, its schema must be the bundle's.
    pub config: std::path::PathBuf,
    /// Model bundle directory; absent: every key learns online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<std::path::PathBuf>,
    pub input_topic: String,
    pub flags_topic: String,
    pub dead_letter_topic: String,
    /// Compacted topic that keeps each key's state (its changelog), with
    /// as many partitions as the input; created when missing. Absent: keys
    /// start over whenever their partition moves or the daemon restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_topic: Option<String>,
    /// How messages are written: `json` (a JSON object), or in a Schema
    /// Registry's wire format: `avro`, `protobuf`, `json_schema`.
    #[serde(default)]
    pub format: MessageFormat,
    /// Where the writers' schemas are, for the wire formats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_registry: Option<RegistryConfig>,
    /// How flags are written: `json`, or `avro` in the registry's wire
    /// format with the flag schema registered under `{flags_topic}-value`.
    #[serde(default)]
    pub flags_format: FlagsFormat,
    /// Take the entity key from the Kafka message key instead of the
    /// schema's key field.
    #[serde(default)]
    pub key_from_message: bool,
    /// Take the event time from the Kafka message timestamp instead of the
    /// schema's timestamp field.
    #[serde(default)]
    pub timestamp_from_message: bool,
}

/// Names of librdkafka properties whose values are secrets: never shown.
const SECRET_PROPERTY_WORDS: [&str; 5] = ["password", "secret", "token", "jaas", "key.pem"];

/// How a stream's flags are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagsFormat {
    #[default]
    Json,
    Avro,
}

impl RunConfig {
    /// Reads, checks and resolves the config at `path` (its stream configs
    /// and bundles are named relative to it).
    pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        let config = RunConfig::read(path)?;
        config.validate().map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(config)
    }

    /// The config at `path`, environment variables filled in and paths
    /// resolved, not yet checked.
    pub fn read(path: &Path) -> Result<RunConfig, ConfigError> {
        let read_error = |message: String| ConfigError::Read {
            path: path.display().to_string(),
            message,
        };
        let text = env::read_config(path).map_err(read_error)?;
        let mut config: RunConfig =
            toml::from_str(&text).map_err(|e| read_error(one_line(&e.to_string())))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for stream in &mut config.streams {
            stream.config = base.join(&stream.config);
            stream.model = stream.model.as_ref().map(|m| base.join(m));
        }
        Ok(config)
    }

    /// Every librdkafka property the config sets, by side (`all`,
    /// `consumer`, `producer`), secrets replaced by `[redacted]`.
    pub fn redacted_properties(&self) -> Vec<(&'static str, &str, String)> {
        let k = &self.kafka;
        [
            ("all", &k.properties),
            ("consumer", &k.consumer_properties),
            ("producer", &k.producer_properties),
        ]
        .into_iter()
        .flat_map(|(side, properties)| {
            properties.iter().map(move |(name, value)| {
                let secret = SECRET_PROPERTY_WORDS.iter().any(|w| name.contains(w));
                let shown = if secret {
                    "[redacted]".to_owned()
                } else {
                    value.clone()
                };
                (side, name.as_str(), shown)
            })
        })
        .collect()
    }

    /// Every problem the config has, not only the first.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = self.problems();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems.join("; ")))
        }
    }

    /// What is wrong with the config, each problem on its own.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.streams.is_empty() {
            problems.push("no [[streams]]".to_owned());
        }
        let mut topics = std::collections::HashSet::new();
        for stream in &self.streams {
            if !topics.insert(stream.input_topic.as_str()) {
                problems.push(format!(
                    "input topic {:?} is bound twice",
                    stream.input_topic
                ));
            }
            if stream.input_topic == stream.flags_topic
                || stream.input_topic == stream.dead_letter_topic
                || stream.state_topic.as_ref() == Some(&stream.input_topic)
            {
                problems.push(format!(
                    "stream on {:?} would write to its own input",
                    stream.input_topic
                ));
            }
        }
        for stream in &self.streams {
            match (stream.format, &stream.schema_registry) {
                (MessageFormat::Json, _) | (_, Some(_)) => {}
                (format, None) => problems.push(format!(
                    "stream on {:?}: format {} needs a schema_registry",
                    stream.input_topic,
                    format.name()
                )),
            }
        }
        for stream in &self.streams {
            if stream.flags_format == FlagsFormat::Avro && stream.schema_registry.is_none() {
                problems.push(format!(
                    "stream on {:?}: flags_format avro needs a schema_registry",
                    stream.input_topic
                ));
            }
        }
        let mut state_topics = std::collections::HashSet::new();
        for stream in &self.streams {
            let Some(state_topic) = &stream.state_topic else {
                continue;
            };
            let shared = self.streams.iter().any(|s| {
                [&s.input_topic, &s.flags_topic, &s.dead_letter_topic].contains(&state_topic)
            });
            if shared || !state_topics.insert(state_topic) {
                problems.push(format!(
                    "state topic {state_topic:?} must be the changelog of one stream only"
                ));
            }
        }
        let d = &self.daemon;
        let producer_limit = match self
            .kafka
            .producer_properties
            .get("message.max.bytes")
            .or_else(|| self.kafka.properties.get("message.max.bytes"))
        {
            None => PRODUCER_MESSAGE_MAX_BYTES,
            Some(v) => v.parse::<usize>().unwrap_or_else(|_| {
                problems.push(format!("message.max.bytes is not a number: {v:?}"));
                PRODUCER_MESSAGE_MAX_BYTES
            }),
        };
        let message_limit = producer_limit.saturating_sub(DEAD_LETTER_OVERHEAD_BYTES);
        // (setting, value, in range, the range)
        let ranges = [
            (
                "daemon.workers",
                d.workers,
                (1..=1024).contains(&d.workers),
                "[1, 1024]".to_owned(),
            ),
            (
                "daemon.max_batch_events",
                d.max_batch_events,
                (1..=65_536).contains(&d.max_batch_events),
                "[1, 65536]".to_owned(),
            ),
            (
                "daemon.max_batch_wait_ms",
                d.max_batch_wait_ms as usize,
                d.max_batch_wait_ms <= 60_000,
                "[0, 60000]".to_owned(),
            ),
            (
                "daemon.queue_events",
                d.queue_events,
                d.queue_events >= 1,
                "[1, inf)".to_owned(),
            ),
            (
                "daemon.max_message_bytes",
                d.max_message_bytes,
                (1..=message_limit).contains(&d.max_message_bytes),
                format!("[1, {message_limit}] (message.max.bytes less 64 KiB)"),
            ),
            (
                "daemon.key_ttl_secs",
                d.key_ttl_secs as usize,
                d.key_ttl_secs >= 1,
                "[1, inf)".to_owned(),
            ),
            (
                "daemon.max_keys",
                d.max_keys,
                d.max_keys >= 1,
                "[1, inf)".to_owned(),
            ),
            (
                "daemon.checkpoint_interval_ms",
                d.checkpoint_interval_ms as usize,
                (10..=3_600_000).contains(&d.checkpoint_interval_ms),
                "[10, 3600000]".to_owned(),
            ),
            (
                "daemon.restore_timeout_secs",
                d.restore_timeout_secs as usize,
                (1..=3600).contains(&d.restore_timeout_secs),
                "[1, 3600]".to_owned(),
            ),
            (
                "daemon.shutdown_timeout_secs",
                d.shutdown_timeout_secs as usize,
                (1..=3600).contains(&d.shutdown_timeout_secs),
                "[1, 3600]".to_owned(),
            ),
        ];
        problems.extend(out_of_range(ranges));
        if self.kafka.brokers.trim().is_empty() {
            problems.push("kafka.brokers is empty".to_owned());
        }
        problems
    }
}
