//! From per-detector errors to a verdict: [`score`] turns errors into an
//! anomaly score in [0, 1], [`threshold`] decides when a score is an
//! anomaly, [`hygiene`] decides when an anomaly raises a flag.

pub mod hygiene;
pub mod score;
pub mod threshold;

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode};
use hygiene::{Hygiene, HygieneConfig, Judgement};
use score::{ErrorTail, Probability, ScoreConfig, fisher_ln_p, score_of};
use threshold::{Threshold, ThresholdConfig};

/// Everything about turning errors into flags, per stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    #[serde(default)]
    pub score: ScoreConfig,
    #[serde(default)]
    pub threshold: ThresholdConfig,
    #[serde(default)]
    pub hygiene: HygieneConfig,
    /// Features named in a flag, largest contribution first.
    #[serde(default = "default_top_features")]
    pub top_features: usize,
}

fn default_top_features() -> usize {
    3
}

/// The detectors, in the order their errors are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detector {
    /// Next-step forecast of the recurrent model.
    Forecast,
    /// Window reconstruction of the autoencoder.
    Reconstruction,
}

impl Detector {
    pub const ALL: [Detector; 2] = [Detector::Forecast, Detector::Reconstruction];

    pub fn name(self) -> &'static str {
        match self {
            Detector::Forecast => "forecast",
            Detector::Reconstruction => "reconstruction",
        }
    }
}

/// Root-mean-square error of each detector for one event, in standard
/// deviations of the scaled inputs.
pub type DetectorErrors = [f64; 2];

/// One key's detection state: an error tail per detector and evidence
/// feature, its threshold (POT adapts per key) and hygiene.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionState {
    /// Forecast tails of every evidence feature, then reconstruction tails.
    tails: Vec<ErrorTail>,
    threshold: Threshold,
    hygiene: Hygiene,
    /// Events in a row not learned from.
    unlearned_run: u32,
    /// Events still to learn from whatever they score, after a run of
    /// `relearn_after_events` unlearned ones.
    relearn_left: u32,
}

/// What detection made of one event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub score: f64,
    pub threshold: f64,
    pub judgement: Judgement,
    /// The event was normal enough to learn from: the key's scaler, error
    /// tails and (online) next refit take it in.
    pub learned: bool,
}

impl DetectionState {
    pub fn new(tails: Vec<ErrorTail>, threshold: Threshold) -> DetectionState {
        DetectionState {
            tails,
            threshold,
            hygiene: Hygiene::default(),
            unlearned_run: 0,
            relearn_left: 0,
        }
    }

    /// The anomaly score of an event's errors.
    /// The anomaly score of an event's per-feature errors (forecast errors
    /// of every evidence feature, then reconstruction errors). Within a
    /// detector the most surprising feature counts, Bonferroni-corrected
    /// for the number of features, so one feature far off stands out
    /// however many others are normal; the two detectors are combined with
    /// Fisher's method.
    pub fn score(&self, errors: &[f64]) -> f64 {
        let features = self.tails.len() / 2;
        let correction = (features as f64).ln();
        let detector = |d: usize| {
            let tails = &self.tails[d * features..(d + 1) * features];
            let errors = &errors[d * features..(d + 1) * features];
            let most_surprising = tails
                .iter()
                .zip(errors)
                .map(|(tail, &e)| tail.probability(e))
                .fold(Probability::Body(1.0), Probability::min);
            (most_surprising.ln() + correction).min(0.0)
        };
        score_of(fisher_ln_p([detector(0), detector(1)]))
    }

    /// Scores and judges an event, learning from it when it is normal.
    pub fn detect(&mut self, errors: &[f64], config: &DetectConfig) -> Detection {
        let score = self.score(errors);
        let threshold = self.threshold.value();
        let judgement = self.hygiene.judge(score >= threshold, &config.hygiene);
        let normal = !judgement.is_anomaly && score < config.score.learn_below_score;
        let relearning = self.relearning(normal, &config.score);
        let learned = normal || relearning;
        if learned {
            self.learn(errors, score, config);
        }
        Detection {
            score,
            threshold,
            judgement,
            learned,
        }
    }

    /// Whether an event that is not normal is learned from all the same:
    /// after `relearn_after_events` unlearned events in a row, the next
    /// `relearn_after_events` are, so that a refit has a long enough run
    /// of the new behaviour to learn it.
    fn relearning(&mut self, normal: bool, config: &ScoreConfig) -> bool {
        let relearn = config.relearn_after_events;
        if relearn == 0 {
            return false;
        }
        if self.relearn_left > 0 {
            self.relearn_left -= 1;
            return true;
        }
        if normal {
            self.unlearned_run = 0;
            return false;
        }
        self.unlearned_run += 1;
        if self.unlearned_run <= relearn {
            return false;
        }
        self.unlearned_run = 0;
        self.relearn_left = relearn - 1;
        true
    }

    /// Folds a normal event into the error tails and the threshold.
    fn learn(&mut self, errors: &[f64], score: f64, config: &DetectConfig) {
        for (tail, &error) in self.tails.iter_mut().zip(errors) {
            tail.learn(error, &config.score);
        }
        self.threshold.learn(score);
    }

    pub fn threshold(&self) -> &Threshold {
        &self.threshold
    }
}

impl DetectConfig {
    pub fn validate(&self) -> Result<(), threshold::ThresholdError> {
        self.threshold.validate()
    }
}

impl Encode for DetectionState {
    fn encode(&self, out: &mut Vec<u8>) {
        self.tails.encode(out);
        self.threshold.encode(out);
        self.hygiene.encode(out);
        self.unlearned_run.encode(out);
        self.relearn_left.encode(out);
    }
}

impl Decode for DetectionState {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let state = DetectionState {
            tails: Vec::decode(input)?,
            threshold: Threshold::decode(input)?,
            hygiene: Hygiene::decode(input)?,
            unlearned_run: u32::decode(input)?,
            relearn_left: u32::decode(input)?,
        };
        if state.tails.is_empty() || !state.tails.len().is_multiple_of(2) {
            return Err(DecodeError::invalid(
                "detection state",
                format!(
                    "{} error tails (two detectors' worth expected)",
                    state.tails.len()
                ),
            ));
        }
        Ok(state)
    }
}

impl DetectionState {
    /// Error tails the key keeps: one per detector and evidence feature.
    pub fn tail_count(&self) -> usize {
        self.tails.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_stuck_in_an_anomaly_relearns_for_as_long_as_it_waited() {
        let config = DetectConfig {
            score: ScoreConfig {
                relearn_after_events: 3,
                ..ScoreConfig::default()
            },
            ..DetectConfig::default()
        };
        let normal_errors: Vec<f64> = (0..500).map(|i| 0.5 + (i % 10) as f64 * 0.05).collect();
        let tail = ErrorTail::fit(&normal_errors, &config.score);
        let mut state =
            DetectionState::new(vec![tail.clone(), tail], Threshold::Fixed { value: 0.5 });
        let learned: Vec<bool> = [0.6, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 0.6, 9.0]
            .iter()
            .map(|&e| state.detect(&[e, e], &config).learned)
            .collect();
        // Normal, three anomalous events unlearned, the next three learned
        // whatever they score, then anomalies are left out again.
        assert_eq!(
            learned,
            [
                true, false, false, false, true, true, true, false, true, false
            ]
        );
        // Off by default: an anomaly is never learned from.
        let mut state = DetectionState::new(state.tails.clone(), Threshold::Fixed { value: 0.5 });
        let default = DetectConfig::default();
        assert!((0..20).all(|_| !state.detect(&[50.0, 50.0], &default).learned));
    }
}
