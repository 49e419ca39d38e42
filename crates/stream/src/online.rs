//! Online mode: a key with no trained model learns from its own first
//! events, then keeps adapting with periodic refits on its recent history,
//! never learning from events it judged anomalous. What to learn from and
//! when is decided here; how is the [`Learner`]'s business.

use std::collections::VecDeque;

use ndarray::Array2;

use crate::codec::{Decode, DecodeError, Encode, check_finite};
use crate::config::{OnlineConfig, StreamConfig};
use crate::learner::{LearnError, Learner, Series};
use crate::model::ScoringModel;
use crate::state::scaler::ScalerStats;
use crate::state::store::KeyState;

/// One key's recent history and the learner that trains its model.
pub struct OnlineLearner {
    history: VecDeque<(Vec<f32>, bool)>,
    capacity: usize,
    warmup_events: u64,
    /// Events observed since the last training attempt (or since the start).
    since_attempt: u64,
    /// Events observed since the start.
    seen: u64,
    trained: bool,
    learner: Box<dyn Learner>,
}

impl std::fmt::Debug for OnlineLearner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineLearner")
            .field("history", &self.history.len())
            .field("since_attempt", &self.since_attempt)
            .field("trained", &self.trained)
            .finish_non_exhaustive()
    }
}

impl OnlineLearner {
    pub fn new(
        warmup_events: u64,
        config: &OnlineConfig,
        learner: Box<dyn Learner>,
    ) -> OnlineLearner {
        OnlineLearner {
            history: VecDeque::new(),
            capacity: config.history_events.max(warmup_events as usize),
            warmup_events,
            since_attempt: 0,
            seen: 0,
            trained: false,
            learner,
        }
    }

    /// Remembers an event; `usable` is false for events judged anomalous.
    /// Until the key's first model is trained every event is usable: a
    /// prior's verdicts are not trusted to censor what the key learns.
    pub fn observe(&mut self, raw: &[f32], usable: bool) {
        if self.history.len() == self.capacity {
            self.history.pop_front();
        }
        self.history
            .push_back((raw.to_vec(), usable || !self.trained));
        self.since_attempt += 1;
        self.seen += 1;
    }

    /// Events observed since the key started.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Whether a model of the key's own has been trained.
    pub fn trained(&self) -> bool {
        self.trained
    }

    /// Statistics of the usable events in the history.
    pub fn scaler_stats(&self) -> ScalerStats {
        let width = self.history_width();
        ScalerStats::fit(
            self.history
                .iter()
                .filter(|(_, usable)| *usable)
                .map(|(raw, _)| raw.as_slice()),
            width,
        )
    }

    /// The key has no model yet and has seen enough to try: its warm-up,
    /// or, after a failed first training, another warm-up's worth.
    pub fn warmup_complete(&self) -> bool {
        !self.trained && self.since_attempt >= self.warmup_events
    }

    /// The key is due its first training or a refit.
    pub fn learn_due(&self, config: &OnlineConfig) -> bool {
        self.warmup_complete() || self.refit_due(config)
    }

    /// The key has a model and has seen `refit_every_events` since it was
    /// trained or since the last refit was tried.
    pub fn refit_due(&self, config: &OnlineConfig) -> bool {
        config.refit_every_events > 0
            && self.trained
            && self.since_attempt >= config.refit_every_events
    }

    /// Trains on the history (continuing from the last model, if any) and
    /// returns the model and the key's state replayed to the present. On
    /// an error the learner keeps what it had and waits as long as before
    /// it tries again.
    pub fn learn(&mut self, config: &StreamConfig) -> Result<(ScoringModel, KeyState), LearnError> {
        let inputs = config.schema.input_width();
        let mut rows = Array2::zeros((self.history.len(), inputs));
        for (mut row, (raw, _)) in rows.rows_mut().into_iter().zip(&self.history) {
            row.as_slice_mut().expect("contiguous").copy_from_slice(raw);
        }
        let series = Series {
            rows,
            usable: self.history.iter().map(|(_, ok)| *ok).collect(),
        };
        let max_epochs = if self.trained {
            config.online.refit_max_epochs
        } else {
            config.training.max_epochs
        };
        self.since_attempt = 0;
        let learned = self.learner.learn(&series, config, max_epochs)?;
        self.trained = true;
        Ok(learned)
    }
}

impl OnlineLearner {
    /// What the key has learned from, for its checkpoint: the history with
    /// each event's usability, and where it stands between trainings (the
    /// learner itself stays behind).
    pub fn encode_progress(&self, out: &mut Vec<u8>) {
        self.history_width().encode(out);
        self.history.len().encode(out);
        for (raw, usable) in &self.history {
            for value in raw {
                value.encode(out);
            }
            usable.encode(out);
        }
        self.capacity.encode(out);
        self.warmup_events.encode(out);
        self.since_attempt.encode(out);
        self.seen.encode(out);
        self.trained.encode(out);
    }

    /// A key's learner from its checkpoint, training with `learner` from
    /// now on (resumed from the key's model by [`OnlineLearner::resume`]).
    pub fn decode_progress(
        input: &mut &[u8],
        learner: Box<dyn Learner>,
    ) -> Result<OnlineLearner, DecodeError> {
        let width = usize::decode(input)?;
        let events = usize::decode(input)?;
        // Every event takes at least its usability byte.
        if events > input.len() {
            return Err(DecodeError::Truncated("the learning history"));
        }
        let mut history = VecDeque::with_capacity(events);
        for _ in 0..events {
            let raw = (0..width)
                .map(|_| f32::decode(input))
                .collect::<Result<Vec<f32>, _>>()?;
            check_finite("learning history", &raw)?;
            history.push_back((raw, bool::decode(input)?));
        }
        let learner = OnlineLearner {
            history,
            capacity: usize::decode(input)?,
            warmup_events: u64::decode(input)?,
            since_attempt: u64::decode(input)?,
            seen: u64::decode(input)?,
            trained: bool::decode(input)?,
            learner,
        };
        if learner.capacity == 0 || learner.history.len() > learner.capacity {
            return Err(DecodeError::invalid(
                "learning history",
                format!(
                    "{} events for room of {}",
                    learner.history.len(),
                    learner.capacity
                ),
            ));
        }
        Ok(learner)
    }

    /// Continues from `model`, the restored key's own, at the next refit.
    pub fn resume(&mut self, model: &ScoringModel) {
        self.learner.resume(model);
    }

    /// Inputs per event in the history (0 while it is empty).
    pub fn history_width(&self) -> usize {
        self.history.front().map_or(0, |(raw, _)| raw.len())
    }
}
