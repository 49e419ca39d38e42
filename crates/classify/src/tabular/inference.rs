//! `tabular predict` and `tabular eval`: a model directory's encoders and
//! network over a table's rows; predictions written as CSV or JSON Lines,
//! and what they score against the target column (RMSE, MAE and R², or
//! accuracy, macro-F1 and the confusion matrix).

use std::io::Write;
use std::path::Path;

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use serde::Serialize;

use crate::metrics::Evaluation;
use crate::tabular::artifact::{self, ArtifactError, TabularManifest};
use crate::tabular::features::{Encoded, FeatureError, TargetEncoder, Targets};
use crate::tabular::model::Ensemble;
use crate::tabular::table::{Table, TableError};
use crate::tabular::training::row_batch;

#[derive(Debug, thiserror::Error)]
pub enum PredictError {
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Feature(#[from] FeatureError),
    #[error("{path}: {message}")]
    Write { path: String, message: String },
}

/// Rows per forward pass.
const BATCH_ROWS: usize = 1024;

/// A loaded model directory.
#[derive(Debug)]
pub struct TabularModel {
    pub manifest: TabularManifest,
    network: Ensemble,
}

/// One row's prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prediction {
    /// In the target's units.
    Value(f64),
    /// The most probable class (an index into the target's classes).
    Class { class: usize, probability: f32 },
}

impl TabularModel {
    pub fn load(dir: &Path) -> Result<TabularModel, ArtifactError> {
        let (manifest, network) = artifact::load(dir, &Device::flex())?;
        Ok(TabularModel { manifest, network })
    }

    /// Encodes the rows of `table` (hardening as [`crate::tabular::features`]
    /// says) and predicts each.
    pub fn predict(
        &self,
        table: &Table,
        skip_bad_rows: bool,
    ) -> Result<(Encoded, Vec<Prediction>), PredictError> {
        let encoded = self.manifest.features.encode(table, skip_bad_rows)?;
        let predictions = predict_encoded(&self.network, &self.manifest.target, &encoded);
        Ok((encoded, predictions))
    }
}

/// The network's predictions for encoded rows, in batches.
pub fn predict_encoded(
    network: &Ensemble,
    target: &TargetEncoder,
    encoded: &Encoded,
) -> Vec<Prediction> {
    let device = Device::flex();
    let rows: Vec<usize> = (0..encoded.len()).collect();
    let mut predictions = Vec::with_capacity(rows.len());
    for batch in rows.chunks(BATCH_ROWS) {
        let output = network.forward(row_batch(&encoded.inputs, encoded.width, batch, &device));
        match target {
            TargetEncoder::Regression { .. } => {
                let values = output.into_data().try_to_vec::<f32>().expect("f32 outputs");
                predictions.extend(
                    values
                        .into_iter()
                        .map(|v| Prediction::Value(target.value(v))),
                );
            }
            TargetEncoder::Classification { classes, .. } => {
                let probabilities = softmax(output, 1)
                    .into_data()
                    .try_to_vec::<f32>()
                    .expect("f32 outputs");
                predictions.extend(probabilities.chunks(classes.len()).map(|row| {
                    let (class, &probability) = row
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                        .expect("two classes or more");
                    Prediction::Class { class, probability }
                }));
            }
        }
    }
    predictions
}

#[derive(Debug, Serialize)]
struct PredictionRow<'a> {
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    prediction: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    probability: Option<f32>,
}

/// Writes one row per prediction: the input's line, the `id_column`'s value
/// when given, the prediction (a number or a class name) and, for a class,
/// its probability. CSV when `csv`, else JSON Lines.
pub fn write_predictions(
    table: &Table,
    encoded: &Encoded,
    predictions: &[Prediction],
    target: &TargetEncoder,
    id_column: Option<usize>,
    csv: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let rows = encoded
        .rows
        .iter()
        .zip(predictions)
        .map(|(&r, prediction)| {
            let row = &table.rows[r];
            let (prediction, probability) = match (prediction, target) {
                (Prediction::Value(v), _) => (serde_json::json!(v), None),
                (
                    Prediction::Class { class, probability },
                    TargetEncoder::Classification { classes, .. },
                ) => (serde_json::json!(classes[*class]), Some(*probability)),
                (Prediction::Class { .. }, TargetEncoder::Regression { .. }) => {
                    unreachable!("a regression target predicts values")
                }
            };
            PredictionRow {
                line: row.line,
                id: id_column.map(|c| row.cells[c].as_deref().unwrap_or("")),
                prediction,
                probability,
            }
        });
    if !csv {
        for row in rows {
            let line = serde_json::to_string(&row).map_err(std::io::Error::other)?;
            writeln!(out, "{line}")?;
        }
        return out.flush();
    }
    let mut writer = csv::Writer::from_writer(&mut *out);
    let mut header = vec!["line"];
    if id_column.is_some() {
        header.push("id");
    }
    header.push("prediction");
    if matches!(target, TargetEncoder::Classification { .. }) {
        header.push("probability");
    }
    writer
        .write_record(&header)
        .map_err(std::io::Error::other)?;
    for row in rows {
        let mut fields = vec![row.line.to_string()];
        fields.extend(row.id.map(str::to_owned));
        fields.push(match &row.prediction {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
        fields.extend(row.probability.map(|p| p.to_string()));
        writer
            .write_record(&fields)
            .map_err(std::io::Error::other)?;
    }
    writer.flush()?;
    drop(writer);
    out.flush()
}

/// How close regression predictions are to the actual values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RegressionMetrics {
    pub rows: usize,
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
}

impl RegressionMetrics {
    pub fn from_pairs(predicted: &[f64], actual: &[f64]) -> RegressionMetrics {
        let n = actual.len().max(1) as f64;
        let mean = actual.iter().sum::<f64>() / n;
        let (mut squared, mut absolute, mut total) = (0.0, 0.0, 0.0);
        for (p, a) in predicted.iter().zip(actual) {
            squared += (p - a).powi(2);
            absolute += (p - a).abs();
            total += (a - mean).powi(2);
        }
        RegressionMetrics {
            rows: actual.len(),
            rmse: (squared / n).sqrt(),
            mae: absolute / n,
            r2: if total > 0.0 {
                1.0 - squared / total
            } else {
                0.0
            },
        }
    }
}

/// What `tabular eval` reports; saved as JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TabularEvaluation {
    Regression {
        #[serde(flatten)]
        metrics: RegressionMetrics,
        skipped: usize,
        /// (predicted, actual) of each row, for the scatter picture.
        #[serde(skip)]
        pairs: Vec<(f64, f64)>,
    },
    Classification(Evaluation),
}

impl TabularEvaluation {
    /// Scores `predictions` of the rows `encoded` kept against `targets`.
    pub fn score(
        target: &TargetEncoder,
        targets: &Targets,
        predictions: &[Prediction],
        skipped: usize,
    ) -> TabularEvaluation {
        match (target, targets) {
            (TargetEncoder::Classification { classes, .. }, Targets::Classes(actual)) => {
                let mut confusion = vec![vec![0; classes.len()]; classes.len()];
                for (prediction, &a) in predictions.iter().zip(actual) {
                    if let Prediction::Class { class, .. } = prediction {
                        confusion[a][*class] += 1;
                    }
                }
                TabularEvaluation::Classification(Evaluation::from_confusion(
                    classes.clone(),
                    confusion,
                    skipped,
                ))
            }
            (_, Targets::Values(actual)) => {
                let actual: Vec<f64> = actual.iter().map(|&v| target.unstandardise(v)).collect();
                let predicted: Vec<f64> = predictions
                    .iter()
                    .map(|p| match p {
                        Prediction::Value(v) => *v,
                        Prediction::Class { .. } => f64::NAN,
                    })
                    .collect();
                TabularEvaluation::Regression {
                    metrics: RegressionMetrics::from_pairs(&predicted, &actual),
                    skipped,
                    pairs: predicted.into_iter().zip(actual).collect(),
                }
            }
            (TargetEncoder::Regression { .. }, Targets::Classes(_)) => {
                unreachable!("a regression target encodes values")
            }
        }
    }

    /// The figures as text.
    pub fn table(&self) -> String {
        match self {
            TabularEvaluation::Regression {
                metrics, skipped, ..
            } => format!(
                "RMSE {:.4}  MAE {:.4}  R² {:.4}  ({} rows{})\n",
                metrics.rmse,
                metrics.mae,
                metrics.r2,
                metrics.rows,
                if *skipped > 0 {
                    format!(", {skipped} bad skipped")
                } else {
                    String::new()
                }
            ),
            TabularEvaluation::Classification(evaluation) => evaluation.table(),
        }
    }
}

/// Evaluates a model on a labelled table.
pub fn evaluate(
    model: &TabularModel,
    table: &Table,
    skip_bad_rows: bool,
) -> Result<(TabularEvaluation, Encoded), PredictError> {
    let target = &model.manifest.target;
    let mut encoded = model.manifest.features.encode(table, skip_bad_rows)?;
    let targets = target.encode(table, &mut encoded, skip_bad_rows)?;
    let predictions = predict_encoded(&model.network, target, &encoded);
    Ok((
        TabularEvaluation::score(target, &targets, &predictions, encoded.skipped),
        encoded,
    ))
}
