//! When a score is an anomaly: a fixed threshold, a quantile of the scores
//! seen in calibration, or streaming peaks-over-threshold (SPOT, Siffer et
//! al., KDD 2017), which fits a generalised Pareto distribution to the
//! scores above a high initial quantile and keeps refitting it online,
//! giving the threshold whose exceedance probability is `risk`.

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode};

/// Threshold policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdConfig {
    /// A score at or above `value` is an anomaly.
    Fixed { value: f64 },
    /// The `quantile` of calibration scores, times `margin`.
    Quantile {
        quantile: f64,
        #[serde(default = "default_margin")]
        margin: f64,
    },
    /// Streaming peaks-over-threshold.
    Pot {
        /// Probability that a normal score exceeds the threshold.
        #[serde(default = "default_risk")]
        risk: f64,
        /// Quantile of calibration scores above which scores are peaks.
        #[serde(default = "default_initial_quantile")]
        initial_quantile: f64,
        /// Most recent peaks kept for the fit.
        #[serde(default = "default_max_peaks")]
        max_peaks: usize,
    },
}

fn default_margin() -> f64 {
    1.0
}
fn default_risk() -> f64 {
    1e-4
}
fn default_initial_quantile() -> f64 {
    0.98
}
fn default_max_peaks() -> usize {
    500
}

/// Score 0.85 is a tail probability of 10^-8.2 per event under the model.
/// Strict on purpose: a stream scores millions of events, and a tail fitted
/// to a few hundred errors is least certain exactly out there.
impl Default for ThresholdConfig {
    fn default() -> Self {
        ThresholdConfig::Fixed { value: 0.85 }
    }
}

/// A threshold that is ready to use, as saved in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Threshold {
    Fixed { value: f64 },
    Pot(PotState),
}

/// Peaks-over-threshold state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PotState {
    pub risk: f64,
    /// Initial threshold: scores above it are peaks.
    pub initial: f64,
    /// Excesses over `initial`, most recent last.
    pub peaks: Vec<f64>,
    pub max_peaks: usize,
    /// Scores seen (the denominator of the peak rate).
    pub seen: u64,
    /// Current threshold.
    pub value: f64,
}

impl Threshold {
    /// The first value out of its range, for a threshold read from a manifest.
    pub fn check(&self) -> Result<(), String> {
        let finite = |name: &str, value: f64| {
            if value.is_finite() && value >= 0.0 {
                Ok(())
            } else {
                Err(format!("{name} must be in [0, inf), got {value}"))
            }
        };
        match self {
            Threshold::Fixed { value } => finite("value", *value),
            Threshold::Pot(pot) => {
                if !(pot.risk > 0.0 && pot.risk < 1.0) {
                    return Err(format!("risk must be in (0, 1), got {}", pot.risk));
                }
                finite("initial", pot.initial)?;
                finite("value", pot.value)?;
                pot.peaks.iter().try_for_each(|&p| finite("peaks", p))
            }
        }
    }
}

/// A threshold policy that could not be calibrated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("no calibration scores to set a {0} threshold from")]
    NoCalibration(&'static str),
    #[error("{name} must be in {range}, got {value}")]
    OutOfRange {
        name: &'static str,
        range: &'static str,
        value: f64,
    },
}

impl ThresholdConfig {
    pub fn validate(&self) -> Result<(), ThresholdError> {
        let check = |name, value: f64, ok: bool, range| {
            if ok {
                Ok(())
            } else {
                Err(ThresholdError::OutOfRange { name, range, value })
            }
        };
        match *self {
            ThresholdConfig::Fixed { value } => {
                check("value", value, (0.0..=1.0).contains(&value), "[0, 1]")
            }
            ThresholdConfig::Quantile { quantile, margin } => {
                check(
                    "quantile",
                    quantile,
                    (0.0..=1.0).contains(&quantile),
                    "[0, 1]",
                )?;
                check(
                    "margin",
                    margin,
                    margin > 0.0 && margin.is_finite(),
                    "(0, inf)",
                )
            }
            ThresholdConfig::Pot {
                risk,
                initial_quantile,
                max_peaks,
            } => {
                check("risk", risk, risk > 0.0 && risk < 1.0, "(0, 1)")?;
                check(
                    "initial_quantile",
                    initial_quantile,
                    initial_quantile > 0.0 && initial_quantile < 1.0,
                    "(0, 1)",
                )?;
                check("max_peaks", max_peaks as f64, max_peaks >= 10, "[10, inf)")
            }
        }
    }

    /// Sets the threshold from scores of normal data.
    pub fn calibrate(&self, scores: &[f64]) -> Result<Threshold, ThresholdError> {
        match *self {
            ThresholdConfig::Fixed { value } => Ok(Threshold::Fixed { value }),
            ThresholdConfig::Quantile { quantile, margin } => {
                let q = quantile_of(scores, quantile)
                    .ok_or(ThresholdError::NoCalibration("quantile"))?;
                Ok(Threshold::Fixed { value: q * margin })
            }
            ThresholdConfig::Pot {
                risk,
                initial_quantile,
                max_peaks,
            } => {
                let initial = quantile_of(scores, initial_quantile)
                    .ok_or(ThresholdError::NoCalibration("pot"))?;
                let mut peaks: Vec<f64> = scores
                    .iter()
                    .filter(|&&s| s > initial)
                    .map(|s| s - initial)
                    .collect();
                if peaks.len() > max_peaks {
                    peaks.drain(..peaks.len() - max_peaks);
                }
                let mut state = PotState {
                    risk,
                    initial,
                    peaks,
                    max_peaks,
                    seen: scores.len() as u64,
                    value: initial,
                };
                state.refit();
                Ok(Threshold::Pot(state))
            }
        }
    }
}

impl Threshold {
    pub fn value(&self) -> f64 {
        match self {
            Threshold::Fixed { value } => *value,
            Threshold::Pot(state) => state.value,
        }
    }

    /// Learns from a score judged normal (POT counts it and, if it is a
    /// peak, refits); anomalies are never learned.
    pub fn learn(&mut self, score: f64) {
        if let Threshold::Pot(state) = self {
            state.seen += 1;
            if score > state.initial {
                if state.peaks.len() == state.max_peaks {
                    state.peaks.remove(0);
                }
                state.peaks.push(score - state.initial);
                state.refit();
            }
        }
    }
}

impl PotState {
    /// Method-of-moments fit of the generalised Pareto distribution to the
    /// peaks, then the quantile at `risk`: `t + σ/γ ((risk n / N_t)^-γ - 1)`.
    fn refit(&mut self) {
        let n_peaks = self.peaks.len() as f64;
        if n_peaks < 2.0 {
            self.value = self.initial + self.peaks.iter().copied().fold(0.0, f64::max);
            return;
        }
        let mean = self.peaks.iter().sum::<f64>() / n_peaks;
        let var = self.peaks.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / (n_peaks - 1.0);
        let ratio = if var > 0.0 {
            mean * mean / var
        } else {
            f64::INFINITY
        };
        // γ < 1/2 always; a degenerate (constant) set of peaks is a
        // bounded tail at that constant.
        let (gamma, sigma) = if ratio.is_finite() {
            (0.5 * (1.0 - ratio), 0.5 * mean * (ratio + 1.0))
        } else {
            (-1.0, mean)
        };
        let r = self.risk * self.seen.max(1) as f64 / n_peaks;
        let excess = if gamma.abs() < 1e-9 {
            -sigma * r.ln()
        } else {
            sigma / gamma * (r.powf(-gamma) - 1.0)
        };
        self.value = self.initial + excess.max(0.0);
    }
}

/// Linear-interpolated quantile (the common "type 7" definition).
pub fn quantile_of(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (position.floor() as usize, position.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (position - lo as f64))
}

/// Record tags of the threshold kinds.
const FIXED_TAG: u8 = 0;
const POT_TAG: u8 = 1;

impl Encode for Threshold {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Threshold::Fixed { value } => {
                FIXED_TAG.encode(out);
                value.encode(out);
            }
            Threshold::Pot(pot) => {
                POT_TAG.encode(out);
                pot.risk.encode(out);
                pot.initial.encode(out);
                pot.peaks.encode(out);
                pot.max_peaks.encode(out);
                pot.seen.encode(out);
                pot.value.encode(out);
            }
        }
    }
}

impl Decode for Threshold {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let threshold = match u8::decode(input)? {
            FIXED_TAG => Threshold::Fixed {
                value: f64::decode(input)?,
            },
            POT_TAG => Threshold::Pot(PotState {
                risk: f64::decode(input)?,
                initial: f64::decode(input)?,
                peaks: Vec::decode(input)?,
                max_peaks: usize::decode(input)?,
                seen: u64::decode(input)?,
                value: f64::decode(input)?,
            }),
            other => return Err(DecodeError::invalid("threshold kind", other.to_string())),
        };
        threshold
            .check()
            .map_err(|e| DecodeError::invalid("threshold", e))?;
        if let Threshold::Pot(pot) = &threshold
            && pot.max_peaks == 0
        {
            return Err(DecodeError::invalid(
                "threshold",
                "max_peaks must be at least 1",
            ));
        }
        Ok(threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile_of(&[3.0, 1.0, 2.0, 4.0], 0.5), Some(2.5));
        assert_eq!(quantile_of(&[], 0.5), None);
    }

    #[test]
    fn pot_matches_the_exponential_tail() {
        // Scores with an exponential tail of rate 1: P(X > x) = e^-x. The
        // 1e-4 threshold is ln(1e4) = 9.21.
        let n = 200_000;
        let scores: Vec<f64> = (0..n)
            .map(|i| -((i as f64 + 0.5) / n as f64).ln())
            .collect();
        let config = ThresholdConfig::Pot {
            risk: 1e-4,
            initial_quantile: 0.98,
            max_peaks: 1_000_000,
        };
        let threshold = config.calibrate(&scores).unwrap();
        let value = threshold.value();
        assert!((value - 1e4f64.ln()).abs() < 0.3, "{value}");
    }

    #[test]
    fn pot_learns_only_normal_peaks() {
        let scores: Vec<f64> = (0..1000).map(|i| f64::from(i % 100) / 200.0).collect();
        let config = ThresholdConfig::Pot {
            risk: 1e-3,
            initial_quantile: 0.9,
            max_peaks: 50,
        };
        let mut threshold = config.calibrate(&scores).unwrap();
        let before = threshold.value();
        assert!(before > 0.45 && before < 1.0, "{before}");
        threshold.learn(0.1);
        assert!(matches!(&threshold, Threshold::Pot(s) if s.seen == 1001));
        for _ in 0..100 {
            threshold.learn(before * 0.99);
        }
        let Threshold::Pot(state) = &threshold else {
            unreachable!()
        };
        assert_eq!(state.peaks.len(), 50);
    }

    #[test]
    fn validates_ranges() {
        assert!(ThresholdConfig::Fixed { value: 1.5 }.validate().is_err());
        assert!(
            ThresholdConfig::Pot {
                risk: 0.0,
                initial_quantile: 0.98,
                max_peaks: 100
            }
            .validate()
            .is_err()
        );
        let parsed: ThresholdConfig = toml::from_str("kind = \"pot\"\nrisk = 0.001").unwrap();
        assert_eq!(
            parsed,
            ThresholdConfig::Pot {
                risk: 0.001,
                initial_quantile: 0.98,
                max_peaks: 500
            }
        );
    }
}
