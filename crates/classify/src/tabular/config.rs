//! How a tabular network is built and trained: the optional `--config`
//! TOML of `tidewatch tabular train`. Every section and field has a
//! default; the defaults are the network the README measures.
//!
//! ```toml
//! ensemble = 5              # networks trained apart, their outputs averaged
//!
//! [columns.ocean_proximity]
//! kind = "categorical"      # numeric | categorical | ignore (default: from the data)
//! [columns.total_rooms]
//! log = true                # log1p before standardising (default: features.log)
//!
//! [features]
//! log = "auto"              # auto (skewed non-negative columns) | never
//! piecewise_bins = 64       # quantile bins per numeric column; 0 for the value alone
//! max_categories = 64       # rarer categories are treated as unseen
//!
//! [model]
//! hidden_widths = [256, 256]
//! activation = "relu"       # relu | gelu
//! norm = "batch"            # batch | layer | none
//! dropout = 0.35
//!
//! [training]
//! learning_rate = 0.001
//! weight_decay = 0.0001     # AdamW's decoupled decay
//! batch_size = 128
//! epochs = 300              # an upper bound: early stopping ends sooner
//! patience_epochs = 30
//! plateau_epochs = 8        # lower the rate after this many epochs without progress
//! plateau_factor = 0.3      # by this factor
//! validation_fraction = 0.15
//! seed = 7
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tidewatch_stream::config::check_ranges;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabularConfig {
    /// How many networks are trained (each from its own seed and
    /// validation split) and averaged.
    #[serde(default = "default_ensemble")]
    pub ensemble: usize,
    /// Per-column overrides of what the data suggests, by column name.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnSettings>,
    #[serde(default)]
    pub features: FeatureSettings,
    #[serde(default)]
    pub model: MlpConfig,
    #[serde(default)]
    pub training: TabularTrainingConfig,
}

impl Default for TabularConfig {
    fn default() -> Self {
        TabularConfig {
            ensemble: default_ensemble(),
            columns: BTreeMap::new(),
            features: FeatureSettings::default(),
            model: MlpConfig::default(),
            training: TabularTrainingConfig::default(),
        }
    }
}

fn default_ensemble() -> usize {
    5
}

/// One column's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSettings {
    /// What the column is; typed from the data when absent.
    pub kind: Option<ColumnKind>,
    /// log1p before standardising (numeric columns); `features.log` decides
    /// when absent.
    pub log: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Numeric,
    Categorical,
    /// Not a feature (an identifier, say).
    Ignore,
}

/// How numeric and categorical columns become network inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSettings {
    /// `auto` log-transforms numeric columns that are never negative and
    /// whose skewness is above 2 (counts, amounts); `never` leaves them.
    #[serde(default)]
    pub log: LogPolicy,
    /// Each numeric column also enters as a piecewise-linear code over this
    /// many quantile bins of its training values (Gorishniy et al., "On
    /// Embeddings for Numerical Features in Tabular Deep Learning", 2022),
    /// which lets the network bend sharply where the data is dense.
    #[serde(default = "default_piecewise_bins")]
    pub piecewise_bins: usize,
    /// A categorical column keeps its most frequent categories up to this
    /// many; the others are treated as unseen.
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        FeatureSettings {
            log: LogPolicy::default(),
            piecewise_bins: default_piecewise_bins(),
            max_categories: default_max_categories(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogPolicy {
    #[default]
    Auto,
    Never,
}

fn default_piecewise_bins() -> usize {
    64
}

fn default_max_categories() -> usize {
    64
}

/// The multilayer perceptron: per hidden width a block of linear layer,
/// normalisation, activation and dropout, then a linear output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    #[serde(default = "default_hidden_widths")]
    pub hidden_widths: Vec<usize>,
    #[serde(default)]
    pub activation: ActivationKind,
    #[serde(default)]
    pub norm: NormKind,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden_widths: default_hidden_widths(),
            activation: ActivationKind::default(),
            norm: NormKind::default(),
            dropout: default_dropout(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationKind {
    #[default]
    Relu,
    Gelu,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    #[default]
    Batch,
    Layer,
    None,
}

fn default_hidden_widths() -> Vec<usize> {
    vec![256, 256]
}

fn default_dropout() -> f64 {
    0.35
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabularTrainingConfig {
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Upper bound on epochs; early stopping usually ends sooner.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    #[serde(default = "default_patience_epochs")]
    pub patience_epochs: usize,
    /// Multiply the learning rate by `plateau_factor` after this many
    /// epochs without a lower validation loss (0: a constant rate).
    #[serde(default = "default_plateau_epochs")]
    pub plateau_epochs: usize,
    #[serde(default = "default_plateau_factor")]
    pub plateau_factor: f64,
    /// Share of the training rows held out for early stopping (per class
    /// for classification).
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    #[serde(default = "default_seed")]
    pub seed: u64,
}

impl Default for TabularTrainingConfig {
    fn default() -> Self {
        TabularTrainingConfig {
            learning_rate: default_learning_rate(),
            weight_decay: default_weight_decay(),
            batch_size: default_batch_size(),
            epochs: default_epochs(),
            patience_epochs: default_patience_epochs(),
            plateau_epochs: default_plateau_epochs(),
            plateau_factor: default_plateau_factor(),
            validation_fraction: default_validation_fraction(),
            seed: default_seed(),
        }
    }
}

fn default_learning_rate() -> f64 {
    1e-3
}

fn default_weight_decay() -> f64 {
    1e-4
}

fn default_batch_size() -> usize {
    128
}

fn default_epochs() -> usize {
    300
}

fn default_patience_epochs() -> usize {
    30
}

fn default_plateau_epochs() -> usize {
    8
}

fn default_plateau_factor() -> f64 {
    0.3
}

fn default_validation_fraction() -> f64 {
    0.15
}

fn default_seed() -> u64 {
    7
}

impl TabularConfig {
    pub fn load(path: &Path) -> Result<TabularConfig, String> {
        let text = tidewatch_stream::config::env::read_config(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let config: TabularConfig =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        config
            .validate()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), String> {
        let (f, m, t) = (&self.features, &self.model, &self.training);
        // (setting, value, in range, the range): NaN is in no range.
        let ranges = [
            (
                "ensemble",
                self.ensemble as f64,
                (1..=64).contains(&self.ensemble),
                "[1, 64]",
            ),
            (
                "features.piecewise_bins",
                f.piecewise_bins as f64,
                f.piecewise_bins <= 256,
                "[0, 256]",
            ),
            (
                "features.max_categories",
                f.max_categories as f64,
                f.max_categories >= 1,
                "[1, inf)",
            ),
            (
                "model.dropout",
                m.dropout,
                (0.0..1.0).contains(&m.dropout),
                "[0, 1)",
            ),
            (
                "training.learning_rate",
                t.learning_rate,
                t.learning_rate > 0.0 && t.learning_rate.is_finite(),
                "(0, inf)",
            ),
            (
                "training.weight_decay",
                t.weight_decay,
                (0.0..1.0).contains(&t.weight_decay),
                "[0, 1)",
            ),
            (
                "training.batch_size",
                t.batch_size as f64,
                t.batch_size >= 2,
                "[2, inf)",
            ),
            ("training.epochs", t.epochs as f64, t.epochs > 0, "[1, inf)"),
            (
                "training.patience_epochs",
                t.patience_epochs as f64,
                t.patience_epochs > 0,
                "[1, inf)",
            ),
            (
                "training.plateau_factor",
                t.plateau_factor,
                t.plateau_factor > 0.0 && t.plateau_factor <= 1.0,
                "(0, 1]",
            ),
            (
                "training.validation_fraction",
                t.validation_fraction,
                t.validation_fraction > 0.0 && t.validation_fraction < 0.9,
                "(0, 0.9)",
            ),
        ];
        check_ranges(ranges)?;
        if m.hidden_widths.contains(&0) {
            return Err("model.hidden_widths must be positive".into());
        }
        Ok(())
    }
}
