//! The text model directory and the one interface every kind serves:
//! texts in, class probabilities out.
//!
//! - `manifest.json`: format version, kind, labels (a prediction's index
//!   points into them), the kind's settings, a training summary, and the
//!   SHA-256 of the weight file;
//! - `baseline.json`: the baseline's vocabulary, IDF and regression weights.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::checksum::{WeightFileError, read_verified, sha256_hex};
use crate::text::baseline::{BaselineConfig, BaselineModel};
use crate::text::data::{TextDataError, TextSet};

pub const FORMAT_VERSION: u32 = 1;
pub const KIND: &str = "text-classifier";
const MANIFEST: &str = "manifest.json";
const BASELINE_FILE: &str = "baseline.json";

/// Which model a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// TF-IDF and logistic regression (linfa).
    Baseline,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextManifest {
    pub format_version: u32,
    pub kind: String,
    pub model_kind: ModelKind,
    pub tidewatch_version: String,
    pub created_at: String,
    pub labels: Vec<String>,
    pub baseline: Option<BaselineConfig>,
    pub summary: TextTrainingSummary,
    /// SHA-256 (hex) of each weight file, by file name.
    pub weights: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextTrainingSummary {
    pub examples: usize,
    pub skipped_rows: usize,
    pub train_accuracy: f64,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TextModelError {
    #[error(transparent)]
    Data(#[from] TextDataError),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: not a tidewatch text model: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error(transparent)]
    WeightFile(#[from] WeightFileError),
    #[error("{0}")]
    Model(String),
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> TextModelError {
    TextModelError::Io {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// A trained model of any kind.
#[derive(Debug, Clone)]
pub enum TextModel {
    Baseline(BaselineModel),
}

impl TextModel {
    /// Class probabilities: [texts, labels].
    pub fn probabilities(&self, texts: &[String]) -> Result<Array2<f64>, TextModelError> {
        match self {
            TextModel::Baseline(model) => model.probabilities(texts).map_err(TextModelError::Model),
        }
    }
}

/// A model with its manifest, ready to classify.
#[derive(Debug, Clone)]
pub struct TextClassifier {
    pub manifest: TextManifest,
    pub model: TextModel,
}

/// Trains a `kind` model on a labelled set.
pub fn train(
    set: &TextSet,
    source: &Path,
    kind: ModelKind,
) -> Result<TextClassifier, TextModelError> {
    let started = Instant::now();
    let labels = set.require_classes(source)?;
    let texts: Vec<String> = set.examples.iter().map(|e| e.text.clone()).collect();
    let targets: Vec<usize> = set
        .examples
        .iter()
        .map(|e| {
            labels
                .binary_search(e.label.as_ref().expect("labelled set"))
                .expect("known label")
        })
        .collect();
    let (model, baseline) = match kind {
        ModelKind::Baseline => {
            let config = BaselineConfig::default();
            let model = BaselineModel::fit(&texts, &targets, labels.len(), &config)
                .map_err(TextModelError::Model)?;
            (TextModel::Baseline(model), Some(config))
        }
    };
    let probabilities = model.probabilities(&texts)?;
    let right = probabilities
        .rows()
        .into_iter()
        .zip(&targets)
        .filter(|(row, target)| argmax(row.as_slice().expect("contiguous")) == **target)
        .count();
    Ok(TextClassifier {
        manifest: TextManifest {
            format_version: FORMAT_VERSION,
            kind: KIND.to_owned(),
            model_kind: kind,
            tidewatch_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: chrono::Utc::now().to_rfc3339(),
            labels,
            baseline,
            summary: TextTrainingSummary {
                examples: texts.len(),
                skipped_rows: set.skipped,
                train_accuracy: right as f64 / texts.len() as f64,
                seconds: started.elapsed().as_secs_f64(),
            },
            weights: BTreeMap::new(),
        },
        model,
    })
}

pub fn argmax(values: &[f64]) -> usize {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i)
}

impl TextClassifier {
    /// Writes the weights, then the manifest that vouches for them.
    pub fn save(&self, dir: &Path) -> Result<(), TextModelError> {
        std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let (file, bytes) = match &self.model {
            TextModel::Baseline(model) => (
                BASELINE_FILE,
                serde_json::to_vec(model).expect("model serialises"),
            ),
        };
        let weights = dir.join(file);
        std::fs::write(&weights, &bytes).map_err(|e| io_error(&weights, e))?;
        let mut manifest = self.manifest.clone();
        manifest.weights = BTreeMap::from([(file.to_owned(), sha256_hex(&bytes))]);
        let path = dir.join(MANIFEST);
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&manifest).expect("manifest serialises") + "\n",
        )
        .map_err(|e| io_error(&path, e))
    }

    pub fn load(dir: &Path) -> Result<TextClassifier, TextModelError> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let manifest: TextManifest =
            serde_json::from_str(&text).map_err(|e| TextModelError::Manifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        if manifest.kind != KIND || manifest.format_version != FORMAT_VERSION {
            return Err(TextModelError::Manifest {
                path,
                message: format!(
                    "kind {:?} format {}, expected {KIND:?} format {FORMAT_VERSION}",
                    manifest.kind, manifest.format_version
                ),
            });
        }
        let file = match manifest.model_kind {
            ModelKind::Baseline => BASELINE_FILE,
        };
        let weights = dir.join(file);
        let bytes = read_verified(
            &weights,
            manifest.weights.get(file).map_or("", String::as_str),
        )?;
        let model = match manifest.model_kind {
            ModelKind::Baseline => {
                TextModel::Baseline(serde_json::from_slice(&bytes).map_err(|e| {
                    TextModelError::Manifest {
                        path: weights.clone(),
                        message: e.to_string(),
                    }
                })?)
            }
        };
        Ok(TextClassifier { manifest, model })
    }
}
