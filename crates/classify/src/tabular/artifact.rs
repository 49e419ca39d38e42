//! The tabular model directory: the contract between `tabular train` and
//! `tabular predict` / `tabular eval`.
//!
//! - `manifest.json`: format version, the feature encoders (column types,
//!   standardisation, imputed values, bins, categories), the target (its
//!   scaling or its classes), the network and training settings, the
//!   each network's training summary, and the SHA-256 of the weight file;
//! - `model.bpk`: the ensemble's parameters (burn's burnpack record).

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use tidewatch_learn::fit::TrainingSummary;
use tidewatch_learn::model_dir::{CheckedManifest, ModelDir};

use crate::record::{read_module, write_module};
use crate::tabular::config::{MlpConfig, TabularConfig, TabularTrainingConfig};
use crate::tabular::features::{ColumnEncoder, FeatureEncoder, TargetEncoder};
use crate::tabular::model::Ensemble;

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// What `kind` says in a tabular model's manifest.
pub const KIND: &str = "tabular-network";
const WEIGHTS: &str = "model.bpk";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabularManifest {
    pub format_version: u32,
    pub kind: String,
    pub tidewatch_version: String,
    pub created_at: String,
    pub features: FeatureEncoder,
    pub target: TargetEncoder,
    pub model: MlpConfig,
    pub training: TabularTrainingConfig,
    pub train_rows: usize,
    /// Bad rows skipped (`--skip-bad-rows`).
    pub skipped_rows: usize,
    /// How each network of the ensemble trained.
    pub members: Vec<TrainingSummary>,
    /// Seconds for the whole training.
    pub seconds: f64,
    /// SHA-256 (hex) of each weight file, by file name.
    pub weights: BTreeMap<String, String>,
}

impl CheckedManifest for TabularManifest {
    fn check(&self) -> Result<(), String> {
        TabularConfig {
            model: self.model.clone(),
            training: self.training.clone(),
            ..TabularConfig::default()
        }
        .validate()?;
        if self.members.is_empty() {
            return Err("members lists no network".into());
        }
        for column in &self.features.columns {
            match column {
                ColumnEncoder::Numeric(c) => {
                    if !(c.std > 0.0
                        && c.std.is_finite()
                        && c.mean.is_finite()
                        && c.fill.is_finite())
                    {
                        return Err(format!(
                            "column {:?}: mean, std and fill must be finite, std positive",
                            c.name
                        ));
                    }
                    if c.bin_edges
                        .windows(2)
                        .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
                        || c.bin_edges.len() == 1
                    {
                        return Err(format!("column {:?}: bin_edges must ascend", c.name));
                    }
                }
                ColumnEncoder::Categorical(c) => {
                    if c.categories.windows(2).any(|w| w[0] >= w[1]) {
                        return Err(format!(
                            "column {:?}: categories must be sorted and distinct",
                            c.name
                        ));
                    }
                }
            }
        }
        match &self.target {
            TargetEncoder::Regression {
                mean,
                std,
                min,
                max,
                ..
            } => {
                if !(*std > 0.0 && std.is_finite() && mean.is_finite()) {
                    return Err("target: mean and std must be finite, std positive".into());
                }
                if !(min.is_finite() && max.is_finite() && min <= max) {
                    return Err("target: min and max must be finite, min at most max".into());
                }
            }
            TargetEncoder::Classification { classes, .. } => {
                if classes.len() < 2 || classes.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("target: classes must be at least two, sorted and distinct".into());
                }
            }
        }
        Ok(())
    }
}

pub use crate::record::ArtifactError;

fn tabular_dir(dir: &Path) -> ModelDir<'_> {
    ModelDir::new(dir, "tabular model", FORMAT_VERSION)
}

/// Writes the weights, then the manifest that vouches for them.
pub fn save(
    dir: &Path,
    manifest: &TabularManifest,
    model: &Ensemble,
) -> Result<TabularManifest, ArtifactError> {
    let model_dir = tabular_dir(dir);
    let mut manifest = manifest.clone();
    manifest.weights = write_module(&model_dir, WEIGHTS, model)?;
    model_dir.write_manifest(&manifest)?;
    Ok(manifest)
}

/// Reads a model directory onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<(TabularManifest, Ensemble), ArtifactError> {
    let model_dir = tabular_dir(dir);
    let manifest: TabularManifest = model_dir.read_manifest()?;
    model_dir.check_kind(&manifest.kind, KIND)?;
    let width = manifest.features.width();
    let outputs = manifest.target.outputs();
    let untrained = Ensemble::init(
        &manifest.model,
        manifest.members.len(),
        width,
        outputs,
        device,
    );
    let model = read_module(&model_dir, &manifest.weights, WEIGHTS, untrained)?;
    // Weights of another shape than the encoders say would misread rows.
    let probe = model.forward(Tensor::<2>::zeros([1, width], device));
    if probe.dims()[1] != outputs {
        return Err(model_dir
            .invalid(
                None,
                format!(
                    "the target has {outputs} output(s); the weights give {}",
                    probe.dims()[1]
                ),
            )
            .into());
    }
    Ok((manifest, model))
}
