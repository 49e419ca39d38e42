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
use std::path::Path;
use std::time::Instant;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use burn::tensor::Device;

use crate::record::{load_record, record_bytes};
use crate::text::baseline::{BaselineConfig, BaselineModel};
use crate::text::data::TextSet;
use crate::text::encoder::EncoderSettings;
use crate::text::error::TextModelError;
use crate::text::pretrained::{NETWORK_FILE, PretrainedConfig, PretrainedModel, TOKENIZER_FILE};
use crate::text::rnn::{RnnConfig, RnnModel};
use crate::text::tokenize::Vocabulary;
use tidewatch_learn::fit::{Progress, TrainingSummary};
use tidewatch_learn::model_dir::{CheckedManifest, ModelDir};
use tidewatch_stream::config::check_ranges;

/// 2: the baseline keeps its regression's weights itself (sparse solver);
/// a version-1 directory is refused with the advice to retrain.
pub const FORMAT_VERSION: u32 = 2;
pub const KIND: &str = "text-classifier";
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
    /// The first setting out of its range, named as in the settings file.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        let at_least_one = |n: usize| n as f64;
        // (setting, value, in range, the range): NaN is in no range.
        let ranges: Vec<(&str, f64, bool, &str)> = match self {
            KindConfig::Baseline(c) => vec![
                (
                    "baseline.max_ngram",
                    at_least_one(c.max_ngram),
                    (1..=5).contains(&c.max_ngram),
                    "[1, 5]",
                ),
                (
                    "baseline.max_features",
                    at_least_one(c.max_features),
                    c.max_features >= 1,
                    "[1, inf)",
                ),
                (
                    "baseline.l2_penalty",
                    c.l2_penalty,
                    c.l2_penalty >= 0.0 && c.l2_penalty.is_finite(),
                    "[0, inf)",
                ),
                (
                    "baseline.max_iterations",
                    c.max_iterations as f64,
                    c.max_iterations >= 1,
                    "[1, inf)",
                ),
            ],
            KindConfig::Rnn(c) => vec![
                (
                    "rnn.embedding_size",
                    at_least_one(c.embedding_size),
                    c.embedding_size >= 1,
                    "[1, inf)",
                ),
                (
                    "rnn.hidden_size",
                    at_least_one(c.hidden_size),
                    c.hidden_size >= 1,
                    "[1, inf)",
                ),
                (
                    "rnn.max_vocabulary",
                    at_least_one(c.max_vocabulary),
                    c.max_vocabulary >= 1,
                    "[1, inf)",
                ),
                (
                    "rnn.max_tokens",
                    at_least_one(c.max_tokens),
                    c.max_tokens >= 1,
                    "[1, inf)",
                ),
                (
                    "rnn.dropout",
                    c.dropout,
                    (0.0..1.0).contains(&c.dropout),
                    "[0, 1)",
                ),
                (
                    "rnn.max_epochs",
                    at_least_one(c.max_epochs),
                    c.max_epochs >= 1,
                    "[1, inf)",
                ),
                (
                    "rnn.patience_epochs",
                    at_least_one(c.patience_epochs),
                    c.patience_epochs >= 1,
                    "[1, inf)",
                ),
                (
                    "rnn.batch_size",
                    at_least_one(c.batch_size),
                    c.batch_size >= 1,
                    "[1, inf)",
                ),
                (
                    "rnn.learning_rate",
                    c.learning_rate,
                    positive(c.learning_rate),
                    "(0, inf)",
                ),
                (
                    "rnn.validation_fraction",
                    c.validation_fraction,
                    (0.0..0.9).contains(&c.validation_fraction),
                    "[0, 0.9)",
                ),
            ],
            KindConfig::Pretrained(c) => vec![
                (
                    "pretrained.head_l2_penalty",
                    c.head_l2_penalty,
                    c.head_l2_penalty >= 0.0 && c.head_l2_penalty.is_finite(),
                    "[0, inf)",
                ),
                (
                    "pretrained.head_max_iterations",
                    c.head_max_iterations as f64,
                    c.head_max_iterations >= 1,
                    "[1, inf)",
                ),
                (
                    "pretrained.validation_fraction",
                    c.validation_fraction,
                    (0.0..0.9).contains(&c.validation_fraction),
                    "[0, 0.9)",
                ),
                (
                    "pretrained.fine_tune_learning_rate",
                    c.fine_tune_learning_rate,
                    positive(c.fine_tune_learning_rate),
                    "(0, inf)",
                ),
                (
                    "pretrained.fine_tune_batch_size",
                    at_least_one(c.fine_tune_batch_size),
                    c.fine_tune_batch_size >= 1,
                    "[1, inf)",
                ),
            ],
        };
        check_ranges(ranges)
    }

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

impl CheckedManifest for TextManifest {
    fn check(&self) -> Result<(), String> {
        if self.labels.len() < 2 {
            return Err(format!(
                "labels lists {} label(s); a classifier has at least two",
                self.labels.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(twice) = self.labels.iter().find(|l| !seen.insert(*l)) {
            return Err(format!("labels lists {twice:?} twice"));
        }
        Ok(())
    }
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
            let (model, summary) = RnnModel::fit(&texts, &targets, classes, config, progress)?;
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

/// `dir` as a text model directory.
fn text_dir(dir: &Path) -> ModelDir<'_> {
    ModelDir::new(dir, "text model", FORMAT_VERSION)
}

impl TextClassifier {
    /// Writes the weights, then the manifest that vouches for them.
    pub fn save(&self, dir: &Path) -> Result<(), TextModelError> {
        let model_dir = text_dir(dir);
        let files = self.model.files().map_err(TextModelError::Model)?;
        let mut manifest = self.manifest.clone();
        manifest.weights =
            model_dir.write_weights(files.iter().map(|(name, bytes)| (*name, bytes.as_slice())))?;
        Ok(model_dir.write_manifest(&manifest)?)
    }

    pub fn load(dir: &Path) -> Result<TextClassifier, TextModelError> {
        let model_dir = text_dir(dir);
        let manifest: TextManifest = model_dir.read_manifest()?;
        model_dir.check_kind(&manifest.kind, KIND)?;
        let read = |file: &str| model_dir.read_weights(&manifest.weights, file);
        let invalid = |file: &str, message: String| model_dir.invalid(Some(file), message);
        let missing = |what: &str| model_dir.invalid(None, format!("no {what} settings"));
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
        // Weights for another number of classes than the labels name would
        // put a prediction past the end of the list.
        let classes_out = model.probabilities(&[String::new()])?.ncols();
        if classes_out != classes {
            return Err(model_dir
                .invalid(
                    None,
                    format!(
                        "labels lists {classes} labels; the weights give {classes_out} classes"
                    ),
                )
                .into());
        }
        Ok(TextClassifier { manifest, model })
    }
}
