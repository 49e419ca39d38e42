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
use std::path::Path;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use tidewatch_learn::model_dir::{CheckedManifest, ModelDir};

use crate::record::{read_module, write_module};
use crate::vision::config::{
    AugmentConfig, CnnConfig, ImageConfig, ImageTrainingConfig, InputConfig,
};
use crate::vision::data::Normalisation;
use crate::vision::model::{Cnn, CnnShape};

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// What `kind` says in an image model's manifest.
pub const KIND: &str = "image-classifier";
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

impl CheckedManifest for ImageManifest {
    fn check(&self) -> Result<(), String> {
        ImageConfig {
            input: InputConfig {
                size_px: self.size_px,
                ..InputConfig::default()
            },
            model: self.model.clone(),
            training: self.training.clone(),
            augment: self.augment.clone(),
        }
        .validate()?;
        if self.classes.len() < 2 {
            return Err(format!(
                "classes lists {} class(es); a classifier has at least two",
                self.classes.len()
            ));
        }
        if !matches!(self.channels, 1 | 3) {
            return Err(format!("channels must be 1 or 3, got {}", self.channels));
        }
        self.normalisation.check(self.channels)
    }
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

pub use crate::record::ArtifactError;

/// `dir` as an image model directory.
fn image_dir(dir: &Path) -> ModelDir<'_> {
    ModelDir::new(dir, "image model", FORMAT_VERSION)
}

/// Writes the weights, then the manifest that vouches for them.
pub fn save(
    dir: &Path,
    manifest: &ImageManifest,
    model: &Cnn,
) -> Result<ImageManifest, ArtifactError> {
    let model_dir = image_dir(dir);
    let mut manifest = manifest.clone();
    manifest.weights = write_module(&model_dir, WEIGHTS, model)?;
    model_dir.write_manifest(&manifest)?;
    Ok(manifest)
}

/// Reads a model directory onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<(ImageManifest, Cnn), ArtifactError> {
    let model_dir = image_dir(dir);
    let manifest: ImageManifest = model_dir.read_manifest()?;
    model_dir.check_kind(&manifest.kind, KIND)?;
    let untrained = manifest.model.init(manifest.shape(), device);
    let model = read_module(&model_dir, &manifest.weights, WEIGHTS, untrained)?;
    // Weights for another number of classes than the manifest names would
    // put a prediction past the end of the list.
    let side = manifest.size_px as usize;
    let probe = Tensor::<4>::zeros([1, manifest.channels, side, side], device);
    let classes_out = model.forward(probe).dims()[1];
    if classes_out != manifest.classes.len() {
        return Err(model_dir
            .invalid(
                None,
                format!(
                    "classes lists {} classes; the weights give {classes_out}",
                    manifest.classes.len()
                ),
            )
            .into());
    }
    Ok((manifest, model))
}
