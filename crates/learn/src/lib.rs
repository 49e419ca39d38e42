//! Learning what normal looks like: the burn models of tidewatch, their
//! training, export to the stream core's kernels, calibration, the model
//! bundle on disk, and online learning behind the stream core's learner
//! trait.
//!
//! # Layout
//!
//! In the order a series meets them:
//!
//! - [`data`]: training samples from scaled series (lanes of the
//!   forecaster, windows of the autoencoder), as burn tensors.
//! - [`forecaster`] and [`autoencoder`]: the burn models.
//! - [`fit`]: the training loop every burn model here and in the
//!   classifiers uses (Adam, validation, early stopping with the best epoch
//!   kept, seeded initialisation, progress bar).
//! - [`export`]: trained weights to the stream core's kernels.
//! - [`train`]: series to a calibrated scoring model (train, export,
//!   calibrate by replay through the streaming path).
//! - [`online`]: the stream core's [`tidewatch_stream::learner::Learner`]
//!   for one key, with refits continuing from its last models.
//! - [`checksum`]: weight files checked against their manifest's SHA-256;
//!   [`model_dir`]: a manifest and its weight files, the directory every
//!   trained model of tidewatch (bundle, image or text model) is saved as.
//! - [`bundle`]: a trained stream model on disk, the contract between
//!   `train` and everything that scores.

pub mod autoencoder;
pub mod bundle;
pub mod checksum;
pub mod data;
pub mod export;
pub mod fit;
pub mod forecaster;
pub mod model_dir;
pub mod online;
pub mod train;
