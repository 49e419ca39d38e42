//! The image model directory: the contract between `image train` and
//! `image predict` / `image eval`, on the bundle conventions of the
//! streaming models.
//!
//! - `manifest.json`: format version, classes, input size and channels, the
//!   normalisation statistics, the network and training settings, the
//!   training summary, and the SHA-256 of the weight file;
//! - `model.bpk`: the network's parameters (burn's burnpack record).
//!
//! Loading refuses an unknown format version and a weight file whose
//! checksum differs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::checksum::{WeightFileError, read_verified, sha256_hex};
use crate::vision::config::{AugmentConfig, CnnConfig, ImageTrainingConfig};
use crate::vision::data::Normalisation;
use crate::vision::model::{Cnn, CnnShape};

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// What `kind` says in an image model's manifest.
pub const KIND: &str = "image-classifier";
const MANIFEST: &str = "manifest.json";
const WEIGHTS: &str = "model.bpk";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageManifest {
    pub format_version: u32,
    pub kind: String,
    pub tidewatch_version: String,
    pub created_at: String,
    /// Class names; a prediction's index points into this list.
    pub classes: Vec<String>,
    pub size_px: u32,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    pub normalisation: Normalisation,
    /// The network, with `conv_channels` resolved for `size_px`.
    pub model: CnnConfig,
    pub training: ImageTrainingConfig,
    pub augment: AugmentConfig,
    pub summary: TrainingReport,
    /// SHA-256 (hex) of each weight file, by file name.
    pub weights: BTreeMap<String, String>,
}

impl ImageManifest {
    pub fn shape(&self) -> CnnShape {
        CnnShape {
            channels: self.channels,
            side: self.size_px as usize,
            classes: self.classes.len(),
        }
    }
}

/// How training went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingReport {
    pub train_images: usize,
    pub validation_images: usize,
    /// Unreadable images skipped while loading.
    pub skipped_images: usize,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_validation_accuracy: f64,
    pub best_validation_loss: f64,
    pub history: Vec<EpochReport>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub learning_rate: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub validation_loss: f64,
    pub validation_accuracy: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: not a tidewatch image model manifest: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error(
        "{path}: image model format version {found}; this tidewatch reads version {FORMAT_VERSION}"
    )]
    UnknownVersion { path: PathBuf, found: u32 },
    #[error(transparent)]
    WeightFile(#[from] WeightFileError),
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> ArtifactError {
    ArtifactError::Io {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// Writes the weights, then the manifest that vouches for them; an
/// interrupted write leaves a directory that fails to load, never a
/// mismatched one that loads.
pub fn save(
    dir: &Path,
    manifest: &ImageManifest,
    model: &Cnn,
) -> Result<ImageManifest, ArtifactError> {
    std::fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
    let weights = dir.join(WEIGHTS);
    model
        .clone()
        .into_record()
        .save(&weights)
        .map_err(|e| ArtifactError::Weights {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    let bytes = std::fs::read(&weights).map_err(|e| io_error(&weights, e))?;
    let mut manifest = manifest.clone();
    manifest.weights = BTreeMap::from([(WEIGHTS.to_owned(), sha256_hex(&bytes))]);
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serialises");
    std::fs::write(&path, text + "\n").map_err(|e| io_error(&path, e))?;
    Ok(manifest)
}

/// Reads a model directory onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<(ImageManifest, Cnn), ArtifactError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
    let version: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ArtifactError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
    match version.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(found) => {
            return Err(ArtifactError::UnknownVersion {
                path,
                found: found as u32,
            });
        }
        None => {
            return Err(ArtifactError::Manifest {
                path,
                message: "no format_version".into(),
            });
        }
    }
    let manifest: ImageManifest =
        serde_json::from_value(version).map_err(|e| ArtifactError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
    if manifest.kind != KIND {
        return Err(ArtifactError::Manifest {
            path,
            message: format!("kind {:?}, expected {KIND:?}", manifest.kind),
        });
    }
    let weights = dir.join(WEIGHTS);
    read_verified(
        &weights,
        manifest.weights.get(WEIGHTS).map_or("", String::as_str),
    )?;
    let record = ModuleRecord::load(&weights).map_err(|e| ArtifactError::Weights {
        path: weights.clone(),
        message: e.to_string(),
    })?;
    let model = manifest
        .model
        .init(manifest.shape(), device)
        .try_load_record(record)
        .map_err(|e| ArtifactError::Weights {
            path: weights,
            message: e.to_string(),
        })?;
    Ok((manifest, model))
}
