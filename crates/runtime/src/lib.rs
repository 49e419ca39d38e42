//! The tidewatch daemon's runtime: Kafka in, flags and metrics out, every
//! thread supervised, nothing lost. It runs the stream core's pipeline and
//! gets its models through a [`models::ModelProvider`], so it depends on
//! neither burn nor the training code.
//!
//! # Layout
//!
//! In the order an event meets them:
//!
//! - [`config`]: `tidewatch run`'s TOML (Kafka, daemon, HTTP, stream
//!   bindings).
//! - [`models`]: what the daemon asks of the learning side (bundles,
//!   online learners).
//! - [`source`]: the Kafka consumer's side: [`source::kafka`] message
//!   decoding and rebalances, [`source::offsets`] settled before they are
//!   stored.
//! - [`streams`]: each stream's config, model and decoder, loaded at
//!   start-up and on reload.
//! - [`daemon`]: start-up, the consumer thread, the rebalance handover of
//!   keys' state, reload and drain; [`worker`]: the threads that own keys,
//!   score micro-batches and checkpoint them.
//! - [`checkpoints`]: which input offsets each key's next checkpoint
//!   settles; [`changelog`]: a stream's key checkpoints on their compacted
//!   topic, read back one partition at a time.
//! - [`sink`]: the [`sink::alert`] flag record and the [`sink::kafka`]
//!   outbox that produces flags, dead letters and checkpoints.
//! - [`metrics`]: every Prometheus metric, declared once;
//!   [`readiness`]: what `/readyz` checks; [`http`]: `/metrics`,
//!   `/healthz`, `/readyz`.
//! - [`log_limit`]: repeated Kafka errors logged once per interval.
//! - [`validate`]: what start-up checks, without starting, every problem
//!   listed (`tidewatch validate`).
//! - [`status`]: the status page and `/api/status`.
//! - [`shutdown`]: the stop and reload signals; [`supervisor`]: every thread's end
//!   stops the daemon; [`error`]: the one error type they all return.

pub mod changelog;
pub mod checkpoints;
pub mod config;
pub mod daemon;
pub mod error;
pub mod http;
pub mod log_limit;
pub mod metrics;
pub mod models;
pub mod readiness;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod status;
pub mod streams;
pub mod supervisor;
pub mod validate;
pub mod worker;
