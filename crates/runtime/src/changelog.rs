//! A stream's state changelog: the topic its keys' checkpoints go to,
//! keyed by the entity and co-partitioned with the input, so that whoever
//! owns input partition `p` finds its keys' state in changelog partition
//! `p`. Restoring reads one partition from its start to its end; a key's
//! last record wins and a record without a
//! payload (a tombstone) forgets the key, as compaction would.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

/// Why a changelog partition could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChangelogError {
    #[error("changelog {topic}[{partition}]: {source}")]
    Kafka {
        topic: String,
        partition: i32,
        #[source]
        source: KafkaError,
    },
    #[error(
        "changelog {topic}[{partition}]: not read to its end within {timeout:?} (last offset read: {reached})"
    )]
    TimedOut {
        topic: String,
        partition: i32,
        reached: i64,
        timeout: Duration,
    },
    #[error("kafka admin client: {0}")]
    Client(#[source] KafkaError),
    #[error("kafka topic {topic}: {source}")]
    Topic {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error(
        "changelog {topic} has {found} partitions; it must have its input's {expected} (delete it or name another state_topic)"
    )]
    Partitions {
        topic: String,
        found: usize,
        expected: usize,
    },
    #[error(
        "input topic {topic} does not exist, so its changelog cannot be given its partition count (create the input first)"
    )]
    NoInput { topic: String },
    #[error("changelog {topic}[{partition}]: a record at offset {offset} has no key")]
    NoKey {
        topic: String,
        partition: i32,
        offset: i64,
    },
}

/// One admin connection for what start-up and `validate` ask about
/// topics: whether they exist, their partition counts, and the changelogs
/// to create.
pub struct Topics {
    admin: AdminClient<DefaultClientContext>,
    /// Longest wait for each answer.
    timeout: Duration,
}

impl Topics {
    /// A client with `client`'s properties (brokers, security); it
    /// connects on its first question.
    pub fn connect(client: &ClientConfig, timeout: Duration) -> Result<Topics, ChangelogError> {
        let admin = client
            .clone()
            // Asking for a topic's metadata must not create it with the
            // broker's default partition count.
            .set("allow.auto.create.topics", "false")
            .create()
            .map_err(ChangelogError::Client)?;
        Ok(Topics { admin, timeout })
    }

    /// How many partitions `topic` has, if the broker has it.
    pub fn partitions(&self, topic: &str) -> Result<Option<usize>, ChangelogError> {
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(|source| ChangelogError::Topic {
                topic: topic.to_owned(),
                source,
            })?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map(|t| t.partitions().len())
            .filter(|&found| found > 0))
    }

    /// How many partitions `topic` (a stream's input) has; its changelog
    /// needs as many.
    pub fn input_partitions(&self, topic: &str) -> Result<usize, ChangelogError> {
        self.partitions(topic)?
            .ok_or_else(|| ChangelogError::NoInput {
                topic: topic.to_owned(),
            })
    }

    /// Creates `topic` as a compacted changelog of `partitions` partitions
    /// (the input's, so that the two are co-partitioned) when the broker
    /// has none; an existing one must have as many partitions.
    pub fn ensure_changelog(&self, topic: &str, partitions: usize) -> Result<(), ChangelogError> {
        if let Some(found) = self.partitions(topic)? {
            if found != partitions {
                return Err(ChangelogError::Partitions {
                    topic: topic.to_owned(),
                    found,
                    expected: partitions,
                });
            }
            return Ok(());
        }
        let kafka = |source| ChangelogError::Topic {
            topic: topic.to_owned(),
            source,
        };
        let count = i32::try_from(partitions).expect("a topic has fewer than 2^31 partitions");
        // Replication -1: the broker's default.
        let new_topic = NewTopic::new(topic, count, TopicReplication::Fixed(-1))
            .set("cleanup.policy", "compact");
        let options = AdminOptions::new().operation_timeout(Some(self.timeout));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a single-threaded runtime starts");
        let results = runtime
            .block_on(self.admin.create_topics([&new_topic], &options))
            .map_err(kafka)?;
        for result in results {
            match result {
                Ok(_) => {}
                // Another daemon of the group created it first.
                Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => return Err(kafka(KafkaError::AdminOp(code))),
            }
        }
        Ok(())
    }
}

/// The last record of every key in partition `partition` of `topic`, read
/// to the partition's end. `client` holds the connection's properties
/// (brokers, security); the read joins no group and commits nothing.
pub fn read_partition(
    client: &ClientConfig,
    topic: &str,
    partition: i32,
    timeout: Duration,
) -> Result<HashMap<String, Vec<u8>>, ChangelogError> {
    let kafka = |source| ChangelogError::Kafka {
        topic: topic.to_owned(),
        partition,
        source,
    };
    let mut client = client.clone();
    // librdkafka wants a group id even for a consumer that only assigns.
    if client.get("group.id").is_none() {
        client.set("group.id", "tidewatch-changelog-reader");
    }
    let consumer: BaseConsumer = client
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .map_err(kafka)?;
    let deadline = Instant::now() + timeout;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(kafka)?;
    consumer.assign(&assignment).map_err(kafka)?;
    let mut keys = HashMap::new();
    // The end is where the broker's fetches say the partition ends (its
    // "partition EOF"), not its listed high watermark: Nisshi listed 1 for
    // a partition holding five records sent as one batch.
    let mut reached = -1;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ChangelogError::TimedOut {
                topic: topic.to_owned(),
                partition,
                reached,
                timeout,
            });
        }
        let message = match consumer.poll(left.min(Duration::from_millis(100))) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(p))) if p == partition => break,
            Some(Err(error)) => return Err(kafka(error)),
            Some(Ok(message)) => message,
        };
        reached = message.offset();
        let key = message.key().ok_or_else(|| ChangelogError::NoKey {
            topic: topic.to_owned(),
            partition,
            offset: message.offset(),
        })?;
        let key = String::from_utf8_lossy(key).into_owned();
        match message.payload() {
            Some(record) => keys.insert(key, record.to_vec()),
            None => keys.remove(&key),
        };
    }
    Ok(keys)
}
