//! The producer for flags, dead letters and key checkpoints. Every message
//! carries the input offsets it settles; the broker's acknowledgement settles it (and only
//! then may that offset be stored). A failed delivery is retried: losing a
//! flag would break at-least-once. A delivery the broker refuses for good
//! (not authorised, too large for the topic) is the daemon's error instead:
//! retried, it would stall every offset behind it for ever.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::log_limit;
use crate::metrics::Metrics;
use crate::source::offsets::{Settlement, SourceOffset};

/// A message on its way to the broker.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub topic: String,
    /// The partition, where it must be that one (a checkpoint goes to its
    /// key's input partition); otherwise the producer's partitioner picks.
    pub partition: Option<i32>,
    pub key: Vec<u8>,
    /// `None`: a tombstone.
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// The input offsets its acknowledgement settles.
    pub settles: Vec<SourceOffset>,
    pub kind: OutgoingKind,
}

#[derive(Debug, Clone)]
pub enum OutgoingKind {
    Flag {
        stream: Arc<str>,
        /// When the flagged event was read, for the consume-to-flag latency.
        consumed_at: Instant,
    },
    DeadLetter,
    /// A key's state, or its tombstone, on the stream's changelog.
    Checkpoint,
}

/// A message whose delivery failed, and why.
#[derive(Debug)]
pub struct Failed {
    pub outgoing: Box<Outgoing>,
    pub error: KafkaError,
}

impl Failed {
    /// Whether retrying cannot help: the broker refused the message for a
    /// reason that does not pass.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self.error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
                    | RDKafkaErrorCode::MessageSizeTooLarge
                    | RDKafkaErrorCode::InvalidRecord
                    | RDKafkaErrorCode::PolicyViolation
            )
        )
    }
}

/// Receives delivery reports on the producer's own thread.
pub struct DeliveryContext {
    settled: Sender<Settlement>,
    failed: Sender<Failed>,
    metrics: Metrics,
}

impl ClientContext for DeliveryContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_limit::client_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_limit::client_error(&error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Outgoing>;

    fn delivery(&self, result: &DeliveryResult<'_>, outgoing: Box<Outgoing>) {
        match result {
            Ok(_) => {
                if let OutgoingKind::Flag {
                    stream,
                    consumed_at,
                } = &outgoing.kind
                {
                    self.metrics
                        .flag_delivered(stream, consumed_at.elapsed().as_secs_f64());
                }
                for &at in &outgoing.settles {
                    // The receiver is gone only once the daemon has stopped.
                    let _ = self.settled.send(Settlement::Done(at));
                }
            }
            Err((error, _)) => {
                self.metrics
                    .produce_failed(&outgoing.topic, &error.to_string());
                let _ = self.failed.send(Failed {
                    outgoing,
                    error: error.clone(),
                });
            }
        }
    }
}

/// Sends flags and dead letters.
pub struct Outbox {
    producer: ThreadedProducer<DeliveryContext>,
}

impl Outbox {
    pub fn new(
        config: &ClientConfig,
        settled: Sender<Settlement>,
        failed: Sender<Failed>,
        metrics: Metrics,
    ) -> Result<Outbox, KafkaError> {
        let context = DeliveryContext {
            settled,
            failed,
            metrics,
        };
        Ok(Outbox {
            producer: config.create_with_context(context)?,
        })
    }

    /// Queues a message, waiting while the producer's queue is full.
    pub fn send(&self, outgoing: Box<Outgoing>) -> Result<(), KafkaError> {
        let headers =
            outgoing
                .headers
                .iter()
                .fold(OwnedHeaders::new(), |headers, (name, value)| {
                    headers.insert(Header {
                        key: name,
                        value: Some(value),
                    })
                });
        // The record borrows from the message it carries, so keep the
        // parts apart while the record lives.
        let (topic, key, payload) = (
            outgoing.topic.clone(),
            outgoing.key.clone(),
            outgoing.payload.clone(),
        );
        let partition = outgoing.partition;
        let mut record = BaseRecord::with_opaque_to(&topic, outgoing)
            .key(&key[..])
            .headers(headers);
        if let Some(payload) = &payload {
            record = record.payload(&payload[..]);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Waits until every queued message is acknowledged (or `timeout`).
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}
