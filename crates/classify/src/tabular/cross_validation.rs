//! `tabular train --cv K`: K-fold cross-validation. The rows are dealt
//! into K seeded folds (each class spread evenly for classification); each
//! fold is predicted by a network whose encoders and weights saw only the
//! other folds, so no statistic of a held-out row leaks into its model.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::tabular::features::{TargetEncoder, Task};
use crate::tabular::inference::{RegressionMetrics, TabularEvaluation, predict_encoded};
use crate::tabular::table::Table;
use crate::tabular::training::{Prepared, TrainError, TrainRequest, fit_ensemble};

/// One fold's figures.
#[derive(Debug, Clone, Serialize)]
pub struct FoldResult {
    /// 1-based.
    pub fold: usize,
    pub train_rows: usize,
    pub test_rows: usize,
    /// Each network's best epoch.
    pub best_epochs: Vec<usize>,
    pub evaluation: TabularEvaluation,
}

/// Every fold, and the mean and standard deviation of the headline figure
/// (RMSE, or accuracy) across them.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    pub folds: Vec<FoldResult>,
    pub task: Task,
    /// RMSE (regression) or accuracy (classification), mean over folds.
    pub mean: f64,
    pub std: f64,
    /// MAE and R² (regression) or macro-F1 (classification), mean over folds.
    pub secondary: Vec<(String, f64)>,
}

impl FoldResult {
    /// The fold's figures in one line.
    pub fn line(&self) -> String {
        let name = match &self.evaluation {
            TabularEvaluation::Regression { .. } => "RMSE",
            TabularEvaluation::Classification(_) => "accuracy",
        };
        format!(
            "fold {}: {name} {:.4}  ({} training rows, {} held out, best epochs {:?})",
            self.fold,
            self.headline(),
            self.train_rows,
            self.test_rows,
            self.best_epochs
        )
    }

    fn headline(&self) -> f64 {
        match &self.evaluation {
            TabularEvaluation::Regression { metrics, .. } => metrics.rmse,
            TabularEvaluation::Classification(e) => e.accuracy,
        }
    }
}

impl CrossValidation {
    /// One line per fold and the summary, as text.
    pub fn table(&self) -> String {
        let name = match self.task {
            Task::Regression => "RMSE",
            Task::Classification => "accuracy",
        };
        let mut text = String::new();
        for fold in &self.folds {
            text += &fold.line();
            text.push('\n');
        }
        text += &format!(
            "{}-fold {name} {:.4} ± {:.4}",
            self.folds.len(),
            self.mean,
            self.std
        );
        for (what, value) in &self.secondary {
            text += &format!("  {what} {value:.4}");
        }
        text + "\n"
    }
}

/// Each row's fold, `0..folds`: rows dealt round the folds in a seeded
/// order, grouped by class first for classification so that every fold
/// has its share of each class.
fn assign_folds(table: &Table, target: &TargetEncoder, folds: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..table.rows.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed));
    if let TargetEncoder::Classification { .. } = target {
        let column = table.column(target.column()).expect("fitted on this table");
        order.sort_by_key(|&r| table.rows[r].cells[column].clone());
    }
    let mut assignment = vec![0; table.rows.len()];
    for (k, &r) in order.iter().enumerate() {
        assignment[r] = k % folds;
    }
    assignment
}

/// Runs K-fold cross-validation of `request`'s network on its table;
/// `finished` hears of each fold as it ends.
pub fn cross_validate(
    request: &TrainRequest,
    folds: usize,
    mut finished: impl FnMut(&FoldResult),
) -> Result<CrossValidation, TrainError> {
    request.config.validate().map_err(TrainError::Config)?;
    if folds < 2 {
        return Err(TrainError::Config(format!(
            "--cv needs at least 2 folds, got {folds}"
        )));
    }
    let table = Table::read(&request.data)?;
    if table.rows.len() < folds * 4 {
        return Err(TrainError::Config(format!(
            "{}: {} rows are too few for {folds} folds",
            table.path.display(),
            table.rows.len()
        )));
    }
    // The task once for all folds, from every row.
    let whole = TargetEncoder::fit(&table, &request.target, request.task)?;
    let task = whole.task();
    let fold_request = TrainRequest {
        task: Some(task),
        ..request.clone()
    };
    let assignment = assign_folds(&table, &whole, folds, request.config.training.seed);
    let mut results = Vec::with_capacity(folds);
    for fold in 0..folds {
        let (test, train): (Vec<usize>, Vec<usize>) =
            (0..table.rows.len()).partition(|&r| assignment[r] == fold);
        let train_table = table.subset(&train);
        let test_table = table.subset(&test);
        let prepared = Prepared::fit(&train_table, &fold_request)?;
        let (network, summaries) = fit_ensemble(&prepared, &request.config, request.progress)?;
        let mut encoded = prepared
            .features
            .encode(&test_table, request.skip_bad_rows)?;
        let targets = prepared
            .target
            .encode(&test_table, &mut encoded, request.skip_bad_rows)?;
        let predictions = predict_encoded(&network, &prepared.target, &encoded);
        let result = FoldResult {
            fold: fold + 1,
            train_rows: prepared.inputs.len(),
            test_rows: encoded.len(),
            best_epochs: summaries.iter().map(|s| s.best_epoch).collect(),
            evaluation: TabularEvaluation::score(
                &prepared.target,
                &targets,
                &predictions,
                encoded.skipped,
            ),
        };
        finished(&result);
        results.push(result);
    }
    let headline: Vec<f64> = results.iter().map(FoldResult::headline).collect();
    let mean = headline.iter().sum::<f64>() / folds as f64;
    let std = (headline.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / folds as f64).sqrt();
    let average = |f: &dyn Fn(&TabularEvaluation) -> f64| {
        results.iter().map(|r| f(&r.evaluation)).sum::<f64>() / folds as f64
    };
    let secondary = match task {
        Task::Regression => {
            let metric = |pick: fn(&RegressionMetrics) -> f64| {
                average(&|e| match e {
                    TabularEvaluation::Regression { metrics, .. } => pick(metrics),
                    TabularEvaluation::Classification(_) => f64::NAN,
                })
            };
            vec![
                ("MAE".to_owned(), metric(|m| m.mae)),
                ("R²".to_owned(), metric(|m| m.r2)),
            ]
        }
        Task::Classification => vec![(
            "macro-F1".to_owned(),
            average(&|e| match e {
                TabularEvaluation::Classification(e) => e.macro_f1,
                TabularEvaluation::Regression { .. } => f64::NAN,
            }),
        )],
    };
    Ok(CrossValidation {
        folds: results,
        task,
        mean,
        std,
        secondary,
    })
}
