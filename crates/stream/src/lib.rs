//! The stream core of tidewatch: what happens to an event between its
//! bytes and its verdict, with neither a training framework nor a Kafka
//! client in sight. Neural models learn what normal looks like in each
//! stream (a recurrent forecaster and a reconstruction autoencoder); here
//! their exported weights run as kernels, their errors become an anomaly
//! score in [0, 1], and thresholds and alert hygiene turn scores into flags.
//!
//! # Layout
//!
//! In the order an event meets them:
//!
//! - [`config`]: a stream's TOML configuration (schema, model shape,
//!   training, detection, online mode, state).
//! - [`source`]: the stream [`source::schema`], [`source::decode`] from raw
//!   fields to a [`source::Record`], [`source::json`] fields of a message
//!   payload, and [`source::file`] replay of CSV and JSON Lines with
//!   one-line errors naming file, line and column.
//! - [`state`]: per-key state: the input [`state::window`], the running
//!   [`state::scaler`], and the [`state::store`] of keys.
//! - [`infer`]: the hot path: hand-written kernels (LSTM and GRU steps,
//!   dense layers, vectorised activations) over `ndarray` buffers.
//! - [`detect`]: errors to scores ([`detect::score`], peaks-over-threshold
//!   error tails), [`detect::threshold`] (fixed, quantile, streaming POT)
//!   and [`detect::hygiene`] (persistence, cool-down).
//! - [`model`]: a trained model as scoring sees it (kernels and
//!   calibration), from which every new key starts.
//! - [`learner`]: the trait through which online learning is reached (the
//!   learning crate implements it); [`online`]: when a key learns and what
//!   from.
//! - [`checkpoint`]: a key's state (and, learning online, its own model
//!   and history) as one versioned record, in the binary [`codec`].
//! - [`pipeline`]: the streaming path that strings the stages together for
//!   a micro-batch of events; replay, calibration, online learning and the
//!   daemon all run through it.
//! - [`parallel`]: independent offline jobs on a few threads, results in
//!   order.

pub mod checkpoint;
pub mod codec;
pub mod config;
pub mod detect;
pub mod infer;
pub mod learner;
pub mod model;
pub mod online;
pub mod parallel;
pub mod pipeline;
pub mod source;
pub mod state;
