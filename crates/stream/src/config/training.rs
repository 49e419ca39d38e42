//! How a stream's models are trained: epochs, batches, learning rate,
//! early stopping, validation split and seed.

use serde::{Deserialize, Serialize};

/// How models are trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Upper bound on passes over the training samples.
    #[serde(default = "default_max_epochs")]
    pub max_epochs: usize,
    /// Samples per optimiser step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam learning rate.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default = "default_patience_epochs")]
    pub patience_epochs: usize,
    /// Share of the series, at its end, held out for validation.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Upper bound on training samples per epoch (a seeded subset is drawn
    /// each epoch when there are more).
    #[serde(default = "default_max_samples_per_epoch")]
    pub max_samples_per_epoch: usize,
    /// Seed for weight initialisation and shuffling.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_max_epochs() -> usize {
    30
}
fn default_batch_size() -> usize {
    32
}
fn default_learning_rate() -> f64 {
    3e-3
}
fn default_patience_epochs() -> usize {
    4
}
fn default_validation_fraction() -> f64 {
    0.2
}
fn default_max_samples_per_epoch() -> usize {
    2048
}
fn default_seed() -> u64 {
    42
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            max_epochs: default_max_epochs(),
            batch_size: default_batch_size(),
            learning_rate: default_learning_rate(),
            patience_epochs: default_patience_epochs(),
            validation_fraction: default_validation_fraction(),
            max_samples_per_epoch: default_max_samples_per_epoch(),
            seed: default_seed(),
        }
    }
}
