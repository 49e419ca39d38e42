//! The Kafka side of the input: message bytes -> record (or the reason it
//! is bad input), and the consumer context that keeps offsets honest across
//! rebalances.

use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::log_limit;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::source::offsets::{OffsetTracker, Settlement};
use crate::source::registry::WireDecoder;
use tidewatch_stream::source::Record;
use tidewatch_stream::source::decode::{Decoder, FieldErrorKind};
use tidewatch_stream::source::json::JsonFields;

/// The reason a message waits for the schema registry instead of going to
/// the dead-letter topic.
pub const REGISTRY_UNAVAILABLE: &str = "registry_unavailable";
/// The reason of a message larger than `daemon.max_message_bytes`.
pub const OVERSIZED: &str = "oversized";
/// How much of an oversized message's key and payload its dead letter
/// carries.
pub const OVERSIZED_EXCERPT_BYTES: usize = 1024;

/// Why a message cannot be scored.
#[derive(Debug, Clone, PartialEq)]
pub struct BadInput {
    /// Short stable reason: `oversized`, `empty`, `not_utf8`, `not_json`,
    /// `missing_field`, `not_numeric`, `bad_value`, `bad_timestamp`,
    /// `bad_key`; for the registry's wire formats `bad_header`,
    /// `unknown_schema`, `bad_schema`, `bad_record` (and
    /// `registry_unavailable`, which is retried, never dead-lettered).
    pub reason: &'static str,
    pub detail: String,
}

/// What a stream needs to decode its messages.
#[derive(Clone)]
pub struct MessageDecoder {
    pub decoder: Decoder,
    /// For a stream in a Schema Registry's wire format.
    pub wire: Option<Arc<WireDecoder>>,
    pub key_from_message: bool,
    pub timestamp_from_message: bool,
    pub max_message_bytes: usize,
}

impl MessageDecoder {
    pub fn decode(
        &self,
        payload: Option<&[u8]>,
        key: Option<&[u8]>,
        timestamp_ms: Option<i64>,
    ) -> Result<Record, BadInput> {
        let bad = |reason, detail: String| BadInput { reason, detail };
        let payload = payload.ok_or_else(|| bad("empty", "no payload".into()))?;
        let size = payload.len() + key.map_or(0, <[u8]>::len);
        if size > self.max_message_bytes {
            return Err(bad(
                OVERSIZED,
                format!(
                    "{size} bytes of key and payload, more than {}",
                    self.max_message_bytes
                ),
            ));
        }
        let key = match (self.key_from_message, key) {
            (false, _) => None,
            (true, Some(bytes)) => Some(
                std::str::from_utf8(bytes)
                    .map_err(|_| bad("bad_key", "message key is not UTF-8".into()))?
                    .to_owned(),
            ),
            (true, None) => return Err(bad("bad_key", "message has no key".into())),
        };
        let timestamp_ms = if self.timestamp_from_message {
            Some(
                timestamp_ms
                    .ok_or_else(|| bad("bad_timestamp", "message has no timestamp".into()))?,
            )
        } else {
            None
        };
        let decoded = match &self.wire {
            Some(wire) => {
                let fields = wire
                    .decode(payload)
                    .map_err(|e| bad(e.reason(), e.to_string()))?;
                self.decoder.decode_with(&fields, key, timestamp_ms)
            }
            None => {
                let object =
                    JsonFields::parse(payload).map_err(|e| bad("not_json", e.to_string()))?;
                self.decoder.decode_with(&object, key, timestamp_ms)
            }
        };
        decoded.map_err(|e| {
            let reason = match e.kind {
                FieldErrorKind::NotNumeric(_) => "not_numeric",
                _ => e.reason(),
            };
            bad(reason, e.to_string())
        })
    }
}

/// State shared by the consumer loop and the rebalance callbacks (which
/// run inside `poll`, on the same thread).
pub struct ConsumerShared {
    pub tracker: Mutex<OffsetTracker>,
    pub settled: Mutex<Receiver<Settlement>>,
    /// Input topic of each stream, by stream index.
    pub topics: Vec<String>,
    pub metrics: Metrics,
    /// How long a revocation may wait for in-flight events.
    pub drain_timeout: Duration,
    pub readiness: Readiness,
}

impl ConsumerShared {
    /// Applies every settlement received so far.
    pub fn apply_settled(&self) {
        let receiver = self.settled.lock().unwrap_or_else(|p| p.into_inner());
        let mut tracker = self.tracker.lock().unwrap_or_else(|p| p.into_inner());
        while let Ok(settlement) = receiver.try_recv() {
            self.settle(&mut tracker, settlement);
        }
    }

    /// Applies one settlement. The trace line per settled event (target
    /// `tidewatch::settled`, off by default) is what the delivery tests
    /// read to prove that no offset was skipped across restarts.
    fn settle(&self, tracker: &mut OffsetTracker, settlement: Settlement) {
        if let Settlement::Done(at) = settlement {
            tracing::trace!(
                target: "tidewatch::settled",
                topic = %self.topics[at.stream],
                partition = at.partition,
                offset = at.offset,
                "settled"
            );
        }
        tracker.apply(settlement);
    }

    /// Waits up to `timeout` for settlements until `done` holds.
    pub fn settle_until(&self, timeout: Duration, done: impl Fn(&OffsetTracker) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.apply_settled();
            if done(&self.tracker.lock().unwrap_or_else(|p| p.into_inner())) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let receiver = self.settled.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(settlement) = receiver.recv_timeout(Duration::from_millis(5)) {
                self.settle(
                    &mut self.tracker.lock().unwrap_or_else(|p| p.into_inner()),
                    settlement,
                );
            }
        }
    }

    /// Stores the offsets that moved, so the next commit takes them.
    pub fn store_advanced(&self, consumer: &BaseConsumer<impl ConsumerContext>) {
        let moved = self
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .advanced();
        if moved.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (stream, partition, next) in moved {
            if list
                .add_partition_offset(&self.topics[stream], partition, Offset::Offset(next))
                .is_err()
            {
                tracing::warn!(partition, next, "cannot express offset");
            }
        }
        if let Err(error) = consumer.store_offsets(&list) {
            // A partition revoked meanwhile cannot be stored; its next
            // owner re-reads from the last commit, which is safe.
            tracing::debug!(%error, "storing offsets");
        }
    }

    fn stream_partitions(&self, list: &TopicPartitionList) -> Vec<(usize, i32)> {
        list.elements()
            .iter()
            .filter_map(|e| {
                let stream = self.topics.iter().position(|t| t == e.topic())?;
                Some((stream, e.partition()))
            })
            .collect()
    }
}

/// What happens to the keys' state when input partitions move; the
/// callbacks run inside the consumer's poll, before any event of an
/// assigned partition is read and before a revoked one is committed.
pub trait PartitionListener: Send + Sync {
    /// `partitions` (stream, partition) are about to go: their keys'
    /// state must be on its way to the changelog.
    fn revoking(&self, partitions: &[(usize, i32)]);

    /// `partitions` were assigned: their keys' state must be restored
    /// before their events are dispatched.
    fn assigned(&self, partitions: &[(usize, i32)]);
}

/// Drains revoked partitions before they go, restores assigned ones, and
/// reports lag.
pub struct InputContext {
    pub shared: Arc<ConsumerShared>,
    pub listener: Arc<dyn PartitionListener>,
}

impl ClientContext for InputContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_limit::client_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        log_limit::client_error(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let broker_up = statistics.brokers.values().any(|b| b.state == "UP");
        self.shared.readiness.set_broker_up(broker_up);
        for (topic, t) in &statistics.topics {
            if !self.shared.topics.contains(topic) {
                continue;
            }
            for (&partition, p) in &t.partitions {
                if partition >= 0 && p.consumer_lag >= 0 {
                    self.shared.metrics.lag(topic, partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for InputContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(list) = rebalance else {
            return;
        };
        let revoked = self.shared.stream_partitions(list);
        self.listener.revoking(&revoked);
        let drained = self.shared.settle_until(self.shared.drain_timeout, |t| {
            t.in_flight(Some(&revoked)) == 0
        });
        if !drained {
            tracing::warn!(
                partitions = revoked.len(),
                "revoked partitions still had events in flight; they will be re-read"
            );
        }
        self.shared.store_advanced(consumer);
        if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::debug!(%error, "commit on revocation");
        }
        self.shared
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget(&revoked);
        tracing::info!(partitions = revoked.len(), "partitions revoked");
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            tracing::info!(partitions = list.count(), "partitions assigned");
            self.listener.assigned(&self.shared.stream_partitions(list));
        }
        let assigned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        self.shared.readiness.set_partitions(assigned);
        self.shared.metrics.partitions(assigned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tidewatch_stream::source::Schema;

    fn decoder(key_from_message: bool) -> MessageDecoder {
        let mut schema = Schema::identity("s", "ts", &["v"]);
        schema.key_field = Some("device".into());
        MessageDecoder {
            decoder: Decoder::new(schema),
            wire: None,
            key_from_message,
            timestamp_from_message: false,
            max_message_bytes: 100,
        }
    }

    #[test]
    fn bad_messages_have_stable_reasons() {
        let d = decoder(false);
        let reason = |payload: &[u8]| d.decode(Some(payload), None, None).unwrap_err().reason;
        assert_eq!(
            reason(b"{\"device\":\"a\",\"ts\":1,\"v\":\"x\"}"),
            "not_numeric"
        );
        assert_eq!(reason(b"{\"device\":\"a\",\"ts\":1}"), "missing_field");
        assert_eq!(reason(b"not json"), "not_json");
        assert_eq!(reason(b"[1,2]"), "not_json");
        assert_eq!(reason(&[b' '; 101]), "oversized");
        assert_eq!(d.decode(None, None, None).unwrap_err().reason, "empty");
        let record = d
            .decode(Some(b"{\"device\":\"a\",\"ts\":1,\"v\":2.5}"), None, None)
            .unwrap();
        assert_eq!(
            (record.key.as_str(), record.timestamp_ms, record.inputs[0]),
            ("a", 1000, 2.5)
        );
    }

    #[test]
    fn the_message_key_can_name_the_entity() {
        let d = decoder(true);
        let record = d
            .decode(Some(b"{\"ts\":1,\"v\":2}"), Some(b"pump-9"), None)
            .unwrap();
        assert_eq!(record.key, "pump-9");
        assert_eq!(
            d.decode(Some(b"{\"ts\":1,\"v\":2}"), None, None)
                .unwrap_err()
                .reason,
            "bad_key"
        );
    }
}
