//! How an autoencoder for `tidewatch reduce` is built and trained: the
//! optional `--config` TOML. The sections are the tabular network's: the
//! encoder is an [`MlpConfig`] from the inputs through `hidden_widths` to
//! the code, the decoder its mirror image.
//!
//! ```toml
//! [model]
//! hidden_widths = [128, 64]   # the encoder's; the decoder runs them backwards
//! activation = "gelu"
//! norm = "none"
//! dropout = 0.0
//!
//! [training]                  # as `tabular`'s [training]
//! learning_rate = 0.002
//! batch_size = 64
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::tabular::config::{
    ActivationKind, MlpConfig, NormKind, TabularConfig, TabularTrainingConfig,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReduceConfig {
    #[serde(default = "default_model")]
    pub model: MlpConfig,
    #[serde(default = "default_training")]
    pub training: TabularTrainingConfig,
}

impl Default for ReduceConfig {
    fn default() -> Self {
        ReduceConfig {
            model: default_model(),
            training: default_training(),
        }
    }
}

fn default_model() -> MlpConfig {
    MlpConfig {
        hidden_widths: vec![128, 64],
        activation: ActivationKind::Gelu,
        norm: NormKind::None,
        dropout: 0.0,
    }
}

fn default_training() -> TabularTrainingConfig {
    TabularTrainingConfig {
        learning_rate: 2e-3,
        batch_size: 64,
        epochs: 500,
        patience_epochs: 40,
        ..TabularTrainingConfig::default()
    }
}

impl ReduceConfig {
    pub fn load(path: &Path) -> Result<ReduceConfig, String> {
        let text = tidewatch_stream::config::env::read_config(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let config: ReduceConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        config
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        TabularConfig {
            model: self.model.clone(),
            training: self.training.clone(),
            ..TabularConfig::default()
        }
        .validate()
    }
}
