//! The daemon: Kafka in, flags and metrics out, nothing lost.
//!
//! ```text
//! consumer thread ──(key hash)──► worker 1..n ──► outbox (producer) ──► flags topic
//!   poll, decode,                  micro-batch,      │ acknowledged
//!   dead letters ───────────────────────────────────►│
//!   ▲                              no flag: settled   ▼
//!   └──────────── settled offsets ◄───────────────────┘   store only the settled prefix
//! ```
//!
//! One consumer thread reads every input partition, decodes messages,
//! sends bad ones to the dead-letter topic and dispatches the rest to the
//! worker that owns the key (a stable hash), through bounded queues: a slow
//! worker or broker slows consumption instead of growing memory. Each worker
//! owns its keys' state (no locks on the hot path) and scores micro-batches.
//! An input offset is settled when its event was scored without a flag, or
//! when the broker acknowledged its flag or dead letter; the consumer stores
//! offsets only up to the oldest unsettled one in each partition, so a crash
//! re-reads what was not through and skips nothing (at-least-once).
//!
//! Shutdown (SIGTERM, SIGINT, [`DaemonHandle::shutdown`]) stops reading,
//! lets the workers finish their queues, waits for acknowledgements, stores
//! and commits, all within `shutdown_timeout_secs`. A revoked partition is
//! drained and committed the same way before it goes.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;

use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::pipeline::{LearnFailure, ModelSource, Pipeline, Verdict};
use tidewatch_stream::source::Record;
use tidewatch_stream::source::decode::Decoder;

use crate::config::{RunConfig, StreamBinding};
use crate::error::DaemonError;
use crate::http;
use crate::log_limit;
use crate::metrics::Metrics;
use crate::models::ModelProvider;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;
use crate::sink::alert::{Flag, ModelRef, SourceRef};
use crate::sink::kafka::{Failed, Outbox, Outgoing, OutgoingKind};
use crate::source::kafka::{
    BadInput, ConsumerShared, InputContext, MessageDecoder, OVERSIZED, OVERSIZED_EXCERPT_BYTES,
};
use crate::source::offsets::{OffsetTracker, SourceOffset};
use crate::supervisor::Supervisor;

/// One stream as the daemon runs it.
struct StreamRuntime {
    name: Arc<str>,
    binding: StreamBinding,
    config: Arc<StreamConfig>,
    source: ModelSource,
    model: ModelRef,
    decoder: MessageDecoder,
}

impl StreamRuntime {
    fn load(
        binding: &StreamBinding,
        models: &dyn ModelProvider,
        max_message_bytes: usize,
    ) -> Result<StreamRuntime, DaemonError> {
        let config = StreamConfig::load(&binding.config)?;
        let name: Arc<str> = Arc::from(config.schema.name.as_str());
        let (config, source, model) = match &binding.model {
            Some(dir) => {
                let bundle =
                    models
                        .bundle(dir, &config.schema)
                        .map_err(|source| DaemonError::Model {
                            stream: name.to_string(),
                            source,
                        })?;
                let model = ModelRef {
                    name: bundle.name,
                    version: bundle.version,
                };
                let config = StreamConfig {
                    online: config.online.clone(),
                    ..bundle.config
                };
                (config, ModelSource::Bundle(bundle.model), model)
            }
            None => {
                let warmup_events = config.online.warmup_for(None);
                let model = ModelRef {
                    name: name.to_string(),
                    version: "online".to_owned(),
                };
                let online = models
                    .online(&config)
                    .map_err(|source| DaemonError::Model {
                        stream: name.to_string(),
                        source,
                    })?;
                let source = ModelSource::Online {
                    warmup_events,
                    learners: online.learners,
                    prior: online.prior,
                };
                (config, source, model)
            }
        };
        let decoder = MessageDecoder {
            decoder: Decoder::new(config.schema.clone()),
            key_from_message: binding.key_from_message,
            timestamp_from_message: binding.timestamp_from_message,
            max_message_bytes,
        };
        Ok(StreamRuntime {
            name,
            binding: binding.clone(),
            config: Arc::new(config),
            source,
            model,
            decoder,
        })
    }
}

/// An event on its way to the worker that owns its key.
struct WorkItem {
    stream: usize,
    record: Record,
    at: SourceOffset,
    consumed_at: Instant,
}

/// A running daemon.
pub struct DaemonHandle {
    shutdown: Shutdown,
    supervisor: Supervisor,
    http_address: SocketAddr,
    metrics: Metrics,
}

impl DaemonHandle {
    /// Address the HTTP endpoint listens on.
    pub fn http_address(&self) -> SocketAddr {
        self.http_address
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A handle on the stop signal, for signal handlers.
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Asks the daemon to drain and stop.
    pub fn shutdown(&self) {
        self.shutdown.request();
    }

    /// Waits for every thread; the first thread's failure is the daemon's.
    pub fn join(self) -> Result<(), DaemonError> {
        self.supervisor.join()
    }
}

/// Client properties shared by the consumer and the producer.
fn client_config(config: &RunConfig, specific: &BTreeMap<String, String>) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka.brokers);
    for (key, value) in config.kafka.properties.iter().chain(specific) {
        client.set(key, value);
    }
    client
}

/// Starts the daemon: loads every stream's model from `models`, connects,
/// and returns once the threads run.
pub fn start(
    config: RunConfig,
    models: &dyn ModelProvider,
    metrics: Metrics,
) -> Result<DaemonHandle, DaemonError> {
    config.validate()?;
    let streams: Vec<StreamRuntime> = config
        .streams
        .iter()
        .map(|b| StreamRuntime::load(b, models, config.daemon.max_message_bytes))
        .collect::<Result<_, _>>()?;
    for stream in &streams {
        metrics.model(&stream.name, &stream.model.name, &stream.model.version);
    }
    let streams = Arc::new(streams);
    let shutdown = Shutdown::new();
    let readiness = Readiness::default();

    let (settled_tx, settled_rx) = mpsc::channel();
    let (failed_tx, failed_rx) = mpsc::channel();
    let producer_config = client_config(&config, &config.kafka.producer_properties);
    let outbox = Arc::new(Outbox::new(
        &producer_config,
        settled_tx.clone(),
        failed_tx,
        metrics.clone(),
    )?);

    let mut consumer_config = client_config(&config, &config.kafka.consumer_properties);
    for (key, value) in [
        ("auto.offset.reset", "earliest"),
        ("statistics.interval.ms", "5000"),
        // librdkafka pauses a partition's fetching for this long once its
        // local queue is full (default 1000 ms); the daemon empties a full
        // queue in well under a second and would then sit idle, which
        // capped a one-worker daemon at ~150,000 events/s.
        ("fetch.queue.backoff.ms", "10"),
    ] {
        if consumer_config.get(key).is_none() {
            consumer_config.set(key, value);
        }
    }
    consumer_config
        .set("group.id", &config.kafka.group_id)
        .set("enable.auto.commit", "true")
        // Offsets are stored by hand, only once their events are settled.
        .set("enable.auto.offset.store", "false");
    let shared = Arc::new(ConsumerShared {
        tracker: Mutex::new(OffsetTracker::default()),
        settled: Mutex::new(settled_rx),
        topics: streams
            .iter()
            .map(|s| s.binding.input_topic.clone())
            .collect(),
        metrics: metrics.clone(),
        drain_timeout: Duration::from_secs(config.daemon.shutdown_timeout_secs),
        readiness: readiness.clone(),
    });
    let consumer: BaseConsumer<InputContext> =
        consumer_config.create_with_context(InputContext {
            shared: Arc::clone(&shared),
        })?;
    let topics: Vec<&str> = shared.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let mut supervisor = Supervisor::new(shutdown.clone());
    // HTTP answers (/readyz with 503) while the rest drains, and stops last.
    let (http_address, http_server) = http::bind(
        &config.http.listen,
        metrics.clone(),
        readiness.clone(),
        shutdown.clone(),
        supervisor.closing(),
    )?;
    supervisor.spawn_service("tidewatch-http", Some(http_server), |server| {
        server.take().expect("the server runs once").run()
    })?;
    let mut queues = Vec::with_capacity(config.daemon.workers);
    for index in 0..config.daemon.workers {
        let (tx, rx) = mpsc::sync_channel(config.daemon.queue_events);
        queues.push(tx);
        let worker = Worker {
            streams: Arc::clone(&streams),
            queue: rx,
            outbox: Arc::clone(&outbox),
            settled: settled_tx.clone(),
            metrics: metrics.clone(),
            max_batch_events: config.daemon.max_batch_events,
            max_batch_wait: Duration::from_millis(config.daemon.max_batch_wait_ms),
            key_ttl: Duration::from_secs(config.daemon.key_ttl_secs),
            max_keys: config.daemon.max_keys,
        };
        supervisor.spawn(&format!("tidewatch-worker-{index}"), worker, Worker::run)?;
    }
    drop(settled_tx);
    readiness.set_models_loaded();

    let input = Input {
        consumer,
        shared,
        streams,
        queues,
        outbox,
        failed: failed_rx,
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        shutdown_timeout: Duration::from_secs(config.daemon.shutdown_timeout_secs),
    };
    supervisor.spawn("tidewatch-consumer", input, Input::run)?;
    Ok(DaemonHandle {
        shutdown,
        supervisor,
        http_address,
        metrics,
    })
}

/// How often the consumer thread settles acknowledgements, stores offsets
/// and queues retries; doing it for every message costs a sixth of the
/// thread's time.
const SERVICE_INTERVAL: Duration = Duration::from_millis(1);

/// The consumer thread.
struct Input {
    consumer: BaseConsumer<InputContext>,
    shared: Arc<ConsumerShared>,
    streams: Arc<Vec<StreamRuntime>>,
    queues: Vec<SyncSender<WorkItem>>,
    outbox: Arc<Outbox>,
    failed: Receiver<Failed>,
    metrics: Metrics,
    shutdown: Shutdown,
    shutdown_timeout: Duration,
}

impl Input {
    fn run(&mut self) -> Result<(), DaemonError> {
        let mut serviced = Instant::now();
        while !self.shutdown.is_requested() {
            if serviced.elapsed() >= SERVICE_INTERVAL {
                self.service()?;
                serviced = Instant::now();
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => self.handle(&message)?,
                Some(Err(error)) => log_limit::kafka_problem(
                    tracing::Level::WARN,
                    &format!("consumer error: {error}"),
                ),
            }
        }
        self.drain()
    }

    /// Settles what was acknowledged, stores what moved, retries failed
    /// deliveries; a delivery refused for good is the thread's error.
    fn service(&self) -> Result<(), DaemonError> {
        self.shared.apply_settled();
        self.shared.store_advanced(&self.consumer);
        while let Ok(failed) = self.failed.try_recv() {
            if failed.is_permanent() {
                return Err(DaemonError::Delivery {
                    topic: failed.outgoing.topic.clone(),
                    error: failed.error,
                });
            }
            self.outbox.send(failed.outgoing)?;
        }
        Ok(())
    }

    fn handle(&self, message: &rdkafka::message::BorrowedMessage<'_>) -> Result<(), DaemonError> {
        let Some(stream) = self.shared.topics.iter().position(|t| t == message.topic()) else {
            return Ok(());
        };
        let runtime = &self.streams[stream];
        let at = SourceOffset {
            stream,
            partition: message.partition(),
            offset: message.offset(),
        };
        self.metrics.consumed(&runtime.name);
        self.shared
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dispatched(at);
        match runtime.decoder.decode(
            message.payload(),
            message.key(),
            message.timestamp().to_millis(),
        ) {
            Ok(record) => self.dispatch(WorkItem {
                stream,
                record,
                at,
                consumed_at: Instant::now(),
            }),
            Err(bad) => self.dead_letter(runtime, message, at, &bad),
        }
    }

    /// Hands the event to the worker that owns its key, waiting (while
    /// still settling acknowledgements) when that worker's queue is full.
    fn dispatch(&self, item: WorkItem) -> Result<(), DaemonError> {
        let mut hasher = std::hash::DefaultHasher::new();
        item.record.key.hash(&mut hasher);
        let queue = &self.queues[(hasher.finish() % self.queues.len() as u64) as usize];
        let mut item = item;
        loop {
            match queue.try_send(item) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(returned)) => {
                    item = returned;
                    self.service()?;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TrySendError::Disconnected(_)) => {
                    return Err(DaemonError::Thread("a worker stopped".into()));
                }
            }
        }
    }

    fn dead_letter(
        &self,
        runtime: &StreamRuntime,
        message: &rdkafka::message::BorrowedMessage<'_>,
        at: SourceOffset,
        bad: &BadInput,
    ) -> Result<(), DaemonError> {
        let topic = message.topic();
        self.metrics.dead_lettered(
            &runtime.name,
            bad.reason,
            topic,
            at.partition,
            at.offset,
            &bad.detail,
        );
        let mut headers = vec![
            (
                "tidewatch.reason".to_owned(),
                bad.reason.as_bytes().to_vec(),
            ),
            (
                "tidewatch.detail".to_owned(),
                bad.detail.as_bytes().to_vec(),
            ),
            (
                "tidewatch.source.topic".to_owned(),
                topic.as_bytes().to_vec(),
            ),
            (
                "tidewatch.source.partition".to_owned(),
                at.partition.to_string().into_bytes(),
            ),
            (
                "tidewatch.source.offset".to_owned(),
                at.offset.to_string().into_bytes(),
            ),
        ];
        let (mut key, mut payload) = (
            message.key().unwrap_or_default(),
            message.payload().unwrap_or_default(),
        );
        // An oversized message goes with the start of its key and payload
        // only: whole, it could be more than the producer may send.
        if bad.reason == OVERSIZED {
            headers.push((
                "tidewatch.payload_bytes".to_owned(),
                payload.len().to_string().into_bytes(),
            ));
            key = &key[..key.len().min(OVERSIZED_EXCERPT_BYTES)];
            payload = &payload[..payload.len().min(OVERSIZED_EXCERPT_BYTES)];
        }
        let outgoing = Outgoing {
            topic: runtime.binding.dead_letter_topic.clone(),
            key: key.to_vec(),
            payload: payload.to_vec(),
            headers,
            settles: at,
            kind: OutgoingKind::DeadLetter,
        };
        Ok(self.outbox.send(Box::new(outgoing))?)
    }

    /// Stops the workers, waits for every event in flight to settle, then
    /// stores and commits.
    fn drain(&mut self) -> Result<(), DaemonError> {
        tracing::info!("shutting down: draining events in flight");
        let deadline = Instant::now() + self.shutdown_timeout;
        // Closing the queues lets the workers finish theirs and stop.
        self.queues.clear();
        let settled = self
            .shared
            .settle_until(self.shutdown_timeout, |t| t.in_flight(None) == 0);
        // Retries still queued go out with the final flush.
        while let Ok(failed) = self.failed.try_recv() {
            if !failed.is_permanent() {
                let _ = self.outbox.send(failed.outgoing);
            }
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if let Err(error) = self.outbox.flush(remaining) {
            tracing::warn!(%error, "flush at shutdown");
        }
        self.shared.apply_settled();
        self.shared.store_advanced(&self.consumer);
        // None: nothing new to commit.
        let committed = match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => Some(true),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => None,
            Err(error) => {
                tracing::warn!(%error, "commit at shutdown failed; uncommitted events will be re-read");
                Some(false)
            }
        };
        let left = self
            .shared
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .in_flight(None);
        let drained = settled && left == 0;
        if drained && committed == Some(true) {
            tracing::info!("drained and committed");
        } else if drained && committed.is_none() {
            tracing::info!("drained; no new offsets to commit");
        } else if !drained {
            tracing::warn!(
                in_flight = left,
                "shutdown timed out; unsettled events will be re-read"
            );
        }
        self.consumer.unsubscribe();
        Ok(())
    }
}

/// A scoring thread: owns the state of the keys hashed to it.
struct Worker {
    streams: Arc<Vec<StreamRuntime>>,
    queue: Receiver<WorkItem>,
    outbox: Arc<Outbox>,
    settled: mpsc::Sender<SourceOffset>,
    metrics: Metrics,
    max_batch_events: usize,
    max_batch_wait: Duration,
    key_ttl: Duration,
    max_keys: usize,
}

/// How often a worker forgets idle keys.
const EVICTION_INTERVAL: Duration = Duration::from_secs(10);

impl Worker {
    fn run(&mut self) -> Result<(), DaemonError> {
        let mut pipelines: Vec<Pipeline> = self
            .streams
            .iter()
            .map(|s| Pipeline::new(Arc::clone(&s.config), s.source.clone()))
            .collect();
        let mut last_eviction = Instant::now();
        let mut batch: Vec<WorkItem> = Vec::with_capacity(self.max_batch_events);
        loop {
            match self.queue.recv_timeout(Duration::from_millis(200)) {
                Ok(item) => batch.push(item),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            let deadline = Instant::now() + self.max_batch_wait;
            while !batch.is_empty() && batch.len() < self.max_batch_events {
                let wait = deadline.saturating_duration_since(Instant::now());
                match self.queue.recv_timeout(wait) {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            for (stream, pipeline) in pipelines.iter_mut().enumerate() {
                let items: Vec<WorkItem> = batch.extract_if(.., |i| i.stream == stream).collect();
                if !items.is_empty() {
                    self.score(stream, pipeline, items)?;
                }
            }
            if last_eviction.elapsed() >= EVICTION_INTERVAL {
                last_eviction = Instant::now();
                for (runtime, pipeline) in self.streams.iter().zip(&mut pipelines) {
                    let evicted = pipeline.evict(self.key_ttl, self.max_keys);
                    self.metrics.keys(
                        &runtime.name,
                        pipeline.key_count(),
                        evicted.idle,
                        evicted.over_capacity,
                    );
                }
            }
        }
    }

    fn score(
        &self,
        stream: usize,
        pipeline: &mut Pipeline,
        items: Vec<WorkItem>,
    ) -> Result<(), DaemonError> {
        let runtime = &self.streams[stream];
        self.metrics.batch(&runtime.name, items.len());
        let records: Vec<Record> = items.iter().map(|i| i.record.clone()).collect();
        let verdicts = pipeline.process_batch(&records);
        for failure in pipeline.take_learn_failures() {
            self.metrics.refit_failed(&runtime.name);
            log_learn_failure(&runtime.name, &failure);
        }
        for (item, verdict) in items.into_iter().zip(verdicts) {
            self.metrics
                .scored(&runtime.name, verdict.score, verdict.threshold);
            if verdict.flag {
                self.send_flag(runtime, item, &verdict)?;
            } else {
                let _ = self.settled.send(item.at);
            }
        }
        self.metrics.keys(&runtime.name, pipeline.key_count(), 0, 0);
        Ok(())
    }

    fn send_flag(
        &self,
        runtime: &StreamRuntime,
        item: WorkItem,
        verdict: &Verdict,
    ) -> Result<(), DaemonError> {
        let source = SourceRef {
            topic: runtime.binding.input_topic.clone(),
            partition: item.at.partition,
            offset: item.at.offset,
        };
        let flag = Flag::new(
            &runtime.name,
            &item.record.key,
            item.record.timestamp_ms,
            verdict,
            runtime.model.clone(),
            source,
        );
        let outgoing = Outgoing {
            topic: runtime.binding.flags_topic.clone(),
            key: item.record.key.into_bytes(),
            payload: flag.to_json(),
            headers: Vec::new(),
            settles: item.at,
            kind: OutgoingKind::Flag {
                stream: Arc::clone(&runtime.name),
                consumed_at: item.consumed_at,
            },
        };
        Ok(self.outbox.send(Box::new(outgoing))?)
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
