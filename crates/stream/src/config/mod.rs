//! A stream's TOML configuration: its schema and how it is modelled,
//! trained, scored and judged. Every section but `schema` has defaults.
//!
//! ```toml
//! [schema]
//! name = "pump"
//! timestamp_field = "datetime"
//! [[schema.features]]
//! name = "pressure"
//!
//! [model]
//! window_len = 32
//! forecaster = { cell = "gru", hidden_size = 32 }
//!
//! [detect.threshold]
//! kind = "pot"
//! risk = 1e-4
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};

pub mod model;
pub mod online;
pub mod training;

pub use model::{AutoencoderConfig, CellKind, ForecasterConfig, ModelConfig};
pub use online::OnlineConfig;
pub use training::TrainingConfig;

use crate::detect::DetectConfig;
use crate::source::Schema;
use crate::state::StateConfig;

/// One stream: what its records are and how they are judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub schema: Schema,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub training: TrainingConfig,
    #[serde(default)]
    pub detect: DetectConfig,
    #[serde(default)]
    pub online: OnlineConfig,
    #[serde(default)]
    pub state: StateConfig,
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl StreamConfig {
    /// Defaults for everything but the schema.
    pub fn for_schema(schema: Schema) -> StreamConfig {
        StreamConfig {
            schema,
            model: ModelConfig::default(),
            training: TrainingConfig::default(),
            detect: DetectConfig::default(),
            online: OnlineConfig::default(),
            state: StateConfig::default(),
        }
    }

    pub fn load(path: &Path) -> Result<StreamConfig, ConfigError> {
        let read_error = |message: String| ConfigError::Read {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read_error(e.to_string()))?;
        let config: StreamConfig =
            toml::from_str(&text).map_err(|e| read_error(one_line(&e.to_string())))?;
        config.validate().map_err(|e| read_error(e.to_string()))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        self.schema
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("schema: {e}")))?;
        self.detect
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("detect.threshold: {e}")))?;
        let model = &self.model;
        if model.window_len < 2 {
            return invalid(format!(
                "model.window_len must be at least 2, got {}",
                model.window_len
            ));
        }
        if model.burn_in_steps + 2 > model.window_len {
            return invalid(format!(
                "model.burn_in_steps ({}) must leave at least 2 steps of model.window_len ({})",
                model.burn_in_steps, model.window_len
            ));
        }
        if model.forecaster.hidden_size == 0 || model.autoencoder.hidden_widths.contains(&0) {
            return invalid("model layer widths must be positive".into());
        }
        let training = &self.training;
        if !(0.0..0.9).contains(&training.validation_fraction) {
            return invalid(format!(
                "training.validation_fraction must be in [0, 0.9), got {}",
                training.validation_fraction
            ));
        }
        if training.batch_size == 0 || training.max_epochs == 0 || training.learning_rate <= 0.0 {
            return invalid(
                "training.batch_size, max_epochs and learning_rate must be positive".into(),
            );
        }
        if self.state.input_clip <= 0.0 || self.state.scaler_memory_events < 2 {
            return invalid(
                "state.input_clip must be positive and state.scaler_memory_events at least 2"
                    .into(),
            );
        }
        self.online.validate().map_err(ConfigError::Invalid)
    }
}

/// TOML errors span several lines (a snippet with a caret); keep the message.
pub fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let location = lines.first().copied().unwrap_or_default();
    let reason = lines.last().copied().unwrap_or_default();
    if location == reason {
        reason.to_owned()
    } else {
        format!("{location}: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_minimal_config_and_fills_defaults() {
        let config: StreamConfig = toml::from_str(
            r#"
            [schema]
            name = "pump"
            [[schema.features]]
            name = "pressure"
            [model]
            window_len = 16
            forecaster = { cell = "gru", hidden_size = 8 }
            [detect.threshold]
            kind = "quantile"
            quantile = 0.99
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.model.window_len, 16);
        assert_eq!(config.model.forecaster.cell, CellKind::Gru);
        assert_eq!(config.training, TrainingConfig::default());
    }

    /// The README documents every section; its example must stay valid.
    #[test]
    fn readme_example_is_valid() {
        let readme = include_str!("../../../../README.md");
        let start = readme
            .find("```toml\n[schema]\nname = \"payments\"")
            .expect("README has the example")
            + 8;
        let end = start + readme[start..].find("```").unwrap();
        let config: StreamConfig = toml::from_str(&readme[start..end]).unwrap();
        config.validate().unwrap();
        assert_eq!(config.schema.input_width(), 1 + 4 + 2 + 1);
    }

    #[test]
    fn refuses_unknown_keys_and_bad_values_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[schema]\nname='x'\nfeatures=[{name='a'}]\n[model]\nwindow=3\n",
        )
        .unwrap();
        let err = StreamConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("unknown field `window`") && !err.contains('\n'),
            "{err}"
        );
        std::fs::write(
            &path,
            "[schema]\nname='x'\nfeatures=[{name='a'}]\n[model]\nwindow_len=1\n",
        )
        .unwrap();
        let err = StreamConfig::load(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("model.window_len must be at least 2, got 1"),
            "{err}"
        );
    }
}
