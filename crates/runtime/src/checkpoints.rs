//! One worker's bookkeeping for one stream's changelog: which input
//! partition each key came from (its checkpoint goes to the same partition
//! of the state topic) and which input offsets its next checkpoint settles.
//!
//! An event changes its key's state; its offset may be committed only once
//! a checkpoint holding that change is acknowledged, or after a crash the
//! replayed event would meet a restored state that never saw it, or a
//! state that forgot it. So the worker keeps each key's scored offsets
//! here until the key's checkpoint is produced, and that record settles
//! them.

use std::collections::HashMap;

use crate::sink::kafka::{Outgoing, OutgoingKind};
use crate::source::offsets::SourceOffset;

#[derive(Debug)]
struct KeyEntry {
    partition: i32,
    /// Offsets whose effect on the key is in no acknowledged checkpoint yet.
    unsettled: Vec<SourceOffset>,
    /// Size of the key's last checkpoint record.
    record_bytes: usize,
}

/// What a checkpoint pass produced.
#[derive(Debug, Default)]
pub struct Checkpoint {
    pub records: Vec<Outgoing>,
    /// How much the stream's state grew, in bytes (negative: it shrank).
    pub bytes_delta: i64,
}

/// The changelog side of one stream on one worker.
#[derive(Debug)]
pub struct KeyLedger {
    topic: String,
    keys: HashMap<String, KeyEntry>,
}

impl KeyLedger {
    pub fn new(topic: &str) -> KeyLedger {
        KeyLedger {
            topic: topic.to_owned(),
            keys: HashMap::new(),
        }
    }

    fn entry(&mut self, key: &str, partition: i32) -> &mut KeyEntry {
        if !self.keys.contains_key(key) {
            self.keys.insert(
                key.to_owned(),
                KeyEntry {
                    partition,
                    unsettled: Vec::new(),
                    record_bytes: 0,
                },
            );
        }
        self.keys.get_mut(key).expect("just inserted")
    }

    /// `at`'s event changed `key`: its offset waits for the key's next
    /// checkpoint.
    pub fn scored(&mut self, key: &str, at: SourceOffset) {
        self.entry(key, at.partition).unsettled.push(at);
    }

    /// `key` was restored from a record of `bytes` in `partition`.
    pub fn restored(&mut self, key: &str, partition: i32, bytes: usize) -> i64 {
        let entry = self.entry(key, partition);
        let delta = bytes as i64 - entry.record_bytes as i64;
        entry.record_bytes = bytes;
        delta
    }

    /// The messages that write `records` (key, checkpoint record), each
    /// settling the offsets its key took since its last checkpoint.
    pub fn checkpoint(&mut self, records: Vec<(String, Vec<u8>)>) -> Checkpoint {
        let mut checkpoint = Checkpoint::default();
        for (key, record) in records {
            // A key that took an event is in the ledger: `scored` came first.
            let Some(entry) = self.keys.get_mut(&key) else {
                continue;
            };
            checkpoint.bytes_delta += record.len() as i64 - entry.record_bytes as i64;
            entry.record_bytes = record.len();
            checkpoint.records.push(Outgoing {
                topic: self.topic.clone(),
                partition: Some(entry.partition),
                key: key.into_bytes(),
                payload: Some(record),
                headers: Vec::new(),
                settles: std::mem::take(&mut entry.unsettled),
                kind: OutgoingKind::Checkpoint,
            });
        }
        checkpoint
    }

    /// Tombstones for keys the worker forgot (evicted): their records are
    /// deleted, and their unsettled offsets settle with the tombstone (the
    /// state they changed is gone for good).
    pub fn tombstones(&mut self, keys: &[String]) -> Checkpoint {
        let mut checkpoint = Checkpoint::default();
        for key in keys {
            let Some(entry) = self.keys.remove(key) else {
                continue;
            };
            checkpoint.bytes_delta -= entry.record_bytes as i64;
            checkpoint.records.push(Outgoing {
                topic: self.topic.clone(),
                partition: Some(entry.partition),
                key: key.clone().into_bytes(),
                payload: None,
                headers: Vec::new(),
                settles: entry.unsettled,
                kind: OutgoingKind::Checkpoint,
            });
        }
        checkpoint
    }

    /// Stops keeping the keys of `partitions` (revoked: their next owner
    /// restores them from the changelog) and returns them with the bytes
    /// their records took. Call after their last checkpoint.
    pub fn release(&mut self, partitions: &[i32]) -> (Vec<String>, i64) {
        let mut released = Vec::new();
        let mut bytes = 0;
        self.keys.retain(|key, entry| {
            let keep = !partitions.contains(&entry.partition);
            if !keep {
                debug_assert!(entry.unsettled.is_empty(), "checkpointed before release");
                released.push(key.clone());
                bytes += entry.record_bytes as i64;
            }
            keep
        });
        (released, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64) -> SourceOffset {
        SourceOffset {
            stream: 0,
            partition,
            offset,
        }
    }

    #[test]
    fn a_checkpoint_settles_what_its_key_took_and_goes_to_its_partition() {
        let mut ledger = KeyLedger::new("state");
        ledger.scored("a", at(2, 10));
        ledger.scored("b", at(0, 11));
        ledger.scored("a", at(2, 12));
        let written = ledger.checkpoint(vec![("a".into(), vec![1; 30])]);
        assert_eq!(written.bytes_delta, 30);
        let [record] = &written.records[..] else {
            panic!("one record: {:?}", written.records);
        };
        assert_eq!(
            (record.partition, record.settles.clone()),
            (Some(2), vec![at(2, 10), at(2, 12)])
        );
        // A smaller record: the state shrinks by the difference.
        ledger.scored("a", at(2, 13));
        let again = ledger.checkpoint(vec![("a".into(), vec![1; 20])]);
        assert_eq!(again.bytes_delta, -10);
        assert_eq!(again.records[0].settles, [at(2, 13)]);
        // Evicted: a tombstone that settles what b still held.
        let gone = ledger.tombstones(&["b".into()]);
        assert_eq!(gone.records[0].payload, None);
        assert_eq!(gone.records[0].settles, [at(0, 11)]);
        assert_eq!(ledger.release(&[2]), (vec!["a".to_owned()], 20));
        assert!(
            ledger
                .checkpoint(vec![("a".into(), vec![])])
                .records
                .is_empty()
        );
    }
}
