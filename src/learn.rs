//! Learning what normal looks like: from series of raw inputs to a
//! calibrated [`ScoringModel`]. Used by `train` (one bundle from a file) and
//! by online mode (each key from its own warm-up, then periodic refits).
//!
//! 1. scale each series by its own statistics;
//! 2. train the forecaster and the autoencoder on spans of normal points;
//! 3. export both to kernels;
//! 4. replay every series through the streaming path to calibrate the error
//!    distributions and the threshold, and to leave each key's state ready.

use burn::module::Module;
use ndarray::{Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::config::StreamConfig;
use crate::detect::score::ErrorStats;
use crate::detect::threshold::Threshold;
use crate::detect::threshold::ThresholdError;
use crate::nn::autoencoder::Autoencoder;
use crate::nn::data::{self, Span};
use crate::nn::export::kernel_model;
use crate::nn::forecaster::Forecaster;
use crate::nn::training::{
    Progress, TrainingConfig, TrainingSummary, fit, init_seeded, training_device,
};
use crate::pipeline::{BatchBuffers, ScoringModel, advance_batch};
use crate::state::scaler::ScalerStats;
use crate::state::store::KeyState;

/// One key's raw inputs (per-key slots filled) and which rows are normal.
#[derive(Debug, Clone)]
pub struct Series {
    /// [points, inputs]
    pub rows: Array2<f32>,
    /// False for rows judged anomalous: never learned from.
    pub usable: Vec<bool>,
}

/// The models in burn form, to continue training from at the next refit.
#[derive(Debug, Clone)]
pub struct Modules {
    pub forecaster: Forecaster,
    pub autoencoder: Autoencoder,
}

/// A trained, calibrated model with everything learned on the way.
#[derive(Debug)]
pub struct Learned {
    pub model: ScoringModel,
    pub modules: Modules,
    /// Each series' key state after replaying it, ready to score what follows.
    pub states: Vec<KeyState>,
    pub summary: LearnSummary,
}

/// Recorded in the bundle manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnSummary {
    pub series: usize,
    pub points: usize,
    pub forecaster: TrainingSummary,
    pub autoencoder: TrainingSummary,
    /// Mean per-detector RMSE (scaled units) over the validation part of
    /// each series, replayed through the kernels.
    pub validation_rmse: ValidationRmse,
    pub calibration_scores: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValidationRmse {
    pub forecast: f64,
    pub reconstruction: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error(
        "not enough normal data to train: no run of {needed} usable points (got {points} points in {series} series)"
    )]
    TooShort {
        needed: usize,
        points: usize,
        series: usize,
    },
    #[error("calibration: {0}")]
    Threshold(#[from] ThresholdError),
}

/// Trains and calibrates a model on `series`, continuing from `warm_start`
/// when given (refits), for at most `max_epochs`.
pub fn learn(
    series: &[Series],
    config: &StreamConfig,
    warm_start: Option<&Modules>,
    max_epochs: usize,
    progress: Progress,
) -> Result<Learned, LearnError> {
    let window_len = config.model.window_len;
    let inputs = config.schema.input_width();
    let points: usize = series.iter().map(|s| s.rows.nrows()).sum();
    let too_short = LearnError::TooShort {
        needed: window_len,
        points,
        series: series.len(),
    };

    let prior = ScalerStats::fit(usable_rows(series), inputs);
    let per_series: Vec<ScalerStats> = series
        .iter()
        .map(|s| ScalerStats::fit(usable_rows(std::slice::from_ref(s)), inputs))
        .collect();
    let scaled: Vec<Array2<f32>> = series
        .iter()
        .zip(&per_series)
        .map(|(s, stats)| scale(s.rows.view(), stats, config.state.input_clip))
        .collect();
    let views: Vec<ArrayView2<f32>> = scaled.iter().map(Array2::view).collect();

    let training = TrainingConfig {
        max_epochs,
        ..config.training.clone()
    };
    let (mut train, mut validation) = (Vec::new(), Vec::new());
    for (i, s) in series.iter().enumerate() {
        let (t, v) = data::split_spans(&s.usable, window_len, training.validation_fraction);
        train.extend(t.into_iter().map(|end| Span { series: i, end }));
        validation.extend(v.into_iter().map(|end| Span { series: i, end }));
    }
    if train.is_empty() {
        return Err(too_short);
    }

    let device = training_device();
    let forecaster = match warm_start {
        Some(m) => m.forecaster.clone().fork(&device).train(),
        None => init_seeded(training.seed, &device, |d| {
            config.model.forecaster.init(inputs, d)
        }),
    };
    let burn_in = config.model.burn_in_steps;
    let forecaster = fit(
        forecaster,
        &train,
        &validation,
        &training,
        progress,
        "forecaster",
        |m, spans, d| m.loss(data::sequences(&views, spans, window_len, d), burn_in),
    );
    let autoencoder = match warm_start {
        Some(m) => m.autoencoder.clone().fork(&device).train(),
        None => init_seeded(training.seed.wrapping_add(1), &device, |d| {
            config.model.autoencoder.init(window_len * inputs, d)
        }),
    };
    let autoencoder = fit(
        autoencoder,
        &train,
        &validation,
        &training,
        progress,
        "autoencoder",
        |m, spans, d| m.loss(data::windows(&views, spans, window_len, d)),
    );

    let kernels = kernel_model(&forecaster.model, &autoencoder.model, window_len);
    let mut model = ScoringModel {
        kernels,
        scaler: prior,
        error_priors: [ErrorStats::default(); 2],
        threshold: Threshold::Fixed { value: 1.0 },
    };
    let calibration = calibrate(&mut model, series, &per_series, config)?;
    let summary = LearnSummary {
        series: series.len(),
        points,
        forecaster: forecaster.summary,
        autoencoder: autoencoder.summary,
        validation_rmse: calibration.validation_rmse,
        calibration_scores: calibration.scores,
    };
    Ok(Learned {
        model,
        modules: Modules {
            forecaster: forecaster.model,
            autoencoder: autoencoder.model,
        },
        states: calibration.states,
        summary,
    })
}

fn usable_rows(series: &[Series]) -> impl Iterator<Item = &[f32]> {
    series.iter().flat_map(|s| {
        s.rows
            .axis_iter(Axis(0))
            .zip(&s.usable)
            .filter(|(_, ok)| **ok)
            .map(|(row, _)| row.to_slice().expect("standard layout"))
    })
}

/// rows [points, inputs] -> scaled, clipped, same shape
fn scale(rows: ArrayView2<f32>, stats: &ScalerStats, clip: f32) -> Array2<f32> {
    let mut scaled = rows.to_owned();
    for mut row in scaled.axis_iter_mut(Axis(0)) {
        for (i, v) in row.iter_mut().enumerate() {
            *v = ((*v - stats.mean[i]) / stats.std[i]).clamp(-clip, clip);
        }
    }
    scaled
}

struct Calibration {
    states: Vec<KeyState>,
    scores: usize,
    validation_rmse: ValidationRmse,
}

/// Replays each series through the streaming path with the new model:
/// learns the long-run error distributions (pooled into the model's priors),
/// sets the threshold from the scores of normal points, and leaves each
/// series' key state at its end.
fn calibrate(
    model: &mut ScoringModel,
    series: &[Series],
    per_series: &[ScalerStats],
    config: &StreamConfig,
) -> Result<Calibration, LearnError> {
    let mut buffers = BatchBuffers::default();
    let mut states = Vec::with_capacity(series.len());
    let mut scores = Vec::new();
    let (mut forecast_sum, mut reconstruction_sum, mut validation_points) = (0.0, 0.0, 0usize);
    for (s, stats) in series.iter().zip(per_series) {
        let mut state = model.new_key_state(config, Some(stats));
        let validation_from =
            s.rows.nrows() - (s.rows.nrows() as f64 * config.training.validation_fraction) as usize;
        for (t, row) in s.rows.axis_iter(Axis(0)).enumerate() {
            let row = row.insert_axis(Axis(0));
            let errors = advance_batch(
                &model.kernels,
                std::slice::from_mut(&mut state),
                row,
                config.state.input_clip,
                &mut buffers,
            );
            let Some(errors) = errors[0] else { continue };
            let score = state.detection.score(&errors, &config.detect);
            if s.usable[t] {
                state.detection.learn(score, &config.detect);
                scores.push(score);
                if t >= validation_from {
                    forecast_sum += errors[0];
                    reconstruction_sum += errors[1];
                    validation_points += 1;
                }
            }
        }
        states.push(state);
    }
    let priors = pool(states.iter().map(|s| s.detection.error_stats()));
    model.error_priors = priors;
    model.threshold = config.detect.threshold.calibrate(&scores)?;
    for state in &mut states {
        state.detection.set_threshold(model.threshold.clone());
    }
    let n = validation_points.max(1) as f64;
    Ok(Calibration {
        states,
        scores: scores.len(),
        validation_rmse: ValidationRmse {
            forecast: forecast_sum / n,
            reconstruction: reconstruction_sum / n,
        },
    })
}

/// Pools per-key error distributions, weighting each by its count.
fn pool(stats: impl Iterator<Item = [ErrorStats; 2]>) -> [ErrorStats; 2] {
    let all: Vec<[ErrorStats; 2]> = stats.collect();
    [0, 1].map(|d| {
        let count: u64 = all.iter().map(|s| s[d].count).sum();
        if count == 0 {
            return ErrorStats::default();
        }
        let weight = |s: &ErrorStats| s.count as f64 / count as f64;
        let mean: f64 = all.iter().map(|s| weight(&s[d]) * s[d].mean).sum();
        let variance: f64 = all
            .iter()
            .map(|s| weight(&s[d]) * (s[d].variance + (s[d].mean - mean).powi(2)))
            .sum();
        ErrorStats {
            mean,
            variance,
            count,
        }
    })
}
