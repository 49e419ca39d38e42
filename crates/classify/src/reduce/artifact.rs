//! The reduce model directory: the contract between `reduce train` and
//! `reduce transform`.
//!
//! - `manifest.json`: format version, how rows are read ([`RowSource`]:
//!   the table's encoders or the image size), the code size, the network
//!   and training settings, the training summary, the SHA-256 of the
//!   weight file;
//! - `model.bpk`: the autoencoder's parameters (burn's burnpack record).

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use tidewatch_learn::fit::TrainingSummary;
use tidewatch_learn::model_dir::{CheckedManifest, ModelDir};

use crate::record::{read_module, write_module};
use crate::reduce::config::ReduceConfig;
use crate::reduce::data::RowSource;
use crate::reduce::model::Autoencoder;
use crate::tabular::config::{MlpConfig, TabularTrainingConfig};

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// What `kind` says in a reduce model's manifest.
pub const KIND: &str = "autoencoder-reducer";
const WEIGHTS: &str = "model.bpk";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReduceManifest {
    pub format_version: u32,
    pub kind: String,
    pub tidewatch_version: String,
    pub created_at: String,
    pub source: RowSource,
    /// Inputs per row.
    pub width: usize,
    /// Units in the code.
    pub code: usize,
    /// Label names in the order of the training rows' label indices.
    pub labels: Vec<String>,
    pub model: MlpConfig,
    pub training: TabularTrainingConfig,
    pub train_rows: usize,
    /// Mean squared reconstruction error of the training rows.
    pub train_reconstruction_mse: f64,
    pub summary: TrainingSummary,
    /// SHA-256 (hex) of each weight file, by file name.
    pub weights: BTreeMap<String, String>,
}

impl CheckedManifest for ReduceManifest {
    fn check(&self) -> Result<(), String> {
        ReduceConfig {
            model: self.model.clone(),
            training: self.training.clone(),
        }
        .validate()?;
        let width = match &self.source {
            RowSource::Table { features, .. } => features.width(),
            RowSource::Images { size_px, channels } => channels * (*size_px as usize).pow(2),
        };
        if width != self.width || self.width == 0 {
            return Err(format!(
                "width is {}; the source gives {width} inputs",
                self.width
            ));
        }
        if self.code == 0 || self.code > self.width {
            return Err(format!("code must be in [1, width], got {}", self.code));
        }
        Ok(())
    }
}

pub use crate::record::ArtifactError;

fn reduce_dir(dir: &Path) -> ModelDir<'_> {
    ModelDir::new(dir, "reduce model", FORMAT_VERSION)
}

/// Writes the weights, then the manifest that vouches for them.
pub fn save(
    dir: &Path,
    manifest: &ReduceManifest,
    model: &Autoencoder,
) -> Result<ReduceManifest, ArtifactError> {
    let model_dir = reduce_dir(dir);
    let mut manifest = manifest.clone();
    manifest.weights = write_module(&model_dir, WEIGHTS, model)?;
    model_dir.write_manifest(&manifest)?;
    Ok(manifest)
}

/// Reads a model directory.
pub fn load(dir: &Path) -> Result<(ReduceManifest, Autoencoder), ArtifactError> {
    let model_dir = reduce_dir(dir);
    let manifest: ReduceManifest = model_dir.read_manifest()?;
    model_dir.check_kind(&manifest.kind, KIND)?;
    let untrained = Autoencoder::init(
        &manifest.model,
        manifest.width,
        manifest.code,
        &Device::flex(),
    );
    let model = read_module(&model_dir, &manifest.weights, WEIGHTS, untrained)?;
    Ok((manifest, model))
}
