//! The model bundle: the contract between training and serving.
//!
//! A bundle is a directory:
//!
//! - `manifest.json`: format version, the stream schema and the settings the
//!   model was built with, scaler statistics, error tails and threshold from
//!   calibration, a training summary with validation metrics, and the
//!   SHA-256 of every weight file;
//! - `forecaster.safetensors`, `autoencoder.safetensors`: weights in the
//!   kernels' layout (gates packed; `[inputs, outputs]` matrices).
//!
//! Loading refuses an unknown format version, an inconsistent or edited
//! manifest (scaler and error tails that disagree with the schema, values
//! out of range, a checksum that does not match), a weight file whose
//! checksum differs, and weights whose shapes disagree with the manifest
//! or that are not finite.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model_dir::{CheckedManifest, ModelDir, ModelDirError};
use crate::train::LearnSummary;
use tidewatch_stream::config::CellKind;
use tidewatch_stream::config::ModelConfig;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::config::TrainingConfig;
use tidewatch_stream::detect::DetectConfig;
use tidewatch_stream::detect::score::ErrorTail;
use tidewatch_stream::detect::threshold::Threshold;
use tidewatch_stream::infer::activation::Activation;
use tidewatch_stream::infer::dense::{Dense, DenseStack};
use tidewatch_stream::infer::model::KernelModel;
use tidewatch_stream::infer::recurrent::{GruCell, LstmCell, RecurrentCell};
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::pipeline::Evidence;
use tidewatch_stream::source::Schema;
use tidewatch_stream::state::StateConfig;
use tidewatch_stream::state::scaler::ScalerStats;

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const FORECASTER_FILE: &str = "forecaster.safetensors";
const AUTOENCODER_FILE: &str = "autoencoder.safetensors";

/// Everything about a bundle but its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format_version: u32,
    /// Version of tidewatch that wrote the bundle.
    pub tidewatch_version: String,
    /// Model name (the stream name) and a version derived from the weights.
    pub model_name: String,
    pub model_version: String,
    pub created_at: String,
    pub schema: Schema,
    pub model: ModelConfig,
    pub state: StateConfig,
    pub detect: DetectConfig,
    pub training: TrainingConfig,
    pub scaler: ScalerStats,
    /// Error tails per detector and evidence feature: the forecast's for
    /// every evidence feature, then the reconstruction's.
    pub error_tails: Vec<ErrorTail>,
    pub threshold: Threshold,
    pub summary: LearnSummary,
    /// SHA-256 (hex) of each weight file, by file name.
    pub weights: BTreeMap<String, String>,
}

impl CheckedManifest for Manifest {
    fn check(&self) -> Result<(), String> {
        self.stream_config().validate().map_err(|e| e.to_string())?;
        self.scaler.check(self.schema.input_width())?;
        let tails = Evidence::of(&self.schema).tails();
        if self.error_tails.len() != tails {
            return Err(format!(
                "error_tails has {} tails; the schema's evidence needs {tails}",
                self.error_tails.len()
            ));
        }
        for (i, tail) in self.error_tails.iter().enumerate() {
            tail.check().map_err(|e| format!("error_tails[{i}].{e}"))?;
        }
        self.threshold.check().map_err(|e| format!("threshold.{e}"))
    }
}

impl Manifest {
    /// The stream config the bundle was built with (online settings default).
    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            model: self.model.clone(),
            training: self.training.clone(),
            detect: self.detect.clone(),
            state: self.state.clone(),
            ..StreamConfig::for_schema(self.schema.clone())
        }
    }
}

/// A loaded bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub manifest: Manifest,
    pub model: ScoringModel,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(transparent)]
    Dir(#[from] ModelDirError),
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
    #[error("the bundle was trained on a different schema: {0}")]
    SchemaMismatch(String),
    #[error("the prior reads {prior}; this stream's schema gives {stream}")]
    InputMismatch { prior: String, stream: String },
}

/// `dir` as a bundle directory.
fn bundle_dir(dir: &Path) -> ModelDir<'_> {
    ModelDir::new(dir, "bundle", FORMAT_VERSION)
}

impl Bundle {
    /// The stream config the bundle was built with (online settings default).
    pub fn stream_config(&self) -> StreamConfig {
        self.manifest.stream_config()
    }

    /// Checks that `schema` feeds the model the inputs it was trained on,
    /// whatever the stream, its fields and features are called: what a
    /// prior for many streams needs.
    pub fn check_inputs(&self, schema: &Schema) -> Result<(), BundleError> {
        let describe = |s: &Schema| {
            s.features
                .iter()
                .map(|f| {
                    let role = if f.is_evidence() {
                        "evidence"
                    } else {
                        "context"
                    };
                    let transform = serde_json::to_value(f.transform)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    let smoothing = f
                        .smoothing_events
                        .map(|span| format!(" averaged over {span} events"))
                        .unwrap_or_default();
                    match f.vocabulary.as_slice() {
                        [] => format!("{transform}{smoothing} ({role})"),
                        vocabulary => format!("{transform} {vocabulary:?} ({role})"),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (prior, stream) = (describe(&self.manifest.schema), describe(schema));
        if prior == stream {
            Ok(())
        } else {
            Err(BundleError::InputMismatch { prior, stream })
        }
    }

    /// Checks that `schema` is the one the bundle was trained on, naming the
    /// first difference.
    pub fn check_schema(&self, schema: &Schema) -> Result<(), BundleError> {
        let trained = &self.manifest.schema;
        if trained == schema {
            return Ok(());
        }
        let describe = |s: &Schema| serde_json::to_value(s).unwrap_or_default();
        let (a, b) = (describe(trained), describe(schema));
        let difference = match (&a, &b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => a
                .keys()
                .chain(b.keys())
                .find(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    format!(
                        "{k}: bundle has {}, input has {}",
                        a.get(k).map_or("nothing".into(), |v| v.to_string()),
                        b.get(k).map_or("nothing".into(), |v| v.to_string())
                    )
                }),
            _ => None,
        };
        Err(BundleError::SchemaMismatch(
            difference.unwrap_or_else(|| "schemas differ".into()),
        ))
    }
}

/// Writes a bundle to `dir` (created if needed) and returns its manifest.
pub fn save(
    dir: &Path,
    model: &ScoringModel,
    config: &StreamConfig,
    summary: &LearnSummary,
) -> Result<Manifest, BundleError> {
    let model_dir = bundle_dir(dir);
    let mut files = Vec::new();
    for (name, tensors) in [
        (FORECASTER_FILE, forecaster_tensors(&model.kernels)),
        (
            AUTOENCODER_FILE,
            autoencoder_tensors(&model.kernels.autoencoder),
        ),
    ] {
        let bytes = serialize(&tensors).map_err(|e| BundleError::Weights {
            path: dir.join(name),
            message: e.to_string(),
        })?;
        files.push((name, bytes));
    }
    let weights =
        model_dir.write_weights(files.iter().map(|(name, bytes)| (*name, bytes.as_slice())))?;
    // The version names the weights: a digest of their digests, in file order.
    let mut digest = Sha256::new();
    for (name, _) in &files {
        digest.update(weights[*name].as_bytes());
    }
    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        tidewatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        model_name: config.schema.name.clone(),
        model_version: hex::encode(&digest.finalize()[..6]),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        schema: config.schema.clone(),
        model: config.model.clone(),
        state: config.state.clone(),
        detect: config.detect.clone(),
        training: config.training.clone(),
        scaler: model.scaler.clone(),
        error_tails: model.error_tails.clone(),
        threshold: model.threshold.clone(),
        summary: summary.clone(),
        weights,
    };
    model_dir.write_manifest(&manifest)?;
    Ok(manifest)
}

/// Reads and checks a bundle.
pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
    let model_dir = bundle_dir(dir);
    let manifest: Manifest = model_dir.read_manifest()?;
    let forecaster = model_dir.read_weights(&manifest.weights, FORECASTER_FILE)?;
    let autoencoder = model_dir.read_weights(&manifest.weights, AUTOENCODER_FILE)?;
    assemble(manifest, dir, &forecaster, &autoencoder)
}

/// Where the shipped prior's files are in the source tree, as messages name it.
const SHIPPED_PRIOR_DIR: &str = "models/prior";

/// The prior tidewatch ships for streams of one value and the hour of day
/// (`models/prior`, built into the binary; `models/prior/README.md` says
/// how it was trained), checked as a bundle read from disk would be.
pub fn shipped_prior() -> Result<Bundle, BundleError> {
    let dir = Path::new(SHIPPED_PRIOR_DIR);
    let model_dir = bundle_dir(dir);
    let manifest: Manifest =
        model_dir.parse_manifest(include_str!("../../../models/prior/manifest.json"))?;
    let forecaster = include_bytes!("../../../models/prior/forecaster.safetensors");
    let autoencoder = include_bytes!("../../../models/prior/autoencoder.safetensors");
    model_dir.verify_weights(&manifest.weights, FORECASTER_FILE, forecaster)?;
    model_dir.verify_weights(&manifest.weights, AUTOENCODER_FILE, autoencoder)?;
    assemble(manifest, dir, forecaster, autoencoder)
}

fn assemble(
    manifest: Manifest,
    dir: &Path,
    forecaster: &[u8],
    autoencoder: &[u8],
) -> Result<Bundle, BundleError> {
    let kernels = kernels_from(&manifest, dir, forecaster, autoencoder)?;
    let model = ScoringModel {
        kernels,
        scaler: manifest.scaler.clone(),
        error_tails: manifest.error_tails.clone(),
        threshold: manifest.threshold.clone(),
    };
    Ok(Bundle { manifest, model })
}

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn matrix(name: &str, m: &Array2<f32>) -> (String, Vec<usize>, Vec<f32>) {
    (
        name.to_owned(),
        m.shape().to_vec(),
        m.iter().copied().collect(),
    )
}

fn vector(name: &str, v: &Array1<f32>) -> (String, Vec<usize>, Vec<f32>) {
    (name.to_owned(), vec![v.len()], v.to_vec())
}

fn forecaster_tensors(kernels: &KernelModel) -> Tensors {
    let mut tensors = match &kernels.cell {
        RecurrentCell::Lstm(cell) => vec![
            matrix("lstm.w_input", &cell.w_input),
            matrix("lstm.w_hidden", &cell.w_hidden),
            vector("lstm.bias", &cell.bias),
        ],
        RecurrentCell::Gru(cell) => vec![
            matrix("gru.w_input", &cell.w_input),
            matrix("gru.w_hidden", &cell.w_hidden),
            vector("gru.b_input", &cell.b_input),
            vector("gru.b_hidden", &cell.b_hidden),
        ],
    };
    tensors.push(matrix("head.weight", &kernels.head.weight));
    tensors.push(vector("head.bias", &kernels.head.bias));
    tensors
}

fn autoencoder_tensors(stack: &DenseStack) -> Tensors {
    stack
        .layers
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| {
            [
                matrix(&format!("layers.{i}.weight"), &layer.weight),
                vector(&format!("layers.{i}.bias"), &layer.bias),
            ]
        })
        .collect()
}

fn serialize(tensors: &Tensors) -> Result<Vec<u8>, safetensors::SafeTensorError> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(name, shape, values)| {
            (
                name.clone(),
                shape.clone(),
                values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(name, shape, data)| {
            TensorView::new(Dtype::F32, shape.clone(), data).map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, None)
}

/// Reads named f32 tensors, checking each one's shape.
struct WeightFile<'a> {
    path: PathBuf,
    tensors: safetensors::SafeTensors<'a>,
}

impl<'a> WeightFile<'a> {
    fn parse(path: PathBuf, bytes: &'a [u8]) -> Result<WeightFile<'a>, BundleError> {
        let tensors =
            safetensors::SafeTensors::deserialize(bytes).map_err(|e| BundleError::Weights {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(WeightFile { path, tensors })
    }

    fn values(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, BundleError> {
        let fail = |message: String| BundleError::Weights {
            path: self.path.clone(),
            message,
        };
        let view = self
            .tensors
            .tensor(name)
            .map_err(|_| fail(format!("no tensor {name}")))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape {
            return Err(fail(format!(
                "tensor {name} is {:?} {:?}, the manifest implies F32 {shape:?}",
                view.dtype(),
                view.shape()
            )));
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(fail(format!(
                "tensor {name} holds a value that is not finite"
            )));
        }
        Ok(values)
    }

    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Array2<f32>, BundleError> {
        let values = self.values(name, &[rows, cols])?;
        Ok(Array2::from_shape_vec((rows, cols), values).expect("shape checked"))
    }

    fn vector(&self, name: &str, len: usize) -> Result<Array1<f32>, BundleError> {
        Ok(Array1::from(self.values(name, &[len])?))
    }
}

fn kernels_from(
    manifest: &Manifest,
    dir: &Path,
    forecaster: &[u8],
    autoencoder: &[u8],
) -> Result<KernelModel, BundleError> {
    let inputs = manifest.schema.input_width();
    let hidden = manifest.model.forecaster.hidden_size;
    let window_len = manifest.model.window_len;
    let f = WeightFile::parse(dir.join(FORECASTER_FILE), forecaster)?;
    let cell = match manifest.model.forecaster.cell {
        CellKind::Lstm => RecurrentCell::Lstm(LstmCell {
            w_input: f.matrix("lstm.w_input", inputs, 4 * hidden)?,
            w_hidden: f.matrix("lstm.w_hidden", hidden, 4 * hidden)?,
            bias: f.vector("lstm.bias", 4 * hidden)?,
        }),
        CellKind::Gru => RecurrentCell::Gru(GruCell {
            w_input: f.matrix("gru.w_input", inputs, 3 * hidden)?,
            w_hidden: f.matrix("gru.w_hidden", hidden, 3 * hidden)?,
            b_input: f.vector("gru.b_input", 3 * hidden)?,
            b_hidden: f.vector("gru.b_hidden", 3 * hidden)?,
        }),
    };
    let head = Dense {
        weight: f.matrix("head.weight", hidden, inputs)?,
        bias: f.vector("head.bias", inputs)?,
        activation: Activation::Identity,
    };
    let a = WeightFile::parse(dir.join(AUTOENCODER_FILE), autoencoder)?;
    let widths = manifest.model.autoencoder.widths(window_len * inputs);
    let last = widths.len() - 2;
    let layers = widths
        .windows(2)
        .enumerate()
        .map(|(i, pair)| {
            Ok(Dense {
                weight: a.matrix(&format!("layers.{i}.weight"), pair[0], pair[1])?,
                bias: a.vector(&format!("layers.{i}.bias"), pair[1])?,
                activation: if i < last {
                    manifest.model.autoencoder.activation
                } else {
                    Activation::Identity
                },
            })
        })
        .collect::<Result<Vec<_>, BundleError>>()?;
    Ok(KernelModel {
        cell,
        head,
        autoencoder: DenseStack { layers },
        window_len,
        centred_inputs: manifest
            .model
            .autoencoder
            .centred_inputs(&manifest.schema.measured_inputs()),
    })
}
