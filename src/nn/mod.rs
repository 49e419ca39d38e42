//! The neural models (burn): definitions, training data, the training loop,
//! export to kernels and the model bundle on disk.

pub mod autoencoder;
pub mod bundle;
pub mod data;
pub mod export;
pub mod forecaster;
pub mod training;

use serde::{Deserialize, Serialize};

use autoencoder::AutoencoderConfig;
use forecaster::ForecasterConfig;

/// Shape of both models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Events in the autoencoder's window and in each training sequence of
    /// the forecaster; a key is scored once it has seen this many.
    #[serde(default = "default_window_len")]
    pub window_len: usize,
    /// Forecaster steps whose predictions are left out of the training loss
    /// while the recurrent state builds up from zero.
    #[serde(default = "default_burn_in_steps")]
    pub burn_in_steps: usize,
    #[serde(default)]
    pub forecaster: ForecasterConfig,
    #[serde(default)]
    pub autoencoder: AutoencoderConfig,
}

fn default_window_len() -> usize {
    64
}
fn default_burn_in_steps() -> usize {
    8
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            window_len: default_window_len(),
            burn_in_steps: default_burn_in_steps(),
            forecaster: ForecasterConfig::default(),
            autoencoder: AutoencoderConfig::default(),
        }
    }
}
