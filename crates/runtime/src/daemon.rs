//! The daemon: Kafka in, flags and metrics out, nothing lost, and each
//! key's state kept across restarts and rebalances.
//!
//! ```text
//! consumer thread ──(key hash)──► worker 1..n ──► outbox (producer) ──► flags topic
//!   poll, decode,                  micro-batch,      │                 ──► state topic (changelog)
//!   dead letters ───────────────────────────────────►│ acknowledged
//!   ▲                                                 ▼
//!   └──────────── settled offsets ◄───────────────────┘   store only the settled prefix
//! ```
//!
//! One consumer thread reads every input partition, decodes messages,
//! sends bad ones to the dead-letter topic and dispatches the rest to the
//! worker that owns the key (a stable hash), through bounded queues: a slow
//! worker or broker slows consumption instead of growing memory. Each worker
//! ([`crate::worker`]) owns its keys' state and scores micro-batches.
//!
//! An input offset is settled when the broker acknowledged everything its
//! event caused: its flag or dead letter, and, on a stream with a
//! `state_topic`, the checkpoint that holds its key's new state (without
//! one, an unflagged event settles once scored). The consumer stores
//! offsets only up to the oldest unsettled one in each partition, so a
//! crash re-reads what was not through and skips nothing (at-least-once),
//! and a restored key's state never misses a committed event.
//!
//! When partitions are assigned, their keys are restored from the
//! changelog before any of their events is read (`/readyz` answers 503
//! meanwhile); before partitions are revoked, their keys are checkpointed,
//! acknowledged and forgotten. SIGHUP ([`DaemonHandle::reload`]) reads the
//! bundles again: a valid one scores from the next batch on, a bad one is
//! refused and the old one goes on.
//!
//! Shutdown (SIGTERM, SIGINT, [`DaemonHandle::shutdown`]) stops reading,
//! lets the workers finish their queues and checkpoint, waits for
//! acknowledgements, stores and commits, all within
//! `shutdown_timeout_secs`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;

use crate::changelog::{self, Topics};
use crate::config::RunConfig;
use crate::error::DaemonError;
use crate::http;
use crate::log_limit;
use crate::metrics::Metrics;
use crate::models::ModelProvider;
use crate::readiness::Readiness;
use crate::shutdown::{Reload, Shutdown};
use crate::sink::alert::ModelRef;
use crate::sink::kafka::{Failed, Outbox, Outgoing, OutgoingKind};
use crate::source::kafka::{
    BadInput, ConsumerShared, InputContext, OVERSIZED, OVERSIZED_EXCERPT_BYTES, PartitionListener,
    REGISTRY_UNAVAILABLE,
};
use crate::source::offsets::{OffsetTracker, SourceOffset};
use crate::status::StatusBoard;
use crate::streams::StreamRuntime;
use crate::supervisor::Supervisor;
use crate::worker::{Event, Work, Worker, Workers};

/// A running daemon.
pub struct DaemonHandle {
    shutdown: Shutdown,
    reload: Reload,
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

    /// A handle on the reload request, for signal handlers.
    pub fn reload_signal(&self) -> Reload {
        self.reload.clone()
    }

    /// Asks the daemon to read its streams' bundles again.
    pub fn reload(&self) {
        self.reload.request();
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
pub(crate) fn client_config(
    config: &RunConfig,
    specific: &BTreeMap<String, String>,
) -> ClientConfig {
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka.brokers);
    for (key, value) in config.kafka.properties.iter().chain(specific) {
        client.set(key, value);
    }
    client
}

/// How long start-up waits for the broker's answers about topics.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts the daemon: loads every stream's model from `models`, creates
/// missing changelogs, connects, and returns once the threads run.
pub fn start(
    config: RunConfig,
    models: Arc<dyn ModelProvider>,
    metrics: Metrics,
) -> Result<DaemonHandle, DaemonError> {
    config.validate()?;
    let mut streams: Vec<StreamRuntime> = config
        .streams
        .iter()
        .map(|b| StreamRuntime::load(b, models.as_ref(), config.daemon.max_message_bytes))
        .collect::<Result<_, _>>()?;
    for stream in &mut streams {
        stream.register_flag_schema()?;
    }
    let board = StatusBoard::default();
    for stream in &streams {
        let model = &stream.model.reference;
        metrics.model(&stream.name, &model.name, &model.version);
        metrics.stream(&stream.name, stream.binding.state_topic.is_some());
        board.stream(&stream.name, &stream.binding.input_topic, model);
    }
    if streams.iter().any(|s| s.binding.state_topic.is_some()) {
        let topics = Topics::connect(&client_config(&config, &BTreeMap::new()), TOPIC_TIMEOUT)?;
        for stream in &streams {
            if let Some(state_topic) = &stream.binding.state_topic {
                let partitions = topics.input_partitions(&stream.binding.input_topic)?;
                topics.ensure_changelog(state_topic, partitions)?;
            }
        }
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
    let mut queues = Vec::with_capacity(config.daemon.workers);
    let mut worker_queues = Vec::with_capacity(config.daemon.workers);
    for _ in 0..config.daemon.workers {
        let (tx, rx) = mpsc::sync_channel(config.daemon.queue_events);
        queues.push(tx);
        worker_queues.push(rx);
    }
    let workers = Arc::new(Workers::new(queues));
    let restore_failure = Arc::new(Mutex::new(None));
    let handover = KeyHandover {
        streams: Arc::clone(&streams),
        workers: Arc::clone(&workers),
        client: client_config(&config, &config.kafka.consumer_properties),
        restore_timeout: Duration::from_secs(config.daemon.restore_timeout_secs),
        readiness: readiness.clone(),
        metrics: metrics.clone(),
        failure: Arc::clone(&restore_failure),
    };
    let consumer: BaseConsumer<InputContext> =
        consumer_config.create_with_context(InputContext {
            shared: Arc::clone(&shared),
            listener: Arc::new(handover),
        })?;
    let topics: Vec<&str> = shared.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;

    let mut supervisor = Supervisor::new(shutdown.clone());
    // HTTP answers (/readyz with 503) while the rest drains, and stops last.
    let (http_address, http_server) = http::bind(
        &config.http.listen,
        metrics.clone(),
        readiness.clone(),
        board.clone(),
        shutdown.clone(),
        supervisor.closing(),
    )?;
    supervisor.spawn_service("tidewatch-http", Some(http_server), |server| {
        server.take().expect("the server runs once").run()
    })?;
    for (index, queue) in worker_queues.into_iter().enumerate() {
        let worker = Worker {
            streams: Arc::clone(&streams),
            queue,
            outbox: Arc::clone(&outbox),
            settled: settled_tx.clone(),
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            board: board.clone(),
            max_batch_events: config.daemon.max_batch_events,
            max_batch_wait: Duration::from_millis(config.daemon.max_batch_wait_ms),
            key_ttl: Duration::from_secs(config.daemon.key_ttl_secs),
            max_keys: config.daemon.max_keys,
            checkpoint_interval: Duration::from_millis(config.daemon.checkpoint_interval_ms),
        };
        supervisor.spawn(&format!("tidewatch-worker-{index}"), worker, Worker::run)?;
    }
    drop(settled_tx);
    readiness.set_models_loaded();

    let reload = Reload::default();
    let input = Input {
        consumer,
        shared,
        models: current_models(&streams),
        streams,
        workers,
        outbox,
        provider: models,
        reload: reload.clone(),
        board,
        restore_failure,
        failed: failed_rx,
        metrics: metrics.clone(),
        shutdown: shutdown.clone(),
        shutdown_timeout: Duration::from_secs(config.daemon.shutdown_timeout_secs),
    };
    supervisor.spawn("tidewatch-consumer", input, Input::run)?;
    Ok(DaemonHandle {
        shutdown,
        reload,
        supervisor,
        http_address,
        metrics,
    })
}

/// The first pause before asking an unavailable schema registry again; it
/// doubles up to [`REGISTRY_LONGEST_WAIT`].
const REGISTRY_FIRST_WAIT: Duration = Duration::from_millis(100);
const REGISTRY_LONGEST_WAIT: Duration = Duration::from_secs(5);

/// How often the consumer thread settles acknowledgements, stores offsets
/// and queues retries; doing it for every message costs a sixth of the
/// thread's time.
const SERVICE_INTERVAL: Duration = Duration::from_millis(1);

fn current_models(streams: &[StreamRuntime]) -> Vec<ModelRef> {
    streams.iter().map(|s| s.model.reference.clone()).collect()
}

/// The consumer thread.
struct Input {
    consumer: BaseConsumer<InputContext>,
    shared: Arc<ConsumerShared>,
    streams: Arc<Vec<StreamRuntime>>,
    workers: Arc<Workers>,
    outbox: Arc<Outbox>,
    provider: Arc<dyn ModelProvider>,
    /// The model each stream scores with now.
    models: Vec<ModelRef>,
    reload: Reload,
    board: StatusBoard,
    /// Set by a rebalance that could not restore its keys.
    restore_failure: Arc<Mutex<Option<DaemonError>>>,
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
            if self.reload.take() {
                self.reload_models();
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => self.handle(&message)?,
                Some(Err(error)) => log_limit::kafka_problem(
                    tracing::Level::WARN,
                    &format!("consumer error: {error}"),
                ),
            }
            let failure = self
                .restore_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(error) = failure {
                return Err(error);
            }
        }
        self.drain()
    }

    /// Reads every bundle stream's bundle again and hands the valid ones to
    /// the workers; a bundle that fails to load or validate is refused and
    /// the stream goes on with its model.
    fn reload_models(&mut self) {
        for (index, runtime) in self.streams.iter().enumerate() {
            let name = &runtime.name;
            match runtime.reload(self.provider.as_ref()) {
                None => {}
                Some(Ok(model)) => {
                    let previous = &self.models[index];
                    let new = model.reference.clone();
                    tracing::info!(
                        stream = %name,
                        from = %previous.version,
                        to = %new.version,
                        "model reloaded"
                    );
                    self.metrics.model_reloaded(
                        name,
                        (&previous.name, &previous.version),
                        &new.name,
                        &new.version,
                    );
                    self.board.model(name, &new);
                    self.workers.broadcast(|| Work::Reload {
                        stream: index,
                        model: model.clone(),
                    });
                    self.models[index] = new;
                }
                Some(Err(error)) => {
                    tracing::error!(stream = %name, %error, "model reload refused; the stream keeps its model");
                    self.metrics.model_reload_refused(name);
                }
            }
        }
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
        let mut wait = REGISTRY_FIRST_WAIT;
        let decoded = loop {
            let decoded = runtime.decoder.decode(
                message.payload(),
                message.key(),
                message.timestamp().to_millis(),
            );
            match decoded {
                Err(bad) if bad.reason == REGISTRY_UNAVAILABLE => {
                    // Good data waits for the registry; the offset is not
                    // dispatched, so a shutdown meanwhile re-reads it.
                    if wait == REGISTRY_FIRST_WAIT {
                        tracing::warn!(stream = %runtime.name, partition = at.partition, offset = at.offset, detail = %bad.detail, "waiting for the schema registry");
                    }
                    if !self.wait_for_registry(wait)? {
                        return Ok(());
                    }
                    wait = (wait * 2).min(REGISTRY_LONGEST_WAIT);
                }
                decoded => break decoded,
            }
        };
        if wait != REGISTRY_FIRST_WAIT {
            tracing::info!(stream = %runtime.name, "the schema registry answers again");
        }
        self.shared
            .tracker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .dispatched(at);
        match decoded {
            // While the worker's queue is full, acknowledgements are
            // still settled.
            Ok(record) => self.workers.dispatch(
                Event {
                    stream,
                    record,
                    at,
                    consumed_at: Instant::now(),
                },
                || self.service(),
            ),
            Err(bad) => self.dead_letter(runtime, message, at, &bad),
        }
    }

    /// Settles acknowledgements for `wait`; false once a shutdown is asked.
    fn wait_for_registry(&self, wait: Duration) -> Result<bool, DaemonError> {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if self.shutdown.is_requested() {
                return Ok(false);
            }
            self.service()?;
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(true)
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
            partition: None,
            key: key.to_vec(),
            payload: Some(payload.to_vec()),
            headers,
            settles: vec![at],
            kind: OutgoingKind::DeadLetter,
        };
        Ok(self.outbox.send(Box::new(outgoing))?)
    }

    /// Stops the workers, waits for every event in flight to settle, then
    /// stores and commits.
    fn drain(&mut self) -> Result<(), DaemonError> {
        tracing::info!("shutting down: draining events in flight");
        let deadline = Instant::now() + self.shutdown_timeout;
        // Closing the queues lets the workers finish theirs, checkpoint
        // and stop.
        self.workers.close();
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

/// Moves keys' state with their partitions: restores the keys of assigned
/// partitions from the changelog and checkpoints those of revoked ones.
struct KeyHandover {
    streams: Arc<Vec<StreamRuntime>>,
    workers: Arc<Workers>,
    /// Connection properties for reading changelogs.
    client: ClientConfig,
    restore_timeout: Duration,
    readiness: Readiness,
    metrics: Metrics,
    failure: Arc<Mutex<Option<DaemonError>>>,
}

impl KeyHandover {
    fn has_changelog(&self, stream: usize) -> bool {
        self.streams[stream].binding.state_topic.is_some()
    }
}

impl PartitionListener for KeyHandover {
    fn revoking(&self, partitions: &[(usize, i32)]) {
        if partitions
            .iter()
            .any(|&(stream, _)| self.has_changelog(stream))
        {
            self.workers.broadcast(|| Work::Release {
                partitions: partitions.to_vec(),
            });
        }
    }

    fn assigned(&self, partitions: &[(usize, i32)]) {
        for &(stream, partition) in partitions {
            let runtime = &self.streams[stream];
            let Some(state_topic) = &runtime.binding.state_topic else {
                continue;
            };
            // Not ready while the changelog is read, then until every key
            // read is restored.
            self.readiness.restoring(1);
            let started = Instant::now();
            match changelog::read_partition(
                &self.client,
                state_topic,
                partition,
                self.restore_timeout,
            ) {
                Ok(keys) => {
                    tracing::info!(
                        stream = %runtime.name,
                        partition,
                        keys = keys.len(),
                        read_secs = started.elapsed().as_secs_f64(),
                        "changelog read; restoring its keys"
                    );
                    self.readiness.restoring(keys.len());
                    for (key, record) in keys {
                        if !self.workers.restore(stream, partition, key, record) {
                            self.readiness.restored();
                        }
                    }
                    self.metrics
                        .restore_took(&runtime.name, started.elapsed().as_secs_f64());
                }
                Err(error) => {
                    tracing::error!(%error, "cannot restore keys; stopping rather than let them start over");
                    let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                    failure.get_or_insert(error.into());
                }
            }
            self.readiness.restored();
        }
    }
}
