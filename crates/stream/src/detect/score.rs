//! Errors -> anomaly score in [0, 1], comparable across streams.
//!
//! Each detector's errors get a peaks-over-threshold tail model per key
//! (Siffer et al., KDD 2017): errors above `u`, a high quantile of the key's
//! normal errors, are fitted with a generalised Pareto distribution, so an
//! error `e > u` has tail probability `rate(e > u) * (1 + γ (e - u) / σ)^(-1/γ)`.
//! Errors are heavy-tailed (a forecaster misses every sharp but normal
//! transition), which a Gaussian on the errors, as in Numenta's likelihood,
//! badly underestimates; the fitted tail does not.
//!
//! The detectors' tail probabilities are combined with Fisher's method and
//! the score is `1 - p^(1/10)`: 0.5 is a one-in-a-thousand event, 0.6 one
//! in ten thousand, 0.9 one in 10^10, and the most extreme events still rank
//! above merely rare ones (no saturation).
//!
//! Only events judged normal, and scoring below `learn_below_score`, are
//! learned from, so a long anomaly never teaches the model that it is normal. Memory per key and detector is
//! bounded by `max_peaks`.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::threshold::quantile_of;
use crate::codec::{Decode, DecodeError, Encode};

/// How errors become scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Quantile of normal errors above which the tail is modelled.
    #[serde(default = "default_tail_quantile")]
    pub tail_quantile: f64,
    /// Most recent excesses over the tail threshold kept for the fit.
    #[serde(default = "default_max_peaks")]
    pub max_peaks: usize,
    /// Events over which the rate of tail events is averaged.
    #[serde(default = "default_history_events")]
    pub history_events: u64,
    /// Events scoring at or above this are never learned from, even when
    /// they raise no flag: a developing anomaly must not teach the tails
    /// that it is normal before it crosses the threshold (SPOT likewise
    /// keeps only values below its alarm level as peaks).
    #[serde(default = "default_learn_below_score")]
    pub learn_below_score: f64,
    /// A key none of whose last this many events was learned from takes
    /// its stream's new behaviour as normal and learns from every event
    /// until one is normal again, so a level that moved for good stops
    /// being anomalous (0: never, for benchmarks that judge every event of
    /// a long anomaly).
    #[serde(default = "default_relearn_after_events")]
    pub relearn_after_events: u32,
}

fn default_tail_quantile() -> f64 {
    0.98
}
fn default_max_peaks() -> usize {
    200
}
fn default_history_events() -> u64 {
    4000
}
fn default_learn_below_score() -> f64 {
    0.5
}
fn default_relearn_after_events() -> u32 {
    0
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            tail_quantile: default_tail_quantile(),
            max_peaks: default_max_peaks(),
            history_events: default_history_events(),
            learn_below_score: default_learn_below_score(),
            relearn_after_events: default_relearn_after_events(),
        }
    }
}

/// One detector's error tail for one key, as saved in a bundle to start
/// new keys from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorTail {
    /// Tail threshold `u`.
    pub threshold: f64,
    /// Share of normal errors above `u`.
    pub rate: f64,
    /// Recent excesses over `u`, oldest first.
    pub peaks: VecDeque<f32>,
    /// Normal events learned from (caps the averaging weight).
    pub events: u64,
    /// Fitted shape γ (kept in [0, 0.45]: exponential or heavier tails).
    pub shape: f64,
    /// Fitted scale σ.
    pub scale: f64,
    /// Peaks added since the last fit.
    #[serde(default)]
    pub unfitted_peaks: u32,
}

/// New peaks between refits of a tail.
const REFIT_EVERY_PEAKS: u32 = 8;

/// Fewest calibration peaks a tail is fitted to.
const MIN_PEAKS: usize = 10;

/// Scale of a tail whose calibration errors never varied, in standard
/// deviations of the scaled inputs: a twentieth of one.
const DEGENERATE_TAIL_SCALE: f64 = 0.05;

/// Shape bounds: a fitted bounded tail (γ < 0) would make anything past
/// its end point impossible, and γ ≥ 1/2 has no variance to fit moments to.
const MAX_SHAPE: f64 = 0.45;

impl ErrorTail {
    /// A tail fitted to calibration errors (normal events only). With few
    /// errors the tail starts lower, so that at least [`MIN_PEAKS`] of them
    /// are peaks to fit.
    pub fn fit(errors: &[f64], config: &ScoreConfig) -> ErrorTail {
        let quantile = config
            .tail_quantile
            .min(1.0 - MIN_PEAKS as f64 / errors.len().max(1) as f64)
            .max(0.5);
        let threshold = quantile_of(errors, quantile).unwrap_or(0.0);
        let above: Vec<f32> = errors
            .iter()
            .filter(|&&e| e > threshold)
            .map(|&e| (e - threshold) as f32)
            .collect();
        let skip = above.len().saturating_sub(config.max_peaks);
        let mut tail = ErrorTail {
            threshold,
            rate: if errors.is_empty() {
                0.0
            } else {
                above.len() as f64 / errors.len() as f64
            },
            peaks: above.into_iter().skip(skip).collect(),
            events: errors.len() as u64,
            shape: 0.0,
            scale: 0.0,
            unfitted_peaks: 0,
        };
        tail.refit();
        tail
    }

    /// This tail, weighing as at most `events` events when it learns, so
    /// that a key's own errors soon outweigh a tail fitted elsewhere.
    pub fn weighted_as(&self, events: u64) -> ErrorTail {
        ErrorTail {
            events: self.events.min(events),
            ..self.clone()
        }
    }

    /// The first value out of its range, for a tail read from a manifest.
    pub fn check(&self) -> Result<(), String> {
        let ranges = [
            (
                "threshold",
                self.threshold,
                self.threshold >= 0.0,
                "[0, inf)",
            ),
            (
                "rate",
                self.rate,
                (0.0..=1.0).contains(&self.rate),
                "[0, 1]",
            ),
            (
                "shape",
                self.shape,
                (0.0..=MAX_SHAPE).contains(&self.shape),
                "[0, 0.45]",
            ),
            ("scale", self.scale, self.scale >= 0.0, "[0, inf)"),
        ];
        for (name, value, in_range, range) in ranges {
            if !in_range || !value.is_finite() {
                return Err(format!("{name} must be in {range}, got {value}"));
            }
        }
        match self.peaks.iter().find(|p| !(p.is_finite() && **p >= 0.0)) {
            Some(peak) => Err(format!("peaks must be finite and >= 0, got {peak}")),
            None => Ok(()),
        }
    }

    /// Tail probability of `error`: in the body (at or below the tail
    /// threshold) it falls linearly from 1 at error 0 to the tail rate at
    /// `u`; above it follows the fitted generalised Pareto distribution.
    ///
    /// A tail fitted to errors that never varied (a constant signal) has no
    /// scale: it takes [`DEGENERATE_TAIL_SCALE`], and its body reaches that
    /// far past `u`, so that a numerical wiggle stays normal (and is learned
    /// from) while any real change is evidence, the more the further.
    pub fn probability(&self, error: f64) -> Probability {
        let rate = self.rate.max(1.0 / (self.events.max(1) as f64 + 1.0));
        let (threshold, scale) = if self.scale > 0.0 {
            (self.threshold, self.scale)
        } else {
            (
                self.threshold + DEGENERATE_TAIL_SCALE,
                DEGENERATE_TAIL_SCALE,
            )
        };
        if error <= threshold {
            let reach = if threshold > 0.0 {
                (error / threshold).min(1.0)
            } else {
                1.0
            };
            return Probability::Body(1.0 - reach * (1.0 - rate));
        }
        let z = (error - threshold) / scale;
        let ln_survival = if self.shape < 1e-9 {
            -z
        } else {
            -(self.shape * z).ln_1p() / self.shape
        };
        Probability::Tail {
            ln: rate.ln() + ln_survival,
        }
    }

    /// Learns from an error judged normal.
    pub fn learn(&mut self, error: f64, config: &ScoreConfig) {
        self.events += 1;
        let weight = 1.0 / self.events.min(config.history_events.max(1)) as f64;
        let above = error > self.threshold;
        self.rate += weight * (f64::from(u8::from(above)) - self.rate);
        if above {
            if self.peaks.len() >= config.max_peaks.max(1) {
                self.peaks.pop_front();
            }
            self.peaks.push_back((error - self.threshold) as f32);
            self.unfitted_peaks += 1;
            // The fit moves little with one more peak; refitting every few
            // keeps the cost per peak O(1) on average.
            if self.unfitted_peaks >= REFIT_EVERY_PEAKS || self.peaks.len() < 2 * MIN_PEAKS {
                self.refit();
            }
        }
    }

    /// Method-of-moments fit of the generalised Pareto distribution.
    fn refit(&mut self) {
        self.unfitted_peaks = 0;
        let n = self.peaks.len() as f64;
        if n < 2.0 {
            self.shape = 0.0;
            self.scale = self
                .peaks
                .iter()
                .map(|&p| f64::from(p))
                .sum::<f64>()
                .max(0.0);
            return;
        }
        let mean = self.peaks.iter().map(|&p| f64::from(p)).sum::<f64>() / n;
        let var = self
            .peaks
            .iter()
            .map(|&p| (f64::from(p) - mean).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let (shape, scale) = if var > 0.0 {
            let ratio = mean * mean / var;
            (0.5 * (1.0 - ratio), 0.5 * mean * (ratio + 1.0))
        } else {
            (0.0, mean)
        };
        if shape < 0.0 {
            // Exponential tail with the same mean excess.
            self.shape = 0.0;
            self.scale = mean;
        } else {
            self.shape = shape.min(MAX_SHAPE);
            self.scale = scale;
        }
    }
}

/// A tail probability, kept as a plain probability in the body (most
/// events) and as a logarithm in the tail, where it can be tiny. Any tail
/// probability is below any body probability of the same tail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Probability {
    Body(f64),
    Tail { ln: f64 },
}

impl Probability {
    pub fn ln(self) -> f64 {
        match self {
            Probability::Body(p) => p.ln(),
            Probability::Tail { ln } => ln,
        }
    }

    /// The smaller of two probabilities, taking logarithms only when both
    /// are in a tail.
    pub fn min(self, other: Probability) -> Probability {
        match (self, other) {
            (Probability::Body(a), Probability::Body(b)) => Probability::Body(a.min(b)),
            (Probability::Tail { ln: a }, Probability::Tail { ln: b }) => {
                Probability::Tail { ln: a.min(b) }
            }
            (tail @ Probability::Tail { .. }, Probability::Body(_))
            | (Probability::Body(_), tail @ Probability::Tail { .. }) => tail,
        }
    }
}

/// `ln 10`, for turning natural-log probabilities into decades.
const LN_10: f64 = std::f64::consts::LN_10;

/// Fisher's method for two tail probabilities: `X = -2 (ln p1 + ln p2)` is
/// chi-squared with 4 degrees of freedom under normality, whose survival
/// function is `e^(-X/2) (1 + X/2)`.
pub fn fisher_ln_p(ln_p: [f64; 2]) -> f64 {
    let half_x = -(ln_p[0] + ln_p[1]);
    -half_x + half_x.ln_1p()
}

/// `1 - p^(1/10)`, from `ln p`.
pub fn score_of(ln_p: f64) -> f64 {
    let decades = (-ln_p / LN_10).max(0.0);
    1.0 - 10f64.powf(-decades / 10.0)
}

/// `ln p` of a score, the inverse of [`score_of`].
pub fn ln_p_of_score(score: f64) -> f64 {
    10.0 * (1.0 - score).max(f64::MIN_POSITIVE).log10() * LN_10
}

impl Encode for ErrorTail {
    fn encode(&self, out: &mut Vec<u8>) {
        self.threshold.encode(out);
        self.rate.encode(out);
        self.peaks.encode(out);
        self.events.encode(out);
        self.shape.encode(out);
        self.scale.encode(out);
        self.unfitted_peaks.encode(out);
    }
}

impl Decode for ErrorTail {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let tail = ErrorTail {
            threshold: f64::decode(input)?,
            rate: f64::decode(input)?,
            peaks: VecDeque::decode(input)?,
            events: u64::decode(input)?,
            shape: f64::decode(input)?,
            scale: f64::decode(input)?,
            unfitted_peaks: u32::decode(input)?,
        };
        tail.check()
            .map_err(|e| DecodeError::invalid("error tail", e))?;
        Ok(tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exponential(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| -((i as f64 + 0.5) / n as f64).ln())
            .collect()
    }

    #[test]
    fn a_tail_of_errors_that_never_varied_still_grades_errors_past_it() {
        // A constant signal: every calibration error the same, nearly 0.
        let tail = ErrorTail::fit(&[6e-5; 2000], &ScoreConfig::default());
        assert_eq!(tail.scale, 0.0);
        // A numerical wiggle is normal...
        let Probability::Body(p) = tail.probability(3e-3) else {
            panic!("a wiggle reached the tail");
        };
        assert!(p > 0.9, "{p}");
        // ... and a change is evidence, the more the further.
        let (near, far) = (tail.probability(0.5).ln(), tail.probability(20.0).ln());
        assert!(near < (1e-3f64).ln() && far < near - 100.0, "{near} {far}");
    }

    #[test]
    fn tail_matches_an_exponential_distribution() {
        let config = ScoreConfig {
            max_peaks: 1000,
            ..ScoreConfig::default()
        };
        let tail = ErrorTail::fit(&exponential(20_000), &config);
        assert!((tail.threshold - 50f64.ln()).abs() < 0.01, "{tail:?}");
        // P(X > 10) = e^-10
        let ln_p = tail.probability(10.0).ln();
        assert!((ln_p + 10.0).abs() < 0.5, "{ln_p}");
        // below the threshold: probability between the rate and 1
        let ln_p = tail.probability(1.0).ln();
        assert!(ln_p < 0.0 && ln_p > 0.02f64.ln());
    }

    #[test]
    fn learning_tracks_a_rising_tail_rate() {
        let config = ScoreConfig {
            history_events: 100,
            ..ScoreConfig::default()
        };
        let mut tail = ErrorTail::fit(&exponential(1000), &config);
        let before = tail.probability(6.0).ln();
        for _ in 0..200 {
            tail.learn(5.0, &config);
        }
        assert!(tail.rate > 0.8, "{}", tail.rate);
        assert!(tail.probability(6.0).ln() > before);
        assert_eq!(tail.peaks.len(), config.max_peaks);
    }

    #[test]
    fn scores_and_fisher_combination() {
        assert!((score_of(1e-3f64.ln()) - (1.0 - 10f64.powf(-0.3))).abs() < 1e-12);
        assert!((ln_p_of_score(score_of(-20.0)) + 20.0).abs() < 1e-9);
        assert_eq!(score_of(0.0), 0.0);
        // two p = 1 give p = 1; Fisher of (p, 1) is larger than p
        assert!(fisher_ln_p([0.0, 0.0]).abs() < 1e-12);
        let single = 1e-4f64.ln();
        let combined = fisher_ln_p([single, 0.0]);
        assert!(combined > single && combined < 0.0);
    }
}
