//! Learning what normal looks like: from series of raw inputs to a
//! calibrated [`ScoringModel`]. Used by `train` (one bundle from a file) and
//! by online mode (each key from its own warm-up, then periodic refits).
//!
//! 1. leave out rows beyond each series' fence (absurd readings), and scale
//!    each series by its own statistics;
//! 2. train the forecaster and the autoencoder on spans of normal points;
//! 3. export both to kernels;
//! 4. replay every series through the streaming path to calibrate the error
//!    distributions and the threshold, and to leave each key's state ready.

use burn::module::Module;
use burn::tensor::Device;
use ndarray::{Array2, ArrayView2, Axis};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::autoencoder::Autoencoder;
use crate::data::{self, Lane, Span};
use crate::export::kernel_model;
use crate::fit::{
    Diverged, Progress, Trained, TrainingSummary, fit, init_seeded, mean_loss, scalar,
    shuffled_epoch, training_device,
};
use crate::forecaster::Forecaster;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::config::TrainingConfig;
use tidewatch_stream::detect::DetectionState;
use tidewatch_stream::detect::score::ErrorTail;
use tidewatch_stream::detect::threshold::Threshold;
use tidewatch_stream::learner::{LearnError, Series};
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::pipeline::{BatchBuffers, Evidence, advance_batch};
use tidewatch_stream::state::scaler::{Fence, ScalerStats};
use tidewatch_stream::state::store::KeyState;

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

    let unbounded = config.schema.unbounded_inputs();
    let fences: Vec<Fence> = series.iter().map(|s| s.fence(&unbounded)).collect();
    let series: Vec<Series> = series
        .iter()
        .zip(&fences)
        .map(|(s, fence)| s.within(fence))
        .collect();
    let series = series.as_slice();
    let keyed = config.schema.keyed_inputs();
    let prior = ScalerStats::fit(series.iter().flat_map(Series::usable_rows), inputs)
        .scaled_like_sources(&keyed);
    let per_series: Vec<ScalerStats> = series
        .iter()
        .map(|s| ScalerStats::fit(s.usable_rows(), inputs).scaled_like_sources(&keyed))
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
    let usable: Vec<&[bool]> = series.iter().map(|s| s.usable.as_slice()).collect();
    let boundaries: Vec<usize> = series
        .iter()
        .map(|s| validation_boundary(s.rows.nrows(), training.validation_fraction))
        .collect();
    let device = training_device();
    let eval_device = Device::flex();

    let forecaster = match warm_start {
        Some(m) => m.forecaster.clone().fork(&device).train(),
        None => init_seeded(training.seed, &device, |d| {
            Forecaster::init(&config.model.forecaster, inputs, d)
        }),
    };
    let forecaster = train_forecaster(
        forecaster,
        &views,
        &usable,
        &boundaries,
        config,
        &training,
        progress,
    )?
    .ok_or(LearnError::TooShort {
        needed: window_len + 1,
        points,
        series: series.len(),
    })?;

    let (mut train_spans, mut validation_spans) = (Vec::new(), Vec::new());
    for (i, s) in series.iter().enumerate() {
        let (t, v) = data::split_spans(&s.usable, window_len, training.validation_fraction);
        train_spans.extend(t.into_iter().map(|end| Span { series: i, end }));
        validation_spans.extend(v.into_iter().map(|end| Span { series: i, end }));
    }
    if train_spans.is_empty() {
        return Err(too_short);
    }
    let autoencoder = match warm_start {
        Some(m) => m.autoencoder.clone().fork(&device).train(),
        None => init_seeded(training.seed.wrapping_add(1), &device, |d| {
            Autoencoder::init(
                &config.model.autoencoder,
                window_len,
                &config.schema.measured_inputs(),
                d,
            )
        }),
    };
    let windows = |spans: &[Span], d: &Device| data::windows(&views, spans, window_len, d);
    let autoencoder = fit(
        autoencoder,
        &training,
        progress,
        "autoencoder",
        |model, stepper, rng| {
            shuffled_epoch(
                model,
                &mut train_spans,
                &training,
                stepper,
                rng,
                |m, batch| m.loss(windows(batch, &device)),
            )
        },
        |model| {
            mean_loss(&validation_spans, training.batch_size * 8, |batch| {
                scalar(&model.loss(windows(batch, &eval_device)))
            })
        },
    )?;

    let kernels = kernel_model(&forecaster.model, &autoencoder.model, window_len);
    let mut model = ScoringModel {
        kernels,
        scaler: prior,
        error_tails: Vec::new(),
        threshold: Threshold::Fixed { value: 1.0 },
    };
    let calibration = calibrate(&mut model, series, &fences, &per_series, config)?;
    tracing::debug!(
        points,
        forecaster_epochs = forecaster.summary.epochs_run,
        forecaster_secs = forecaster.summary.seconds,
        autoencoder_epochs = autoencoder.summary.epochs_run,
        autoencoder_secs = autoencoder.summary.seconds,
        threshold = model.threshold.value(),
        "learned"
    );
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

impl From<Diverged> for LearnError {
    fn from(diverged: Diverged) -> LearnError {
        LearnError::Diverged {
            model: diverged.label,
            epoch: diverged.epoch,
            loss: diverged.loss,
        }
    }
}

/// Index of the first point of a series' validation part.
fn validation_boundary(points: usize, validation_fraction: f64) -> usize {
    points - (points as f64 * validation_fraction).round() as usize
}

/// Trains the forecaster the way it runs in the stream: state carried
/// across lanes of the training part of each series, chunk by chunk
/// (truncated backpropagation through time); validated the same way on the
/// validation part. `Ok(None)` when no series is long enough for one lane.
fn train_forecaster(
    forecaster: Forecaster,
    views: &[ArrayView2<f32>],
    usable: &[&[bool]],
    boundaries: &[usize],
    config: &StreamConfig,
    training: &TrainingConfig,
    progress: Progress,
) -> Result<Option<Trained<Forecaster>>, Diverged> {
    let chunk = config.model.window_len;
    let skip = config.model.burn_in_steps;
    let train_ranges: Vec<(usize, usize, usize)> = boundaries
        .iter()
        .enumerate()
        .map(|(i, &b)| (i, 0, b))
        .collect();
    let validation_ranges: Vec<(usize, usize, usize)> = boundaries
        .iter()
        .zip(views)
        .enumerate()
        .map(|(i, (&b, v))| (i, b, v.nrows()))
        .collect();
    let lane_len = lane_length(&train_ranges, chunk, training.batch_size);
    if data::lanes(&train_ranges, lane_len, 0).is_empty() {
        return Ok(None);
    }
    let device = training_device();
    let eval_device = Device::flex();
    // One lane per series over its whole validation part.
    let validation_lanes: Vec<Lane> = validation_ranges
        .iter()
        .flat_map(|&(i, start, end)| {
            let len = (end - start).saturating_sub(1) / chunk * chunk;
            data::lanes(&[(i, start, end)], len.max(1), 0)
                .into_iter()
                .take(usize::from(len > 0))
        })
        .collect();
    fit(
        forecaster,
        training,
        progress,
        "forecaster",
        |mut model, stepper, rng| {
            // Short series give few chunks per pass: make several passes,
            // each from a new offset, so an epoch is worth its name.
            let chunks_per_pass = lane_len / chunk;
            let passes = MIN_STEPS_PER_EPOCH.div_ceil(chunks_per_pass).max(1);
            let (mut total, mut steps) = (0.0, 0);
            for _ in 0..passes {
                let offset = rng.random_range(0..chunk);
                let lanes = data::lanes(&train_ranges, lane_len, offset);
                if lanes.is_empty() {
                    continue;
                }
                let mut state = None;
                for from in (0..lane_len).step_by(chunk) {
                    let (x, y, mask) =
                        data::lane_chunk(views, usable, &lanes, from, chunk, skip, &device);
                    let (loss, next) = model.loss(x, y, mask, state);
                    state = Some(next.detach());
                    let (stepped, value) = stepper.step(model, loss);
                    model = stepped;
                    total += value;
                    steps += 1;
                }
            }
            (model, total / f64::from(steps.max(1)))
        },
        |model| {
            if validation_lanes.is_empty() {
                return None;
            }
            let len = validation_lanes.iter().map(|l| l.len).min().unwrap_or(0);
            let mut state = None;
            let (mut total, mut steps) = (0.0, 0);
            for from in (0..len).step_by(chunk) {
                let (x, y, mask) = data::lane_chunk(
                    views,
                    usable,
                    &validation_lanes,
                    from,
                    chunk,
                    skip,
                    &eval_device,
                );
                let (loss, next) = model.loss(x, y, mask, state);
                state = Some(next);
                total += scalar(&loss);
                steps += 1;
            }
            Some(total / f64::from(steps.max(1)))
        },
    )
    .map(Some)
}

/// Optimiser steps an epoch of the forecaster takes at least.
const MIN_STEPS_PER_EPOCH: usize = 16;
/// Chunks a lane holds at least, so the state runs long enough to matter.
const MIN_CHUNKS_PER_LANE: usize = 4;

/// Lane length: the training points shared out over about `batch_size`
/// lanes, in whole chunks, at least [`MIN_CHUNKS_PER_LANE`] of them, but
/// no longer than the longest range allows.
fn lane_length(ranges: &[(usize, usize, usize)], chunk: usize, batch_size: usize) -> usize {
    let total: usize = ranges.iter().map(|&(_, start, end)| end - start).sum();
    let longest = ranges
        .iter()
        .map(|&(_, start, end)| end - start)
        .max()
        .unwrap_or(0);
    let per_lane = (total / batch_size.max(1)).max(MIN_CHUNKS_PER_LANE * chunk);
    let fitting = longest.saturating_sub(chunk).max(chunk).min(per_lane);
    (fitting / chunk).max(1) * chunk
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

/// Scales the training part's errors (marked in `in_training_part`) by
/// the ratio of the mean validation error to the mean training error, when
/// above 1 and both parts have errors.
fn scale_training_errors_to_validation(errors: &mut [f64], in_training_part: &[bool]) {
    let mean = |training: bool| {
        let (sum, count) = errors
            .iter()
            .zip(in_training_part)
            .filter(|(_, t)| **t == training)
            .fold((0.0, 0usize), |(sum, count), (e, _)| (sum + e, count + 1));
        (count > 0).then(|| sum / count as f64)
    };
    let (Some(training), Some(validation)) = (mean(true), mean(false)) else {
        return;
    };
    if training > 0.0 && validation > training {
        let gap = validation / training;
        for (e, _) in errors.iter_mut().zip(in_training_part).filter(|(_, t)| **t) {
            *e *= gap;
        }
    }
}

/// Fewest validation scores a threshold is calibrated on alone.
const MIN_CALIBRATION_SCORES: usize = 100;

/// Replays each series through the streaming path with the new model,
/// fits each detector's error tail to the errors of normal points (pooled
/// over series; not those of the window after a reading beyond its
/// series' fence, which the reading disturbs), calibrates the threshold on the scores of the validation
/// part (all points when it holds fewer than [`MIN_CALIBRATION_SCORES`]),
/// and leaves each series' key state at its end, ready to go on.
///
/// The tails see the training part's errors too, for their number (fitting
/// to the validation part alone lost 6 NAB points and 0.05 SKAB F1), but
/// those are smaller than live ones. With at least
/// [`MIN_CALIBRATION_SCORES`] validation points to measure the gap, each
/// tail's training-part errors are scaled up by the ratio of its mean
/// validation error to its mean training error (never down), so a key's
/// first live errors are not judged by the errors of the points it was
/// fitted to: on the development corpus, false positives 218 -> 166 for the
/// same score.
fn calibrate(
    model: &mut ScoringModel,
    series: &[Series],
    fences: &[Fence],
    per_series: &[ScalerStats],
    config: &StreamConfig,
) -> Result<Calibration, LearnError> {
    let mut buffers = BatchBuffers::default();
    let evidence = Evidence::of(&config.schema);
    let tails = evidence.tails();
    let mut states = Vec::with_capacity(series.len());
    // Per-feature errors of normal points, `tails` values each.
    let mut normal_errors: Vec<Vec<f64>> = Vec::new();
    // Whether each of `normal_errors` is from the training part.
    let mut in_training_part: Vec<bool> = Vec::new();
    let mut validation_errors: Vec<Vec<f64>> = Vec::new();
    let (mut forecast_sum, mut reconstruction_sum, mut validation_points) = (0.0, 0.0, 0usize);
    for ((s, fence), stats) in series.iter().zip(fences).zip(per_series) {
        let mut state = model.new_key_state(config, Some(stats));
        let validation_from =
            validation_boundary(s.rows.nrows(), config.training.validation_fraction);
        // An absurd reading disturbs the errors of the window after it too.
        let mut undisturbed_from = 0;
        for (t, row) in s.rows.axis_iter(Axis(0)).enumerate() {
            if !fence.holds(row.to_slice().expect("standard layout")) {
                undisturbed_from = t + config.model.window_len;
            }
            let row = row.insert_axis(Axis(0));
            let errors = advance_batch(
                &model.kernels,
                std::slice::from_mut(&mut state),
                row,
                &evidence,
                config.state.input_clip,
                &mut buffers,
            );
            let Some(errors) = errors[0] else { continue };
            if s.usable[t] && t >= undisturbed_from {
                let by_feature = buffers.feature_errors[..tails].to_vec();
                normal_errors.push(by_feature.clone());
                in_training_part.push(t < validation_from);
                if t >= validation_from {
                    validation_errors.push(by_feature);
                    forecast_sum += errors[0];
                    reconstruction_sum += errors[1];
                    validation_points += 1;
                }
            }
        }
        states.push(state);
    }
    let measured_gap = validation_errors.len() >= MIN_CALIBRATION_SCORES;
    model.error_tails = (0..tails)
        .map(|i| {
            let mut errors: Vec<f64> = normal_errors.iter().map(|e| e[i]).collect();
            if measured_gap {
                scale_training_errors_to_validation(&mut errors, &in_training_part);
            }
            ErrorTail::fit(&errors, &config.detect.score)
        })
        .collect();
    let fitted = DetectionState::new(model.error_tails.clone(), Threshold::Fixed { value: 1.0 });
    let calibration_errors = if validation_errors.len() >= MIN_CALIBRATION_SCORES {
        &validation_errors
    } else {
        &normal_errors
    };
    let scores: Vec<f64> = calibration_errors.iter().map(|e| fitted.score(e)).collect();
    model.threshold = config.detect.threshold.calibrate(&scores)?;
    for state in &mut states {
        state.detection = DetectionState::new(model.error_tails.clone(), model.threshold.clone());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_errors_are_scaled_up_to_the_validation_level_never_down() {
        let in_training_part = [true, true, false, false];
        let mut errors = [1.0, 3.0, 4.0, 4.0];
        scale_training_errors_to_validation(&mut errors, &in_training_part);
        assert_eq!(errors, [2.0, 6.0, 4.0, 4.0]);
        let mut errors = [4.0, 4.0, 1.0, 3.0];
        scale_training_errors_to_validation(&mut errors, &in_training_part);
        assert_eq!(errors, [4.0, 4.0, 1.0, 3.0]);
        let mut errors = [1.0, 3.0];
        scale_training_errors_to_validation(&mut errors, &[true, true]);
        assert_eq!(errors, [1.0, 3.0]);
    }
}
