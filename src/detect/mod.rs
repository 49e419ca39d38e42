//! From per-detector errors to a verdict: [`score`] turns errors into an
//! anomaly score in [0, 1], [`threshold`] decides when a score is an
//! anomaly, [`hygiene`] decides when an anomaly raises a flag.

pub mod hygiene;
pub mod score;
pub mod threshold;

use serde::{Deserialize, Serialize};

use hygiene::{Hygiene, HygieneConfig, Judgement};
use score::{ErrorStats, Likelihood, ScoreConfig};
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
    /// How the detectors' scores combine into one.
    #[serde(default)]
    pub combine: Combine,
    /// Features named in a flag, largest contribution first.
    #[serde(default = "default_top_features")]
    pub top_features: usize,
}

fn default_top_features() -> usize {
    3
}

/// How per-detector scores combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// The larger score: either detector alone can raise a flag.
    #[default]
    Max,
    /// The mean score: both must agree.
    Mean,
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

/// One key's detection state: a likelihood per detector, its threshold
/// (POT adapts per key) and hygiene.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionState {
    likelihoods: [Likelihood; 2],
    threshold: Threshold,
    hygiene: Hygiene,
}

/// What detection made of one event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub score: f64,
    pub threshold: f64,
    pub judgement: Judgement,
}

impl DetectionState {
    pub fn new(
        config: &DetectConfig,
        priors: &[ErrorStats; 2],
        threshold: Threshold,
    ) -> DetectionState {
        DetectionState {
            likelihoods: priors.map(|prior| Likelihood::new(&config.score, prior)),
            threshold,
            hygiene: Hygiene::default(),
        }
    }

    /// Scores an event without judging it (calibration replays).
    pub fn score(&mut self, errors: &DetectorErrors, config: &DetectConfig) -> f64 {
        let scores = [0, 1].map(|d| self.likelihoods[d].push(errors[d], &config.score));
        match config.combine {
            Combine::Max => scores[0].max(scores[1]),
            Combine::Mean => 0.5 * (scores[0] + scores[1]),
        }
    }

    /// Scores and judges an event, learning from it when it is normal.
    pub fn detect(&mut self, errors: &DetectorErrors, config: &DetectConfig) -> Detection {
        let score = self.score(errors, config);
        let threshold = self.threshold.value();
        let judgement = self.hygiene.judge(score >= threshold, &config.hygiene);
        if !judgement.is_anomaly {
            self.learn(score, config);
        }
        Detection {
            score,
            threshold,
            judgement,
        }
    }

    /// Folds the latest event into the long-run error distributions and the
    /// threshold.
    pub fn learn(&mut self, score: f64, config: &DetectConfig) {
        for likelihood in &mut self.likelihoods {
            likelihood.learn(&config.score);
        }
        self.threshold.learn(score);
    }

    pub fn error_stats(&self) -> [ErrorStats; 2] {
        [self.likelihoods[0].stats(), self.likelihoods[1].stats()]
    }

    pub fn set_threshold(&mut self, threshold: Threshold) {
        self.threshold = threshold;
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
