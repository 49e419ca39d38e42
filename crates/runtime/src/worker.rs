//! The scoring threads. Each owns the state of the keys hashed to it (no
//! locks on the hot path), scores micro-batches, sends flags, and writes
//! its changed keys to their stream's changelog every
//! `checkpoint_interval_ms`, when partitions are revoked, and when it
//! stops.
//!
//! What reaches a worker goes through one queue, in order: events, the
//! key checkpoints to restore when a partition arrives, the release of
//! revoked partitions, and reloaded models. So a restored key has its
//! state before its partition's first event, and a reload takes effect
//! between two batches.

use std::hash::{Hash, Hasher};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tidewatch_stream::pipeline::{LearnFailure, Pipeline, Status, Verdict};
use tidewatch_stream::source::Record;

use crate::checkpoints::{Checkpoint, KeyLedger};
use crate::error::DaemonError;
use crate::log_limit::RepeatLimiter;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::sink::alert::{Flag, SourceRef};
use crate::sink::kafka::{Outbox, Outgoing, OutgoingKind};
use crate::source::offsets::{Settlement, SourceOffset};
use crate::status::StatusBoard;
use crate::streams::{LoadedModel, StreamRuntime};

/// An event on its way to the worker that owns its key.
pub struct Event {
    pub stream: usize,
    pub record: Record,
    pub at: SourceOffset,
    pub consumed_at: Instant,
}

/// What a worker is asked to do.
pub enum Work {
    Event(Event),
    /// Give `key` the state its changelog `record` holds.
    Restore {
        stream: usize,
        partition: i32,
        key: String,
        record: Vec<u8>,
    },
    /// Checkpoint every changed key, then forget the keys of these
    /// (stream, partition)s: their next owner restores them.
    Release {
        partitions: Vec<(usize, i32)>,
    },
    /// Score `stream` with `model` from now on.
    Reload {
        stream: usize,
        model: LoadedModel,
    },
}

/// The workers' queues, shared by the consumer loop and the rebalance
/// callbacks (both on the consumer thread); closing them stops the workers.
#[derive(Default)]
pub struct Workers {
    queues: Mutex<Vec<SyncSender<Work>>>,
}

impl Workers {
    pub fn new(queues: Vec<SyncSender<Work>>) -> Workers {
        Workers {
            queues: Mutex::new(queues),
        }
    }

    /// Queues `event` for its key's worker; while that queue is full,
    /// `service` runs between tries (settling acknowledgements).
    pub fn dispatch(
        &self,
        event: Event,
        mut service: impl FnMut() -> Result<(), DaemonError>,
    ) -> Result<(), DaemonError> {
        let hash = key_hash(&event.record.key);
        let mut work = Work::Event(event);
        loop {
            {
                let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
                if queues.is_empty() {
                    return Err(DaemonError::Thread("the workers stopped".into()));
                }
                match queues[owner(hash, queues.len())].try_send(work) {
                    Ok(()) => return Ok(()),
                    Err(TrySendError::Full(returned)) => work = returned,
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(DaemonError::Thread("a worker stopped".into()));
                    }
                }
            }
            service()?;
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Queues a key's checkpoint for the worker that owns the key, waiting
    /// while its queue is full. False once the workers are gone.
    pub fn restore(&self, stream: usize, partition: i32, key: String, record: Vec<u8>) -> bool {
        let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if queues.is_empty() {
            return false;
        }
        let queue = &queues[owner(key_hash(&key), queues.len())];
        queue
            .send(Work::Restore {
                stream,
                partition,
                key,
                record,
            })
            .is_ok()
    }

    /// Queues `work()` for every worker, waiting while queues are full.
    pub fn broadcast(&self, work: impl Fn() -> Work) {
        let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        for queue in queues.iter() {
            // A worker that is gone has already stopped the daemon.
            let _ = queue.send(work());
        }
    }

    /// Closes the queues: each worker finishes its queue, checkpoints and
    /// stops.
    pub fn close(&self) {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// A key's stable hash, the same in every daemon of the group.
fn key_hash(key: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Which of `workers` owns the key of hash `hash`.
fn owner(hash: u64, workers: usize) -> usize {
    (hash % workers as u64) as usize
}

/// What a worker keeps of one stream.
struct StreamState {
    pipeline: Pipeline,
    model: LoadedModel,
    /// The stream's changelog, when it has a `state_topic`.
    ledger: Option<KeyLedger>,
    /// Keys last reported to `tidewatch_active_keys`.
    reported_keys: usize,
}

/// Refused checkpoints, logged once per stream and reason per interval.
static RESTORE_REFUSALS: LazyLock<RepeatLimiter> = LazyLock::new(RepeatLimiter::default);

/// How often a worker forgets idle keys.
const EVICTION_INTERVAL: Duration = Duration::from_secs(10);

/// A scoring thread.
pub struct Worker {
    pub streams: Arc<Vec<StreamRuntime>>,
    pub queue: Receiver<Work>,
    pub outbox: Arc<Outbox>,
    pub settled: mpsc::Sender<Settlement>,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub board: StatusBoard,
    pub max_batch_events: usize,
    pub max_batch_wait: Duration,
    pub key_ttl: Duration,
    pub max_keys: usize,
    pub checkpoint_interval: Duration,
}

impl Worker {
    pub fn run(&mut self) -> Result<(), DaemonError> {
        let mut streams: Vec<StreamState> = self
            .streams
            .iter()
            .map(|s| StreamState {
                pipeline: Pipeline::new(Arc::clone(&s.model.config), s.model.source.clone()),
                model: s.model.clone(),
                ledger: s.binding.state_topic.as_deref().map(KeyLedger::new),
                reported_keys: 0,
            })
            .collect();
        let mut last_eviction = Instant::now();
        let mut last_checkpoint = Instant::now();
        let mut batch: Vec<Event> = Vec::with_capacity(self.max_batch_events);
        loop {
            // A control message ends a batch: the events before it are
            // scored first.
            let mut control = None;
            match self.queue.recv_timeout(Duration::from_millis(200)) {
                Ok(Work::Event(event)) => batch.push(event),
                Ok(work) => control = Some(work),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.checkpoint(&mut streams)?;
                    return Ok(());
                }
            }
            let deadline = Instant::now() + self.max_batch_wait;
            while control.is_none() && !batch.is_empty() && batch.len() < self.max_batch_events {
                let wait = deadline.saturating_duration_since(Instant::now());
                match self.queue.recv_timeout(wait) {
                    Ok(Work::Event(event)) => batch.push(event),
                    Ok(work) => control = Some(work),
                    Err(_) => break,
                }
            }
            for (index, stream) in streams.iter_mut().enumerate() {
                let events: Vec<Event> = batch.extract_if(.., |e| e.stream == index).collect();
                if !events.is_empty() {
                    self.score(index, stream, events)?;
                }
            }
            if let Some(work) = control {
                self.control(&mut streams, work)?;
            }
            if last_eviction.elapsed() >= EVICTION_INTERVAL {
                last_eviction = Instant::now();
                self.evict(&mut streams)?;
            }
            if last_checkpoint.elapsed() >= self.checkpoint_interval {
                last_checkpoint = Instant::now();
                self.checkpoint(&mut streams)?;
            }
        }
    }

    fn score(
        &self,
        index: usize,
        stream: &mut StreamState,
        events: Vec<Event>,
    ) -> Result<(), DaemonError> {
        let runtime = &self.streams[index];
        self.metrics.batch(&runtime.name, events.len());
        let records: Vec<Record> = events.iter().map(|e| e.record.clone()).collect();
        let verdicts = stream.pipeline.process_batch(&records);
        for failure in stream.pipeline.take_learn_failures() {
            self.metrics.refit_failed(&runtime.name);
            log_learn_failure(&runtime.name, &failure);
        }
        let learning = verdicts
            .iter()
            .filter(|v| v.status != Status::Scored)
            .count();
        self.metrics.learning(&runtime.name, learning);
        for (event, verdict) in events.into_iter().zip(verdicts) {
            self.metrics
                .scored(&runtime.name, verdict.score, verdict.threshold);
            match (&mut stream.ledger, verdict.flag) {
                (Some(ledger), flag) => {
                    // The offset waits for the key's checkpoint, and for
                    // its flag when there is one.
                    if flag {
                        let _ = self.settled.send(Settlement::AlsoAwaits(event.at));
                    }
                    ledger.scored(&event.record.key, event.at);
                    if flag {
                        self.send_flag(runtime, &stream.model, event, &verdict)?;
                    }
                }
                (None, true) => self.send_flag(runtime, &stream.model, event, &verdict)?,
                (None, false) => {
                    let _ = self.settled.send(Settlement::Done(event.at));
                }
            }
        }
        self.report_keys(&runtime.name, stream, 0, 0);
        Ok(())
    }

    /// Reports how this worker's keys of a stream changed since it last
    /// did, with the keys just evicted.
    fn report_keys(&self, name: &str, stream: &mut StreamState, idle: usize, over: usize) {
        let now = stream.pipeline.key_count();
        let change = now as i64 - stream.reported_keys as i64;
        stream.reported_keys = now;
        self.metrics.keys(name, change, idle, over);
    }

    fn send_flag(
        &self,
        runtime: &StreamRuntime,
        model: &LoadedModel,
        event: Event,
        verdict: &Verdict,
    ) -> Result<(), DaemonError> {
        let source = SourceRef {
            topic: runtime.binding.input_topic.clone(),
            partition: event.at.partition,
            offset: event.at.offset,
        };
        let flag = Flag::new(
            &runtime.name,
            &event.record.key,
            event.record.timestamp_ms,
            verdict,
            model.reference.clone(),
            source,
        );
        self.board.flag(&flag);
        let outgoing = Outgoing {
            topic: runtime.binding.flags_topic.clone(),
            partition: None,
            key: event.record.key.into_bytes(),
            payload: Some(match &runtime.flag_encoder {
                Some(encoder) => flag.to_avro(encoder),
                None => flag.to_json(),
            }),
            headers: Vec::new(),
            settles: vec![event.at],
            kind: OutgoingKind::Flag {
                stream: Arc::clone(&runtime.name),
                consumed_at: event.consumed_at,
            },
        };
        Ok(self.outbox.send(Box::new(outgoing))?)
    }

    /// Writes every changed key of every stream with a changelog.
    fn checkpoint(&self, streams: &mut [StreamState]) -> Result<(), DaemonError> {
        for (runtime, stream) in self.streams.iter().zip(streams) {
            let Some(ledger) = &mut stream.ledger else {
                continue;
            };
            let started = Instant::now();
            let records = stream.pipeline.checkpoint_changed(&stream.model.id());
            if records.is_empty() {
                continue;
            }
            let checkpoint = ledger.checkpoint(records);
            self.send(&runtime.name, checkpoint)?;
            self.metrics
                .checkpointed(&runtime.name, started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    fn send(&self, stream: &str, checkpoint: Checkpoint) -> Result<(), DaemonError> {
        self.metrics.state_bytes(stream, checkpoint.bytes_delta);
        for record in checkpoint.records {
            self.outbox.send(Box::new(record))?;
        }
        Ok(())
    }

    /// Forgets idle keys, and the least recent beyond `max_keys`; their
    /// changelog records are deleted.
    fn evict(&self, streams: &mut [StreamState]) -> Result<(), DaemonError> {
        for (runtime, stream) in self.streams.iter().zip(streams) {
            let evicted = stream.pipeline.evict(self.key_ttl, self.max_keys);
            self.report_keys(&runtime.name, stream, evicted.idle, evicted.over_capacity);
            if let Some(ledger) = &mut stream.ledger {
                let tombstones = ledger.tombstones(&evicted.keys);
                self.send(&runtime.name, tombstones)?;
            }
        }
        Ok(())
    }

    fn control(&self, streams: &mut [StreamState], work: Work) -> Result<(), DaemonError> {
        match work {
            Work::Event(_) => unreachable!("events are batched"),
            Work::Restore {
                stream,
                partition,
                key,
                record,
            } => {
                self.restore(&mut streams[stream], stream, partition, &key, &record);
                self.readiness.restored();
            }
            Work::Release { partitions } => {
                self.checkpoint(streams)?;
                for (index, (runtime, stream)) in self.streams.iter().zip(streams).enumerate() {
                    let Some(ledger) = &mut stream.ledger else {
                        continue;
                    };
                    let revoked: Vec<i32> = partitions
                        .iter()
                        .filter(|(s, _)| *s == index)
                        .map(|(_, p)| *p)
                        .collect();
                    let (keys, bytes) = ledger.release(&revoked);
                    for key in &keys {
                        stream.pipeline.forget(key);
                    }
                    self.metrics.state_bytes(&runtime.name, -bytes);
                    self.report_keys(&runtime.name, stream, 0, 0);
                }
            }
            Work::Reload { stream, model } => {
                let runtime = &self.streams[stream];
                let state = &mut streams[stream];
                let reloaded = state
                    .pipeline
                    .reload(Arc::clone(&model.config), model.source.clone());
                tracing::debug!(
                    stream = %runtime.name,
                    kept = reloaded.kept,
                    restarted = reloaded.restarted,
                    "worker reloaded its model"
                );
                state.model = model;
            }
        }
        Ok(())
    }

    fn restore(
        &self,
        stream: &mut StreamState,
        index: usize,
        partition: i32,
        key: &str,
        record: &[u8],
    ) {
        let name = &self.streams[index].name;
        match stream.pipeline.restore(key, record, &stream.model.id()) {
            Ok(()) => {
                if let Some(ledger) = &mut stream.ledger {
                    let delta = ledger.restored(key, partition, record.len());
                    self.metrics.state_bytes(name, delta);
                }
                self.metrics.restored(name);
            }
            Err(error) => {
                self.metrics.restore_refused(name, error.reason());
                // After a model change every key may be refused at once.
                let kind = format!("{name} {}", error.reason());
                if let Some(held) = RESTORE_REFUSALS.admit(&kind, Instant::now()) {
                    tracing::warn!(stream = %name, key, %error, more_like_it = held, "a key's checkpoint was refused; the key starts over");
                }
            }
        }
    }
}

/// A key that cannot learn (too little normal data, say) must not stall
/// its partition or touch other keys: it keeps what it had.
fn log_learn_failure(stream: &str, failure: &LearnFailure) {
    let LearnFailure { key, refit, error } = failure;
    if *refit {
        tracing::warn!(stream, key, %error, "a refit failed; the key keeps its previous model");
    } else {
        tracing::warn!(stream, key, %error, "a key could not learn yet; it goes on learning");
    }
}
