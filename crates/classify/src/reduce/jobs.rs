//! The three `reduce` jobs: `train` (an autoencoder with a k-unit code to a
//! model directory), `transform` (rows to codes with a model directory) and
//! `evaluate` (for each k, the autoencoder's reconstruction error next to
//! PCA's, both fitted on the same training rows and measured on the same
//! rows, with the 2-D codes for a picture).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_reduction::Pca;
use ndarray::Array2;
use serde::Serialize;

use crate::reduce::artifact::{self, ArtifactError, FORMAT_VERSION, KIND, ReduceManifest};
use crate::reduce::config::ReduceConfig;
use crate::reduce::data::{ReduceDataError, RowSource, Rows};
use crate::reduce::training::{encode_rows, fit_autoencoder};
use crate::tabular::table::Table;
use tidewatch_learn::fit::{Diverged, Progress, TrainingSummary};

#[derive(Debug, thiserror::Error)]
pub enum ReduceError {
    #[error(transparent)]
    Data(#[from] ReduceDataError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Diverged(#[from] Diverged),
    #[error("{0}")]
    Invalid(String),
}

/// What the rows are.
#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    /// A CSV or JSON Lines table; `label` names a column that labels rows.
    Table { label: Option<String> },
    /// A folder of class folders, or IDX files, resized to `size_px`.
    Images { size_px: u32 },
}

/// Training rows and how to read them.
#[derive(Debug, Clone)]
pub struct ReduceRequest {
    pub data: PathBuf,
    pub input: InputKind,
    pub config: ReduceConfig,
    pub skip_bad_rows: bool,
    pub progress: Progress,
}

impl ReduceRequest {
    /// Fits how rows are read on the training data, and reads it.
    pub fn read_training(&self) -> Result<(RowSource, Rows), ReduceError> {
        self.config.validate().map_err(ReduceError::Invalid)?;
        let (source, rows) = match &self.input {
            InputKind::Table { label } => {
                let table = Table::read(&self.data).map_err(ReduceDataError::from)?;
                let source = RowSource::fit_table(&table, label.as_deref())?;
                let rows = source.read(&self.data, &[], self.skip_bad_rows)?;
                (source, rows)
            }
            InputKind::Images { size_px } => {
                RowSource::fit_images(&self.data, *size_px, self.skip_bad_rows)?
            }
        };
        if rows.len() < 10 {
            return Err(ReduceError::Invalid(format!(
                "{}: {} usable row(s); an autoencoder needs at least 10",
                self.data.display(),
                rows.len()
            )));
        }
        Ok((source, rows))
    }
}

/// Refuses a code size the rows cannot have.
fn check_code(code: usize, rows: &Rows) -> Result<(), ReduceError> {
    if code == 0 || code > rows.width {
        return Err(ReduceError::Invalid(format!(
            "a code of {code} unit(s) for rows of {} inputs; choose 1 to {}",
            rows.width, rows.width
        )));
    }
    Ok(())
}

/// Mean squared difference of two row-major matrices.
fn mean_squared(a: &[f32], b: &[f32]) -> f64 {
    let total: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    total / a.len().max(1) as f64
}

/// Trains an autoencoder with a `code`-unit bottleneck and writes it to `out`.
pub fn train(
    request: &ReduceRequest,
    code: usize,
    out: &Path,
) -> Result<ReduceManifest, ReduceError> {
    let started = Instant::now();
    let (source, rows) = request.read_training()?;
    check_code(code, &rows)?;
    let (model, summary) = fit_autoencoder(&rows, code, &request.config, request.progress)?;
    let (_, reconstructed) = encode_rows(&model, &rows);
    let manifest = ReduceManifest {
        format_version: FORMAT_VERSION,
        kind: KIND.to_owned(),
        tidewatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: chrono::Utc::now().to_rfc3339(),
        source,
        width: rows.width,
        code,
        labels: rows.label_names.clone(),
        model: request.config.model.clone(),
        training: request.config.training.clone(),
        train_rows: rows.len(),
        train_reconstruction_mse: mean_squared(&rows.values, &reconstructed),
        summary: TrainingSummary {
            seconds: started.elapsed().as_secs_f64(),
            ..summary
        },
        weights: Default::default(),
    };
    Ok(artifact::save(out, &manifest, &model)?)
}

/// Rows of `input` read as the model directory says, with their codes
/// (row-major `[rows, code]`).
pub fn transform(
    dir: &Path,
    input: &Path,
    skip_bad_rows: bool,
) -> Result<(ReduceManifest, Rows, Vec<f32>), ReduceError> {
    let (manifest, model) = artifact::load(dir)?;
    let rows = manifest
        .source
        .read(input, &manifest.labels, skip_bad_rows)?;
    let (codes, _) = encode_rows(&model, &rows);
    Ok((manifest, rows, codes))
}

/// Writes one line per row: its name (line or image), its label when it
/// has one, and `code_1` .. `code_k`; CSV when `csv`, else JSON Lines.
pub fn write_codes(
    rows: &Rows,
    codes: &[f32],
    code: usize,
    csv: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let label = |i: usize| {
        rows.labels
            .as_ref()
            .map(|labels| rows.label_names[labels[i]].as_str())
    };
    if !csv {
        for i in 0..rows.len() {
            let mut object = serde_json::Map::new();
            object.insert("row".into(), rows.names[i].clone().into());
            if let Some(label) = label(i) {
                object.insert("label".into(), label.into());
            }
            object.insert(
                "code".into(),
                codes[i * code..(i + 1) * code].to_vec().into(),
            );
            writeln!(out, "{}", serde_json::Value::Object(object))?;
        }
        return out.flush();
    }
    let mut writer = csv::Writer::from_writer(&mut *out);
    let mut header = vec!["row".to_owned()];
    if rows.labels.is_some() {
        header.push("label".to_owned());
    }
    header.extend((1..=code).map(|c| format!("code_{c}")));
    writer
        .write_record(&header)
        .map_err(std::io::Error::other)?;
    for i in 0..rows.len() {
        let mut fields = vec![rows.names[i].clone()];
        fields.extend(label(i).map(str::to_owned));
        fields.extend(
            codes[i * code..(i + 1) * code]
                .iter()
                .map(|c| c.to_string()),
        );
        writer
            .write_record(&fields)
            .map_err(std::io::Error::other)?;
    }
    writer.flush()
}

/// One code size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub code: usize,
    /// Mean squared reconstruction error per input, on the evaluated rows.
    pub autoencoder_mse: f64,
    pub pca_mse: f64,
    /// The same on the training rows.
    pub autoencoder_train_mse: f64,
    pub pca_train_mse: f64,
    pub best_epoch: usize,
    pub seconds: f64,
}

/// What `reduce eval` reports; saved as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct ReduceEvaluation {
    pub train_rows: usize,
    /// Rows the errors are measured on: a test file's, or the training rows.
    pub evaluated_rows: usize,
    pub evaluated_on: String,
    pub width: usize,
    pub comparisons: Vec<Comparison>,
}

impl ReduceEvaluation {
    pub fn table(&self) -> String {
        let mut text = format!(
            "reconstruction MSE per input on {} ({} rows; trained on {} rows of {} inputs)\n\n    k  autoencoder        PCA  ratio\n",
            self.evaluated_on, self.evaluated_rows, self.train_rows, self.width
        );
        for c in &self.comparisons {
            text += &format!(
                "{:>5}  {:>11.5}  {:>9.5}  {:>5.2}\n",
                c.code,
                c.autoencoder_mse,
                c.pca_mse,
                c.autoencoder_mse / c.pca_mse
            );
        }
        text
    }
}

/// 2-D codes of the evaluated rows, for the pictures.
#[derive(Debug, Clone)]
pub struct Codes2d {
    pub autoencoder: Vec<(f64, f64)>,
    pub pca: Vec<(f64, f64)>,
    pub labels: Option<Vec<usize>>,
    pub label_names: Vec<String>,
}

fn matrix(rows: &Rows) -> Array2<f64> {
    Array2::from_shape_fn((rows.len(), rows.width), |(r, c)| {
        f64::from(rows.values[r * rows.width + c])
    })
}

/// PCA with `code` components fitted on `train`.
fn fit_pca(train: &Array2<f64>, code: usize) -> Result<Pca<f64>, ReduceError> {
    Pca::params(code)
        .fit(&DatasetBase::from(train.clone()))
        .map_err(|e| ReduceError::Invalid(format!("PCA with {code} components: {e}")))
}

/// The codes and the reconstruction of `rows` by a fitted PCA.
fn pca_project(pca: &Pca<f64>, rows: &Array2<f64>) -> (Array2<f64>, Array2<f64>) {
    let codes = (rows - pca.mean()).dot(&pca.components().t());
    let reconstructed = codes.dot(pca.components()) + pca.mean();
    (codes, reconstructed)
}

fn pairs(codes: &[f64], code: usize) -> Vec<(f64, f64)> {
    codes.chunks(code).map(|c| (c[0], c[1])).collect()
}

/// For each of `codes`, trains an autoencoder and fits PCA on the training
/// rows and measures both on `test` (or on the training rows without it);
/// `finished` hears of each code size as it ends. The 2-D codes come back
/// when 2 is among the sizes.
pub fn evaluate(
    request: &ReduceRequest,
    test: Option<&Path>,
    codes: &[usize],
    mut finished: impl FnMut(&Comparison),
) -> Result<(ReduceEvaluation, Option<Codes2d>), ReduceError> {
    let (source, train_rows) = request.read_training()?;
    let evaluated = match test {
        Some(path) => source.read(path, &train_rows.label_names, request.skip_bad_rows)?,
        None => train_rows.clone(),
    };
    for &code in codes {
        check_code(code, &train_rows)?;
    }
    let train_matrix = matrix(&train_rows);
    let evaluated_matrix = matrix(&evaluated);
    let as_f32 = |m: &Array2<f64>| m.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let mut comparisons = Vec::with_capacity(codes.len());
    let mut two_d = None;
    for &code in codes {
        let started = Instant::now();
        let (model, summary) =
            fit_autoencoder(&train_rows, code, &request.config, request.progress)?;
        let (ae_codes, reconstructed) = encode_rows(&model, &evaluated);
        let (_, train_reconstructed) = encode_rows(&model, &train_rows);
        let pca = fit_pca(&train_matrix, code)?;
        let (pca_codes, pca_reconstructed) = pca_project(&pca, &evaluated_matrix);
        let (_, pca_train_reconstructed) = pca_project(&pca, &train_matrix);
        let comparison = Comparison {
            code,
            autoencoder_mse: mean_squared(&evaluated.values, &reconstructed),
            pca_mse: mean_squared(&evaluated.values, &as_f32(&pca_reconstructed)),
            autoencoder_train_mse: mean_squared(&train_rows.values, &train_reconstructed),
            pca_train_mse: mean_squared(&train_rows.values, &as_f32(&pca_train_reconstructed)),
            best_epoch: summary.best_epoch,
            seconds: started.elapsed().as_secs_f64(),
        };
        finished(&comparison);
        comparisons.push(comparison);
        if code == 2 {
            let ae: Vec<f64> = ae_codes.iter().map(|&v| f64::from(v)).collect();
            two_d = Some(Codes2d {
                autoencoder: pairs(&ae, 2),
                pca: pairs(pca_codes.as_slice().expect("standard layout"), 2),
                labels: evaluated.labels.clone(),
                label_names: evaluated.label_names.clone(),
            });
        }
    }
    Ok((
        ReduceEvaluation {
            train_rows: train_rows.len(),
            evaluated_rows: evaluated.len(),
            evaluated_on: match test {
                Some(path) => path.display().to_string(),
                None => "the training rows".to_owned(),
            },
            width: train_rows.width,
            comparisons,
        },
        two_d,
    ))
}
