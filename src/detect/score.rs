//! Errors -> anomaly score in [0, 1], comparable across streams.
//!
//! Numenta's anomaly likelihood (Ahmad et al., 2017): the mean of the last
//! few errors is compared with the long-run distribution of that mean; the
//! score is the log-scaled Gaussian tail probability, so that likelihoods
//! from 0.999 to 0.99999 spread over the upper half of [0, 1]. Unlike
//! Numenta's fixed window of raw values, the long-run mean and variance are
//! kept as exponentially weighted running moments: O(1) memory per key.

use serde::{Deserialize, Serialize};

/// How errors become scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Errors averaged into the recent mean.
    #[serde(default = "default_short_window_events")]
    pub short_window_events: usize,
    /// Events the long-run distribution remembers.
    #[serde(default = "default_history_events")]
    pub history_events: usize,
    /// Smallest long-run standard deviation, relative to the long-run mean.
    #[serde(default = "default_min_relative_std")]
    pub min_relative_std: f64,
}

fn default_short_window_events() -> usize {
    10
}
fn default_history_events() -> usize {
    8640
}
fn default_min_relative_std() -> f64 {
    0.05
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            short_window_events: default_short_window_events(),
            history_events: default_history_events(),
            min_relative_std: default_min_relative_std(),
        }
    }
}

/// The long-run distribution of the recent-mean error, as saved in a bundle
/// to start new keys from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorStats {
    pub mean: f64,
    pub variance: f64,
    pub count: u64,
}

/// One detector's likelihood state for one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Likelihood {
    recent: Vec<f64>,
    next: usize,
    filled: usize,
    long: ErrorStats,
}

/// `ln(1e-10)`: the log scaling maps a tail probability of 1e-10 to score 1.
const LOG_FLOOR: f64 = -23.025_850_929_940_457;

impl Likelihood {
    pub fn new(config: &ScoreConfig, prior: ErrorStats) -> Likelihood {
        Likelihood {
            recent: vec![0.0; config.short_window_events.max(1)],
            next: 0,
            filled: 0,
            long: prior,
        }
    }

    /// Adds an error and returns the score of the recent mean against the
    /// long-run distribution (0 until there are two long-run samples).
    pub fn push(&mut self, error: f64, config: &ScoreConfig) -> f64 {
        self.recent[self.next] = error;
        self.next = (self.next + 1) % self.recent.len();
        self.filled = (self.filled + 1).min(self.recent.len());
        if self.long.count < 2 {
            return 0.0;
        }
        let std = self
            .long
            .variance
            .sqrt()
            .max(self.long.mean.abs() * config.min_relative_std)
            .max(1e-12);
        let z = (self.recent_mean() - self.long.mean).abs() / std;
        // Two-sided like Numenta's: an error far below normal (a stream
        // gone flat that the model now predicts perfectly) is news too.
        let tail = libm::erfc(z / std::f64::consts::SQRT_2);
        ((tail + 1e-10).ln() / LOG_FLOOR).clamp(0.0, 1.0)
    }

    /// Folds the recent mean into the long-run distribution; called only
    /// for events judged normal, so anomalies never become normal.
    pub fn learn(&mut self, config: &ScoreConfig) {
        let x = self.recent_mean();
        let stats = &mut self.long;
        stats.count += 1;
        let weight = 1.0 / (stats.count.min(config.history_events.max(1) as u64)) as f64;
        let delta = x - stats.mean;
        stats.mean += weight * delta;
        stats.variance = (1.0 - weight) * (stats.variance + weight * delta * delta);
    }

    pub fn recent_mean(&self) -> f64 {
        let n = self.filled.max(1);
        let sum: f64 = if self.filled == self.recent.len() {
            self.recent.iter().sum()
        } else {
            self.recent[..self.filled].iter().sum()
        };
        sum / n as f64
    }

    pub fn stats(&self) -> ErrorStats {
        self.long
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trained(config: &ScoreConfig) -> Likelihood {
        let mut likelihood = Likelihood::new(config, ErrorStats::default());
        for i in 0..2000 {
            likelihood.push(1.0 + 0.2 * ((i * 7919 % 100) as f64 / 100.0 - 0.5), config);
            likelihood.learn(config);
        }
        likelihood
    }

    #[test]
    fn normal_errors_score_low_and_outliers_high() {
        let config = ScoreConfig::default();
        let mut likelihood = trained(&config);
        let normal = likelihood.push(1.0, &config);
        assert!(normal < 0.1, "{normal}");
        let mut spiked = 0.0;
        for _ in 0..3 {
            spiked = likelihood.push(5.0, &config);
        }
        assert!(spiked > 0.9, "{spiked}");
        let stats = likelihood.stats();
        assert!((stats.mean - 1.0).abs() < 0.01, "{stats:?}");
    }

    #[test]
    fn scores_follow_the_log_scale() {
        // tail 1e-5 -> 0.5, tail 1 -> 0
        assert!(((1e-5f64 + 1e-10).ln() / LOG_FLOOR - 0.5).abs() < 1e-4);
        let config = ScoreConfig::default();
        let mut fresh = Likelihood::new(&config, ErrorStats::default());
        assert_eq!(fresh.push(100.0, &config), 0.0);
    }
}
