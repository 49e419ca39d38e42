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

pub mod env;
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
        let text = env::read_config(path).map_err(read_error)?;
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
        let (training, score, state) = (&self.training, &self.detect.score, &self.state);
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let unit_open = |x: f64| x > 0.0 && x < 1.0;
        // (setting, value, in range, the range): NaN is in no range.
        let ranges = [
            (
                "training.validation_fraction",
                training.validation_fraction,
                (0.0..0.9).contains(&training.validation_fraction),
                "[0, 0.9)",
            ),
            (
                "training.learning_rate",
                training.learning_rate,
                positive(training.learning_rate),
                "(0, inf)",
            ),
            (
                "training.batch_size",
                training.batch_size as f64,
                training.batch_size > 0,
                "[1, inf)",
            ),
            (
                "training.max_epochs",
                training.max_epochs as f64,
                training.max_epochs > 0,
                "[1, inf)",
            ),
            (
                "training.max_samples_per_epoch",
                training.max_samples_per_epoch as f64,
                training.max_samples_per_epoch > 0,
                "[1, inf)",
            ),
            (
                "detect.score.tail_quantile",
                score.tail_quantile,
                unit_open(score.tail_quantile),
                "(0, 1)",
            ),
            (
                "detect.score.learn_below_score",
                score.learn_below_score,
                (0.0..=1.0).contains(&score.learn_below_score),
                "[0, 1]",
            ),
            (
                "detect.score.max_peaks",
                score.max_peaks as f64,
                score.max_peaks > 0,
                "[1, inf)",
            ),
            (
                "detect.score.history_events",
                score.history_events as f64,
                score.history_events > 0,
                "[1, inf)",
            ),
            (
                "detect.hygiene.min_consecutive",
                f64::from(self.detect.hygiene.min_consecutive),
                self.detect.hygiene.min_consecutive > 0,
                "[1, inf)",
            ),
            (
                "state.input_clip",
                f64::from(state.input_clip),
                positive(f64::from(state.input_clip)),
                "(0, inf)",
            ),
            (
                "state.scaler_memory_events",
                state.scaler_memory_events as f64,
                state.scaler_memory_events >= 2,
                "[2, inf)",
            ),
        ];
        check_ranges(ranges).map_err(ConfigError::Invalid)?;
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

/// Every one of `ranges` (setting, value, whether it is in range, the
/// range) that is out of its range, in the words every config uses:
/// `name must be in range, got value`. NaN is in no range.
pub fn out_of_range<V: std::fmt::Display, R: std::fmt::Display>(
    ranges: impl IntoIterator<Item = (&'static str, V, bool, R)>,
) -> Vec<String> {
    ranges
        .into_iter()
        .filter(|(_, _, ok, _)| !ok)
        .map(|(name, value, _, range)| format!("{name} must be in {range}, got {value}"))
        .collect()
}

/// [`out_of_range`]'s problems as one message, if there are any.
pub fn check_ranges<V: std::fmt::Display, R: std::fmt::Display>(
    ranges: impl IntoIterator<Item = (&'static str, V, bool, R)>,
) -> Result<(), String> {
    let problems = out_of_range(ranges);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
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
        assert_eq!(config.schema.input_width(), 1 + 1 + 4 + 2 + 1);
    }

    #[test]
    fn refuses_numbers_out_of_range_naming_the_setting_and_its_range() {
        let base = "[schema]\nname='x'\nfeatures=[{name='a'}]\n";
        for (section, expected) in [
            (
                "[detect.score]\ntail_quantile = 1.5",
                "detect.score.tail_quantile must be in (0, 1), got 1.5",
            ),
            (
                "[detect.score]\ntail_quantile = -3.0",
                "detect.score.tail_quantile must be in (0, 1), got -3",
            ),
            (
                "[detect.score]\ntail_quantile = nan",
                "detect.score.tail_quantile must be in (0, 1), got NaN",
            ),
            (
                "[training]\nlearning_rate = nan",
                "training.learning_rate must be in (0, inf), got NaN",
            ),
            (
                "[training]\nlearning_rate = inf",
                "training.learning_rate must be in (0, inf), got inf",
            ),
            (
                "[state]\ninput_clip = nan",
                "state.input_clip must be in (0, inf), got NaN",
            ),
            (
                "[detect.hygiene]\nmin_consecutive = 0",
                "detect.hygiene.min_consecutive must be in [1, inf), got 0",
            ),
        ] {
            let config: StreamConfig = toml::from_str(&format!("{base}{section}\n")).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert_eq!(error, expected);
        }
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
