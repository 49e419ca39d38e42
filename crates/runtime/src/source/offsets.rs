//! Which input offsets may be committed: an offset is stored only when it
//! and every offset before it in its partition have been settled (scored,
//! its flag or dead letter acknowledged, and, on a stream with a
//! changelog, the checkpoint that holds its effect acknowledged), so a
//! crash re-reads anything not fully through the pipeline and skips
//! nothing.

use std::collections::{BTreeMap, HashMap};

/// One input message, by stream (index in the run config), partition and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceOffset {
    pub stream: usize,
    pub partition: i32,
    pub offset: i64,
}

/// What a thread tells the consumer about an offset it dispatched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// One of the things the offset waits for is done.
    Done(SourceOffset),
    /// The offset waits for one more acknowledgement (a flagged event on a
    /// stream with a changelog waits for its flag and its checkpoint). Sent
    /// before the message whose acknowledgement settles it, so it always
    /// arrives first.
    AlsoAwaits(SourceOffset),
}

#[derive(Debug, Default)]
struct PartitionOffsets {
    /// Unsettled offsets and how many settlements each still waits for.
    in_flight: BTreeMap<i64, u32>,
    /// One past the highest offset dispatched.
    next: Option<i64>,
    /// The last offset handed out for storing.
    stored: Option<i64>,
}

impl PartitionOffsets {
    /// The next offset to consume after a restart: the oldest unsettled
    /// offset, or one past the highest dispatched.
    fn committable(&self) -> Option<i64> {
        self.in_flight.keys().next().copied().or(self.next)
    }
}

/// Tracks dispatched and settled offsets per (stream, partition).
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<(usize, i32), PartitionOffsets>,
}

impl OffsetTracker {
    pub fn dispatched(&mut self, at: SourceOffset) {
        let p = self
            .partitions
            .entry((at.stream, at.partition))
            .or_default();
        p.in_flight.insert(at.offset, 1);
        p.next = Some(p.next.map_or(at.offset + 1, |n| n.max(at.offset + 1)));
    }

    pub fn apply(&mut self, settlement: Settlement) {
        match settlement {
            Settlement::Done(at) => self.settled(at),
            Settlement::AlsoAwaits(at) => {
                if let Some(waits) = self
                    .partitions
                    .get_mut(&(at.stream, at.partition))
                    .and_then(|p| p.in_flight.get_mut(&at.offset))
                {
                    *waits += 1;
                }
            }
        }
    }

    pub fn settled(&mut self, at: SourceOffset) {
        if let Some(p) = self.partitions.get_mut(&(at.stream, at.partition))
            && let Some(waits) = p.in_flight.get_mut(&at.offset)
        {
            *waits -= 1;
            if *waits == 0 {
                p.in_flight.remove(&at.offset);
            }
        }
    }

    /// (stream, partition, next offset to consume) for every partition
    /// whose committable offset moved since the last call.
    pub fn advanced(&mut self) -> Vec<(usize, i32, i64)> {
        let mut moved = Vec::new();
        for (&(stream, partition), p) in &mut self.partitions {
            if let Some(next) = p.committable()
                && p.stored != Some(next)
            {
                p.stored = Some(next);
                moved.push((stream, partition, next));
            }
        }
        moved
    }

    /// Unsettled offsets in the given partitions (all when `None`).
    pub fn in_flight(&self, only: Option<&[(usize, i32)]>) -> usize {
        self.partitions
            .iter()
            .filter(|(k, _)| only.is_none_or(|keys| keys.contains(k)))
            .map(|(_, p)| p.in_flight.len())
            .sum()
    }

    /// Forgets partitions this consumer no longer owns.
    pub fn forget(&mut self, partitions: &[(usize, i32)]) {
        for key in partitions {
            self.partitions.remove(key);
        }
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
    fn stores_only_the_settled_prefix() {
        let mut tracker = OffsetTracker::default();
        for offset in 10..15 {
            tracker.dispatched(at(0, offset));
        }
        tracker.dispatched(at(1, 3));
        assert_eq!(tracker.in_flight(None), 6);
        // 11 and 12 settle out of order: 10 still holds the partition back.
        tracker.settled(at(0, 12));
        tracker.settled(at(0, 11));
        let mut moved = tracker.advanced();
        moved.sort();
        assert_eq!(moved, [(0, 0, 10), (0, 1, 3)]);
        assert!(tracker.advanced().is_empty());
        tracker.settled(at(0, 10));
        assert_eq!(tracker.advanced(), [(0, 0, 13)]);
        tracker.settled(at(0, 13));
        tracker.settled(at(0, 14));
        assert_eq!(tracker.advanced(), [(0, 0, 15)]);
        assert_eq!(tracker.in_flight(Some(&[(0, 0)])), 0);
        assert_eq!(tracker.in_flight(Some(&[(0, 1)])), 1);
        tracker.forget(&[(0, 1)]);
        assert_eq!(tracker.in_flight(None), 0);
    }

    #[test]
    fn an_offset_that_awaits_two_acknowledgements_needs_both() {
        let mut tracker = OffsetTracker::default();
        tracker.dispatched(at(0, 0));
        tracker.dispatched(at(0, 1));
        tracker.apply(Settlement::AlsoAwaits(at(0, 0)));
        tracker.apply(Settlement::Done(at(0, 1)));
        tracker.apply(Settlement::Done(at(0, 0)));
        assert_eq!(tracker.advanced(), [(0, 0, 0)]);
        tracker.apply(Settlement::Done(at(0, 0)));
        assert_eq!(tracker.advanced(), [(0, 0, 2)]);
        assert_eq!(tracker.in_flight(None), 0);
    }
}
