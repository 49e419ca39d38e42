//! Online mode's settings: how long a new key learns before it is scored
//! and how often it refits.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnlineConfig {
    /// Events a new key learns from before it is scored. Unset: for a file,
    /// `warmup_fraction` of its rows (NAB's probationary period); for a
    /// stream, `max_warmup_events`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup_events: Option<u64>,
    /// Share of a file's rows used as warm-up when `warmup_events` is unset.
    #[serde(default = "default_warmup_fraction")]
    pub warmup_fraction: f64,
    /// Upper bound on the warm-up when it is derived.
    #[serde(default = "default_max_warmup_events")]
    pub max_warmup_events: u64,
    /// Scored events between refits; 0 never refits.
    #[serde(default = "default_refit_every_events")]
    pub refit_every_events: u64,
    /// Most recent events a refit learns from.
    #[serde(default = "default_history_events")]
    pub history_events: usize,
    /// Epochs of each refit (it continues from the current weights).
    #[serde(default = "default_refit_max_epochs")]
    pub refit_max_epochs: usize,
    /// The model a new key scores with from its first events until its own
    /// is trained: `"shipped"`, tidewatch's prior for one value and the
    /// hour of day (trained on a generated corpus, built into the binary),
    /// or the directory of a bundle trained on the same inputs. Unset: a
    /// key is not scored before its warm-up ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<String>,
}

/// The value of `online.prior` that names the prior built into tidewatch.
pub const SHIPPED_PRIOR: &str = "shipped";

fn default_warmup_fraction() -> f64 {
    0.15
}
fn default_max_warmup_events() -> u64 {
    750
}
fn default_refit_every_events() -> u64 {
    1000
}
fn default_history_events() -> usize {
    3000
}
fn default_refit_max_epochs() -> usize {
    5
}

impl Default for OnlineConfig {
    fn default() -> Self {
        OnlineConfig {
            warmup_events: None,
            warmup_fraction: default_warmup_fraction(),
            max_warmup_events: default_max_warmup_events(),
            refit_every_events: default_refit_every_events(),
            history_events: default_history_events(),
            refit_max_epochs: default_refit_max_epochs(),
            prior: None,
        }
    }
}

impl OnlineConfig {
    /// Warm-up length for a series of `rows` rows (unknown for a stream).
    pub fn warmup_for(&self, rows: Option<u64>) -> u64 {
        self.warmup_events.unwrap_or_else(|| match rows {
            Some(n) => {
                ((n as f64 * self.warmup_fraction).floor() as u64).min(self.max_warmup_events)
            }
            None => self.max_warmup_events,
        })
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return Err(format!(
                "online.warmup_fraction must be in [0, 1), got {}",
                self.warmup_fraction
            ));
        }
        if self.refit_max_epochs == 0 || self.history_events == 0 {
            return Err(
                "online.refit_max_epochs and online.history_events must be positive".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_follows_nab_probation() {
        let config = OnlineConfig::default();
        assert_eq!(config.warmup_for(Some(4032)), 604);
        assert_eq!(config.warmup_for(Some(22695)), 750);
        assert_eq!(config.warmup_for(None), 750);
        let fixed = OnlineConfig {
            warmup_events: Some(400),
            ..OnlineConfig::default()
        };
        assert_eq!(fixed.warmup_for(Some(4032)), 400);
    }
}
