//! Online mode: a key with no trained model learns from its own first
//! events, then keeps adapting with periodic refits on its recent history,
//! never learning from events it judged anomalous.

use std::collections::VecDeque;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::config::StreamConfig;
use crate::learn::{LearnError, Modules, Series, learn};
use crate::nn::training::Progress;
use crate::pipeline::ScoringModel;
use crate::state::store::KeyState;

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
}

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

/// One key's recent history and trained modules.
#[derive(Debug)]
pub struct OnlineLearner {
    history: VecDeque<(Vec<f32>, bool)>,
    capacity: usize,
    warmup_events: u64,
    since_refit: u64,
    modules: Option<Modules>,
}

impl OnlineLearner {
    pub fn new(warmup_events: u64, config: &OnlineConfig) -> OnlineLearner {
        OnlineLearner {
            history: VecDeque::new(),
            capacity: config.history_events.max(warmup_events as usize),
            warmup_events,
            since_refit: 0,
            modules: None,
        }
    }

    /// Remembers an event; `usable` is false for events judged anomalous.
    pub fn observe(&mut self, raw: &[f32], usable: bool) {
        if self.history.len() == self.capacity {
            self.history.pop_front();
        }
        self.history.push_back((raw.to_vec(), usable));
        if self.modules.is_some() {
            self.since_refit += 1;
        }
    }

    pub fn warmup_complete(&self) -> bool {
        self.modules.is_none() && self.history.len() as u64 >= self.warmup_events
    }

    pub fn refit_due(&self, config: &OnlineConfig) -> bool {
        config.refit_every_events > 0
            && self.modules.is_some()
            && self.since_refit >= config.refit_every_events
    }

    /// Trains on the history (continuing from the last modules, if any) and
    /// returns the model and the key's state replayed to the present.
    pub fn learn(
        &mut self,
        config: &StreamConfig,
        progress: Progress,
    ) -> Result<(ScoringModel, KeyState), LearnError> {
        let inputs = config.schema.input_width();
        let mut rows = Array2::zeros((self.history.len(), inputs));
        for (mut row, (raw, _)) in rows.rows_mut().into_iter().zip(&self.history) {
            row.as_slice_mut().expect("contiguous").copy_from_slice(raw);
        }
        let series = Series {
            rows,
            usable: self.history.iter().map(|(_, ok)| *ok).collect(),
        };
        let max_epochs = match self.modules {
            None => config.training.max_epochs,
            Some(_) => config.online.refit_max_epochs,
        };
        let learned = learn(
            std::slice::from_ref(&series),
            config,
            self.modules.as_ref(),
            max_epochs,
            progress,
        )?;
        self.modules = Some(learned.modules);
        self.since_refit = 0;
        let state = learned
            .states
            .into_iter()
            .next()
            .expect("one state per series");
        Ok((learned.model, state))
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
