//! A trained model as scoring sees it: the kernels, and the calibration
//! every new key starts from.

use crate::codec::{Decode, DecodeError, Encode};
use crate::config::StreamConfig;
use crate::detect::DetectionState;
use crate::detect::score::ErrorTail;
use crate::detect::threshold::{Threshold, ThresholdConfig};
use crate::infer::KernelModel;
use crate::state::scaler::{RunningScaler, ScalerStats};
use crate::state::store::KeyState;

/// What scoring needs from a trained model: kernels and calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringModel {
    pub kernels: KernelModel,
    /// Input statistics of the training data; new keys start from them.
    pub scaler: ScalerStats,
    /// Error tail per detector and evidence feature (forecast tails first);
    /// new keys start from them.
    pub error_tails: Vec<ErrorTail>,
    /// Threshold calibrated on the training data.
    pub threshold: Threshold,
}

/// Events a prior's error tails weigh as for a key starting from it.
const PRIOR_TAIL_EVENTS: u64 = 100;

impl ScoringModel {
    /// The state of a key this model is a prior for: scaled by the key's
    /// own first events (`stats`), with error tails that weigh as a few
    /// events so that the key's own errors soon dominate them, and the
    /// stream's threshold when it is fixed (not the one the prior was
    /// trained with).
    pub fn prior_key_state(&self, config: &StreamConfig, stats: &ScalerStats) -> KeyState {
        let mut state = self.new_key_state(config, Some(stats));
        let tails = self
            .error_tails
            .iter()
            .map(|tail| tail.weighted_as(PRIOR_TAIL_EVENTS))
            .collect();
        let threshold = match config.detect.threshold {
            ThresholdConfig::Fixed { value } => Threshold::Fixed { value },
            _ => self.threshold.clone(),
        };
        state.detection = DetectionState::new(tails, threshold);
        state
    }

    /// A fresh key's state, scaled from `scaler` (the model's own
    /// statistics when `None`).
    pub fn new_key_state(&self, config: &StreamConfig, scaler: Option<&ScalerStats>) -> KeyState {
        let running = RunningScaler::from_prior(
            scaler.unwrap_or(&self.scaler),
            &config.state,
            &config.schema,
        );
        let detection = DetectionState::new(self.error_tails.clone(), self.threshold.clone());
        KeyState::new(
            running,
            self.kernels.window_len,
            self.kernels.inputs(),
            self.kernels.state_width(),
            detection,
        )
    }
}

/// A key's own model (online keys) travels in its checkpoint.
impl Encode for ScoringModel {
    fn encode(&self, out: &mut Vec<u8>) {
        self.kernels.encode(out);
        self.scaler.encode(out);
        self.error_tails.encode(out);
        self.threshold.encode(out);
    }
}

impl Decode for ScoringModel {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let model = ScoringModel {
            kernels: KernelModel::decode(input)?,
            scaler: ScalerStats::decode(input)?,
            error_tails: Vec::decode(input)?,
            threshold: Threshold::decode(input)?,
        };
        if model.scaler.mean.len() != model.kernels.inputs() {
            return Err(DecodeError::invalid(
                "model",
                format!(
                    "scaler statistics of {} inputs for a model of {}",
                    model.scaler.mean.len(),
                    model.kernels.inputs()
                ),
            ));
        }
        Ok(model)
    }
}
