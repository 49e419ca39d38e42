//! Multinomial logistic regression on sparse features: the text
//! classifiers' last layer when it is not a network (TF-IDF rows, sentence
//! embeddings).
//!
//! The objective and the solver are linfa-logistic's: the summed negative
//! log-likelihood of the softmax over `X · W + b` plus `alpha / 2 · |W|²`
//! (the intercepts are not penalised), minimised by L-BFGS (memory 10,
//! More-Thuente line search, gradient tolerance 1e-4) from zeros. Only the
//! products with `X` differ: they visit a row's non-zero entries, so a
//! TF-IDF row costs its text's n-grams rather than the vocabulary's width.

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use sprs::CsMat;

/// L-BFGS stops once the gradient's norm is below this.
const GRADIENT_TOLERANCE: f64 = 1e-4;
/// Corrections L-BFGS keeps.
const MEMORY: usize = 10;

/// The problem: features `[examples, width]`, one-hot targets
/// `[examples, classes]`; parameters flattened row-major from
/// `[width + 1, classes]` (the weights, then the intercepts).
struct Problem<'a> {
    features: &'a CsMat<f64>,
    targets: Array2<f64>,
    alpha: f64,
}

impl Problem<'_> {
    fn classes(&self) -> usize {
        self.targets.ncols()
    }

    fn split<'p>(&self, params: &'p Array1<f64>) -> (ArrayView2<'p, f64>, ArrayView2<'p, f64>) {
        let width = self.features.cols();
        let all = params
            .view()
            .into_shape_with_order((width + 1, self.classes()))
            .expect("parameters of the problem's shape");
        let (weights, intercepts) = all.split_at(Axis(0), width);
        (weights, intercepts)
    }

    /// `log softmax(X · W + b)`: [examples, classes].
    fn log_probabilities(&self, params: &Array1<f64>) -> Array2<f64> {
        let (weights, intercepts) = self.split(params);
        let mut scores = logits(self.features, &weights, &intercepts.row(0).to_owned());
        for mut row in scores.rows_mut() {
            let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
            let log_sum = max + row.mapv(|v| (v - max).exp()).sum().ln();
            row.mapv_inplace(|v| v - log_sum);
        }
        scores
    }
}

/// `X · W + b`: [examples, classes].
fn logits(
    features: &CsMat<f64>,
    weights: &ArrayView2<f64>,
    intercepts: &Array1<f64>,
) -> Array2<f64> {
    let mut scores = Array2::zeros((features.rows(), weights.ncols()));
    for (mut out, row) in scores.rows_mut().into_iter().zip(features.outer_iterator()) {
        out.assign(intercepts);
        for (column, &value) in row.iter() {
            out.scaled_add(value, &weights.row(column));
        }
    }
    scores
}

impl CostFunction for Problem<'_> {
    type Param = Array1<f64>;
    type Output = f64;

    fn cost(&self, params: &Array1<f64>) -> Result<f64, argmin::core::Error> {
        let log_probabilities = self.log_probabilities(params);
        let (weights, _) = self.split(params);
        let likelihood = (&log_probabilities * &self.targets).sum();
        Ok(-likelihood + 0.5 * self.alpha * weights.iter().map(|w| w * w).sum::<f64>())
    }
}

impl Gradient for Problem<'_> {
    type Param = Array1<f64>;
    type Gradient = Array1<f64>;

    fn gradient(&self, params: &Array1<f64>) -> Result<Array1<f64>, argmin::core::Error> {
        // softmax(H) - Y
        let difference = self.log_probabilities(params).mapv_into(f64::exp) - &self.targets;
        let (weights, _) = self.split(params);
        let width = self.features.cols();
        let mut gradient = Array2::zeros((width + 1, self.classes()));
        {
            let mut weight_gradient = gradient.slice_mut(s![..width, ..]);
            // Xᵀ · (softmax(H) - Y), a row of X at a time.
            for (row, difference) in self.features.outer_iterator().zip(difference.rows()) {
                for (column, &value) in row.iter() {
                    weight_gradient
                        .row_mut(column)
                        .scaled_add(value, &difference);
                }
            }
            weight_gradient.scaled_add(self.alpha, &weights);
        }
        gradient
            .row_mut(width)
            .assign(&difference.sum_axis(Axis(0)));
        Ok(Array1::from_iter(gradient))
    }
}

/// Fits the regression of class indices `labels` (each in `0..classes`) on
/// `features`: the weights `[width, classes]` and intercepts `[classes]`,
/// columns in class-index order.
pub fn fit(
    features: &CsMat<f64>,
    labels: &[usize],
    classes: usize,
    alpha: f64,
    max_iterations: u64,
) -> Result<(Array2<f64>, Array1<f64>), String> {
    if features.rows() != labels.len() || labels.is_empty() {
        return Err(format!(
            "{} feature rows for {} labels",
            features.rows(),
            labels.len()
        ));
    }
    if let Some(&label) = labels.iter().find(|&&l| l >= classes) {
        return Err(format!("label {label} of {classes} classes"));
    }
    if !alpha.is_finite() || alpha < 0.0 {
        return Err(format!(
            "the L2 penalty must be finite and not negative, got {alpha}"
        ));
    }
    let mut targets = Array2::zeros((labels.len(), classes));
    for (row, &label) in labels.iter().enumerate() {
        targets[[row, label]] = 1.0;
    }
    let problem = Problem {
        features,
        targets,
        alpha,
    };
    let width = features.cols();
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), MEMORY)
        .with_tolerance_grad(GRADIENT_TOLERANCE)
        .map_err(|e| e.to_string())?;
    let result = Executor::new(problem, solver)
        .configure(|state| {
            state
                .param(Array1::zeros((width + 1) * classes))
                .max_iters(max_iterations)
        })
        .run()
        .map_err(|e| format!("logistic regression: {e}"))?;
    let params = result
        .state()
        .get_best_param()
        .or_else(|| result.state().get_param())
        .cloned()
        .ok_or("logistic regression: no parameters")?;
    let all = params
        .into_shape_with_order((width + 1, classes))
        .map_err(|e| e.to_string())?;
    Ok((
        all.slice(s![..width, ..]).to_owned(),
        all.row(width).to_owned(),
    ))
}

/// Class probabilities `softmax(X · W + b)`: [examples, classes].
pub fn probabilities(
    features: &CsMat<f64>,
    weights: &Array2<f64>,
    intercepts: &Array1<f64>,
) -> Array2<f64> {
    let mut scores = logits(features, &weights.view(), intercepts);
    for mut row in scores.rows_mut() {
        let max = row.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use linfa::dataset::Dataset;
    use linfa::traits::Fit;
    use linfa_logistic::MultiLogisticRegression;

    #[test]
    fn finds_linfas_solution_on_sparse_rows() {
        // Three classes on six features, each row a few non-zeros.
        let dense = Array2::from_shape_fn((60, 6), |(r, c)| {
            let class = r % 3;
            if c == class * 2 || (c + r) % 5 == 0 {
                1.0 + (r as f64 * 0.37 + c as f64).sin().abs()
            } else {
                0.0
            }
        });
        let labels: Vec<usize> = (0..60).map(|r| r % 3).collect();
        let sparse = CsMat::csr_from_dense(dense.view(), 0.0);
        let (weights, intercepts) = fit(&sparse, &labels, 3, 1e-2, 200).unwrap();
        let linfa = MultiLogisticRegression::default()
            .alpha(1e-2)
            .max_iterations(200)
            .fit(&Dataset::new(dense.clone(), Array1::from(labels.clone())))
            .unwrap();
        let ours = probabilities(&sparse, &weights, &intercepts);
        let theirs = linfa.predict_probabilities(&dense);
        for (a, b) in ours.iter().zip(theirs.iter()) {
            assert!((a - b).abs() < 1e-3, "{a} vs {b}");
        }
        assert!(fit(&sparse, &labels, 2, 1e-2, 10).is_err());
    }
}
