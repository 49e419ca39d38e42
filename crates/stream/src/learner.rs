//! How online learning reaches the streaming path without the stream core
//! knowing how models are trained: the pipeline hands a key's history to a
//! [`Learner`], which the learning crate implements with burn.

use std::fmt::Debug;

use ndarray::Array2;

use crate::config::StreamConfig;
use crate::detect::threshold::ThresholdError;
use crate::model::ScoringModel;
use crate::state::scaler::Fence;
use crate::state::store::KeyState;

/// One key's raw inputs (per-key slots filled) and which rows are normal.
#[derive(Debug, Clone)]
pub struct Series {
    /// [points, inputs]
    pub rows: Array2<f32>,
    /// False for rows judged anomalous: never learned from.
    pub usable: Vec<bool>,
}

impl Series {
    /// The rows learned from.
    pub fn usable_rows(&self) -> impl Iterator<Item = &[f32]> {
        self.rows
            .rows()
            .into_iter()
            .zip(&self.usable)
            .filter(|(_, ok)| **ok)
            .map(|(row, _)| row.to_slice().expect("standard layout"))
    }

    /// The [`Fence`] of the usable rows on the `unbounded` inputs: the
    /// values it is plausible to learn from.
    pub fn fence(&self, unbounded: &[bool]) -> Fence {
        Fence::around(self.usable_rows(), unbounded)
    }

    /// This series with its rows beyond `fence` marked unusable: an absurd
    /// reading is never learned from.
    pub fn within(&self, fence: &Fence) -> Series {
        let usable = self
            .rows
            .rows()
            .into_iter()
            .zip(&self.usable)
            .map(|(row, &ok)| ok && fence.holds(row.to_slice().expect("standard layout")))
            .collect();
        Series {
            rows: self.rows.clone(),
            usable,
        }
    }
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
    #[error(
        "{model}: training diverged at epoch {epoch} (loss {loss}); lower training.learning_rate"
    )]
    Diverged {
        model: String,
        epoch: usize,
        loss: f64,
    },
    #[error("calibration: {0}")]
    Threshold(#[from] ThresholdError),
}

/// Trains one key's model from its history. A learner keeps what it
/// trained, so that the next call (a refit) continues from it.
pub trait Learner: Send {
    /// Trains and calibrates on `history` for at most `max_epochs`, and
    /// returns the model with the key's state replayed to the history's end.
    fn learn(
        &mut self,
        history: &Series,
        config: &StreamConfig,
        max_epochs: usize,
    ) -> Result<(ScoringModel, KeyState), LearnError>;

    /// Continues from `model` at the next refit: the model of a key
    /// restored from a checkpoint, whose learner is new.
    fn resume(&mut self, model: &ScoringModel);
}

/// Gives each new online key its own [`Learner`].
pub trait LearnerFactory: Debug + Send + Sync {
    fn learner(&self) -> Box<dyn Learner>;
}
