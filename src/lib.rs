//! tidewatch: streaming anomaly detection. Neural models learn what normal
//! looks like in each stream (a recurrent forecaster and a reconstruction
//! autoencoder); their errors become an anomaly score in [0, 1]; thresholds
//! and alert hygiene turn scores into flags.
//!
//! # Layout
//!
//! One module per stage, in the order an event meets them:
//!
//! - [`source`]: the stream [`source::schema`], [`source::decode`] from raw
//!   fields to a [`source::Record`], and [`source::file`] replay of CSV and
//!   JSON Lines with one-line errors naming file, line and column.
//! - [`state`]: per-key state: the input [`state::window`], the running
//!   [`state::scaler`], and the [`state::store`] of keys.
//! - [`infer`]: the hot path: hand-written kernels (LSTM and GRU steps,
//!   dense layers, vectorised activations) over `ndarray` buffers.
//! - [`detect`]: errors to scores ([`detect::score`], peaks-over-threshold
//!   error tails), [`detect::threshold`] (fixed, quantile, streaming POT)
//!   and [`detect::hygiene`] (persistence, cool-down).
//! - [`pipeline`]: the streaming path that strings the stages together for
//!   a micro-batch of events; `score`, calibration, online learning and the
//!   daemon all run through it.
//! - [`nn`]: the burn models ([`nn::forecaster`], [`nn::autoencoder`]), their
//!   training data ([`nn::data`]) and loop ([`nn::training`]), export to
//!   kernels ([`nn::export`]) and the model [`nn::bundle`] on disk.
//! - [`learn`]: from series to a calibrated scoring model (train, export,
//!   calibrate by replay); [`online`]: warm-up and refits per key.
//! - [`jobs`]: offline batch jobs: [`jobs::train`], [`jobs::score`],
//!   [`jobs::nab`] and [`jobs::skab`] benchmark scoring, [`jobs::demo`].
//! - [`simulate`]: synthetic series with labelled anomalies.
//! - [`config`]: a stream's TOML configuration.
//! - [`checksum`]: weight files checked against their manifest's SHA-256.
//! - [`classify`]: what the classifier jobs share (top-k, accuracy and
//!   per-class metrics, confusion matrix).
//! - [`text`]: the offline text classification job (sentiment): TF-IDF
//!   baseline, recurrent network, pretrained BERT sentence encoder.
//! - [`vision`]: the offline image classification job (a CNN over folders
//!   of images), apart from the streaming path.

pub mod checksum;
pub mod classify;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod http;
pub mod infer;
pub mod jobs;
pub mod learn;
pub mod metrics;
pub mod nn;
pub mod online;
pub mod pipeline;
pub mod shutdown;
pub mod simulate;
pub mod sink;
pub mod source;
pub mod state;
pub mod text;
pub mod vision;
