//! The recurrent forecaster: reads a sequence and predicts, at every step,
//! the next input.

use burn::module::Module;
use burn::nn::{Gru, GruConfig, Linear, LinearConfig, Lstm, LstmConfig, LstmState};
use burn::tensor::{Device, Tensor};
use tidewatch_stream::config::{CellKind, ForecasterConfig};

// Built once per model; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum RecurrentLayer {
    Lstm(Lstm),
    Gru(Gru),
}

#[derive(Module, Debug)]
pub struct Forecaster {
    pub recurrent: RecurrentLayer,
    /// hidden -> inputs
    pub head: Linear,
}

impl Forecaster {
    /// A forecaster of shape `config` over `inputs` inputs, freshly initialised.
    pub fn init(config: &ForecasterConfig, inputs: usize, device: &Device) -> Forecaster {
        let recurrent = match config.cell {
            CellKind::Lstm => {
                RecurrentLayer::Lstm(LstmConfig::new(inputs, config.hidden_size, true).init(device))
            }
            CellKind::Gru => {
                RecurrentLayer::Gru(GruConfig::new(inputs, config.hidden_size, true).init(device))
            }
        };
        Forecaster {
            recurrent,
            head: LinearConfig::new(config.hidden_size, inputs).init(device),
        }
    }
}

/// Recurrent state carried from one chunk of a sequence to the next.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RecurrentState {
    Lstm(LstmState<2>),
    /// [batch, hidden]
    Gru(Tensor<2>),
}

impl RecurrentState {
    /// The same values, cut from the autodiff graph (truncated backpropagation).
    pub fn detach(self) -> RecurrentState {
        match self {
            RecurrentState::Lstm(s) => {
                RecurrentState::Lstm(LstmState::new(s.cell.detach(), s.hidden.detach()))
            }
            RecurrentState::Gru(h) => RecurrentState::Gru(h.detach()),
        }
    }
}

impl Forecaster {
    /// Runs the sequence on from `state` (zero when `None`).
    /// inputs [batch, time, inputs] -> (next-step predictions [batch, time, inputs], state after the last step)
    pub fn forward(
        &self,
        inputs: Tensor<3>,
        state: Option<RecurrentState>,
    ) -> (Tensor<3>, RecurrentState) {
        let (hidden, state) = match (&self.recurrent, state) {
            (RecurrentLayer::Lstm(lstm), state) => {
                let initial = match state {
                    Some(RecurrentState::Lstm(s)) => Some(s),
                    _ => None,
                };
                let (hidden, last) = lstm.forward(inputs, initial);
                (hidden, RecurrentState::Lstm(last))
            }
            (RecurrentLayer::Gru(gru), state) => {
                let initial = match state {
                    Some(RecurrentState::Gru(h)) => Some(h),
                    _ => None,
                };
                // [batch, time, hidden]
                let hidden = gru.forward(inputs, initial);
                let [batch, time, width] = hidden.dims();
                let last = hidden
                    .clone()
                    .slice([0..batch, time - 1..time, 0..width])
                    .reshape([batch, width]);
                (hidden, RecurrentState::Gru(last))
            }
        };
        (self.head.forward(hidden), state)
    }

    /// Masked mean squared error of the predictions of `targets` (the
    /// inputs shifted one step ahead), continuing from `state`.
    /// inputs, targets [batch, time, inputs]; mask [batch, time, 1] (1 where
    /// the target is a normal point) -> (scalar, state after the chunk)
    pub fn loss(
        &self,
        inputs: Tensor<3>,
        targets: Tensor<3>,
        mask: Tensor<3>,
        state: Option<RecurrentState>,
    ) -> (Tensor<1>, RecurrentState) {
        let [_, _, width] = inputs.dims();
        let (predictions, state) = self.forward(inputs, state);
        let squared = (predictions - targets).square() * mask.clone();
        let weight = mask.sum().mul_scalar(width as f64).add_scalar(1e-9);
        (squared.sum().div(weight), state)
    }
}
