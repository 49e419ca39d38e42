//! The text model directory and the one interface every kind serves:
//! texts in, class probabilities out.
//!
//! - `manifest.json`: format version, kind, labels (a prediction's index
//!   points into them), the kind's settings, a training summary, and the
//!   SHA-256 of the weight file;
//! - the kind's files: `baseline.json` (vocabulary, IDF and regression
//!   weights); `vocabulary.json` and `rnn.bpk` (burn record) for `rnn`;
//!   `tokenizer.json` and `pretrained.bpk` (encoder and dense layer) for
//!   `pretrained`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};

use crate::checksum::{WeightFileError, read_verified, sha256_hex};
use crate::nn::training::{Progress, TrainingSummary};
use crate::text::baseline::{BaselineConfig, BaselineModel};
use crate::text::data::{TextDataError, TextSet};
use crate::text::encoder::{EncoderError, EncoderSettings};
use crate::text::pretrained::{NETWORK_FILE, PretrainedConfig, PretrainedModel, TOKENIZER_FILE};
use crate::text::rnn::{RnnConfig, RnnModel};
use crate::text::tokenize::Vocabulary;

pub const FORMAT_VERSION: u32 = 1;
pub const KIND: &str = "text-classifier";
const MANIFEST: &str = "manifest.json";
const BASELINE_FILE: &str = "baseline.json";
const VOCABULARY_FILE: &str = "vocabulary.json";
const RNN_FILE: &str = "rnn.bpk";

/// Which model a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// TF-IDF and logistic regression (linfa).
    Baseline,
    /// Word embedding and a bidirectional GRU or LSTM.
    Rnn,
    /// A dense layer on a pretrained sentence encoder (`--encoder DIR`).
    Pretrained,
}

/// A kind with its settings: what `train` is asked to build.
#[derive(Debug, Clone, PartialEq)]
pub enum KindConfig {
    Baseline(BaselineConfig),
    Rnn(RnnConfig),
    Pretrained(PretrainedConfig),
}

impl KindConfig {
    pub fn kind(&self) -> ModelKind {
        match self {
            KindConfig::Baseline(_) => ModelKind::Baseline,
            KindConfig::Rnn(_) => ModelKind::Rnn,
            KindConfig::Pretrained(_) => ModelKind::Pretrained,
        }
    }
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rnn: Option<RnnConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PretrainedConfig>,
    /// The encoder's shape, token limit and pooling (`pretrained` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder: Option<EncoderSettings>,
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
    /// Epoch history of each neural training stage, by stage name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stages: BTreeMap<String, TrainingSummary>,
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
    #[error(transparent)]
    Encoder(#[from] EncoderError),
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
#[allow(clippy::large_enum_variant)]
pub enum TextModel {
    Baseline(BaselineModel),
    Rnn(RnnModel),
    Pretrained(PretrainedModel),
}

impl TextModel {
    /// Class probabilities: [texts, labels].
    pub fn probabilities(&self, texts: &[String]) -> Result<Array2<f64>, TextModelError> {
        match self {
            TextModel::Baseline(model) => model.probabilities(texts).map_err(TextModelError::Model),
            TextModel::Rnn(model) => Ok(model.probabilities(texts)),
            TextModel::Pretrained(model) => Ok(model.probabilities(texts)?),
        }
    }

    /// The model directory's weight files: name and bytes.
    fn files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
        match self {
            TextModel::Baseline(model) => Ok(vec![(
                BASELINE_FILE,
                serde_json::to_vec(model).expect("model serialises"),
            )]),
            TextModel::Rnn(model) => Ok(vec![
                (
                    VOCABULARY_FILE,
                    serde_json::to_vec(&model.vocabulary).expect("vocabulary serialises"),
                ),
                (RNN_FILE, record_bytes(&model.network)?),
            ]),
            TextModel::Pretrained(model) => model.files(),
        }
    }
}

/// A burn module's parameters as bytes (burn's burnpack record).
pub fn record_bytes(module: &impl Module) -> Result<Vec<u8>, String> {
    Ok(module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| e.to_string())?
        .to_vec())
}

/// `module` with the parameters of a record's bytes.
pub fn load_record<M: Module>(module: M, bytes: Vec<u8>) -> Result<M, String> {
    let record =
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| e.to_string())?;
    module.try_load_record(record).map_err(|e| e.to_string())
}

/// A model with its manifest, ready to classify.
#[derive(Debug, Clone)]
pub struct TextClassifier {
    pub manifest: TextManifest,
    pub model: TextModel,
}

/// Trains a model of the configured kind on a labelled set.
pub fn train(
    set: &TextSet,
    source: &Path,
    config: &KindConfig,
    progress: Progress,
) -> Result<TextClassifier, TextModelError> {
    let started = Instant::now();
    let labels = set.require_classes(source)?;
    let texts: Vec<String> = set.examples.iter().map(|e| e.text.clone()).collect();
    let targets = set.class_indices(&labels);
    let classes = labels.len();
    let mut stages = BTreeMap::new();
    let mut encoder = None;
    let model = match config {
        KindConfig::Baseline(config) => TextModel::Baseline(
            BaselineModel::fit(&texts, &targets, classes, config).map_err(TextModelError::Model)?,
        ),
        KindConfig::Rnn(config) => {
            let (model, summary) = RnnModel::fit(&texts, &targets, classes, config, progress);
            stages.insert("rnn".to_owned(), summary);
            TextModel::Rnn(model)
        }
        KindConfig::Pretrained(config) => {
            let (model, summaries) =
                PretrainedModel::fit(&texts, &targets, classes, config, progress)?;
            stages = summaries;
            encoder = Some(model.encoder.clone());
            TextModel::Pretrained(model)
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
            model_kind: config.kind(),
            tidewatch_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: chrono::Utc::now().to_rfc3339(),
            labels,
            baseline: match config {
                KindConfig::Baseline(c) => Some(c.clone()),
                _ => None,
            },
            rnn: match config {
                KindConfig::Rnn(c) => Some(c.clone()),
                _ => None,
            },
            pretrained: match config {
                KindConfig::Pretrained(c) => Some(c.clone()),
                _ => None,
            },
            encoder,
            summary: TextTrainingSummary {
                examples: texts.len(),
                skipped_rows: set.skipped,
                train_accuracy: right as f64 / texts.len() as f64,
                seconds: started.elapsed().as_secs_f64(),
                stages,
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
        let mut manifest = self.manifest.clone();
        manifest.weights.clear();
        for (file, bytes) in self.model.files().map_err(TextModelError::Model)? {
            let path = dir.join(file);
            std::fs::write(&path, &bytes).map_err(|e| io_error(&path, e))?;
            manifest.weights.insert(file.to_owned(), sha256_hex(&bytes));
        }
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
        let read = |file: &str| -> Result<Vec<u8>, TextModelError> {
            Ok(read_verified(
                &dir.join(file),
                manifest.weights.get(file).map_or("", String::as_str),
            )?)
        };
        let invalid = |file: &str, message: String| TextModelError::Manifest {
            path: dir.join(file),
            message,
        };
        let missing = |what: &str| TextModelError::Manifest {
            path: path.clone(),
            message: format!("no {what} settings"),
        };
        let classes = manifest.labels.len();
        let model = match manifest.model_kind {
            ModelKind::Baseline => TextModel::Baseline(
                serde_json::from_slice(&read(BASELINE_FILE)?)
                    .map_err(|e| invalid(BASELINE_FILE, e.to_string()))?,
            ),
            ModelKind::Rnn => {
                let config = manifest.rnn.as_ref().ok_or_else(|| missing("rnn"))?;
                let vocabulary: Vocabulary = serde_json::from_slice(&read(VOCABULARY_FILE)?)
                    .map_err(|e| invalid(VOCABULARY_FILE, e.to_string()))?;
                let vocabulary = vocabulary.indexed();
                let network = config.init(vocabulary.len(), classes, &Device::flex());
                let network =
                    load_record(network, read(RNN_FILE)?).map_err(|e| invalid(RNN_FILE, e))?;
                TextModel::Rnn(RnnModel {
                    vocabulary,
                    network,
                    max_tokens: config.max_tokens,
                })
            }
            ModelKind::Pretrained => {
                let encoder = manifest.encoder.clone().ok_or_else(|| missing("encoder"))?;
                TextModel::Pretrained(
                    PretrainedModel::from_files(
                        encoder,
                        classes,
                        &read(TOKENIZER_FILE)?,
                        read(NETWORK_FILE)?,
                    )
                    .map_err(|e| invalid(NETWORK_FILE, e))?,
                )
            }
        };
        Ok(TextClassifier { manifest, model })
    }
}
