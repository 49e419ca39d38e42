//! Per-key state: the input [`window`], the running [`scaler`], and the
//! [`store`] that holds each key's recurrent and detection state.

pub mod scaler;
pub mod store;
pub mod window;

use serde::{Deserialize, Serialize};

/// How keys keep their inputs scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Events after which a key's scaling statistics start forgetting.
    #[serde(default = "default_scaler_memory_events")]
    pub scaler_memory_events: u64,
    /// Weight, in events, of the model's training statistics when a new key
    /// starts.
    #[serde(default = "default_scaler_prior_events")]
    pub scaler_prior_events: u64,
    /// Scaled inputs are clipped to ±this many standard deviations.
    #[serde(default = "default_input_clip")]
    pub input_clip: f32,
}

fn default_scaler_memory_events() -> u64 {
    10_000
}
fn default_scaler_prior_events() -> u64 {
    1_000
}
fn default_input_clip() -> f32 {
    20.0
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            scaler_memory_events: default_scaler_memory_events(),
            scaler_prior_events: default_scaler_prior_events(),
            input_clip: default_input_clip(),
        }
    }
}
