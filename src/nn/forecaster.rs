//! The recurrent forecaster: reads a sequence and predicts, at every step,
//! the next input.

use burn::module::Module;
use burn::nn::{Gru, GruConfig, Linear, LinearConfig, Lstm, LstmConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Which recurrent cell the forecaster uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    #[default]
    Lstm,
    Gru,
}

impl std::fmt::Display for CellKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        })
    }
}

/// Shape of the forecaster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecasterConfig {
    /// Recurrent cell: `lstm` or `gru`.
    #[serde(default)]
    pub cell: CellKind,
    /// Width of the recurrent state.
    #[serde(default = "default_hidden_size")]
    pub hidden_size: usize,
}

fn default_hidden_size() -> usize {
    64
}

impl Default for ForecasterConfig {
    fn default() -> Self {
        ForecasterConfig {
            cell: CellKind::default(),
            hidden_size: default_hidden_size(),
        }
    }
}

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

impl ForecasterConfig {
    pub fn init(&self, inputs: usize, device: &Device) -> Forecaster {
        let recurrent = match self.cell {
            CellKind::Lstm => {
                RecurrentLayer::Lstm(LstmConfig::new(inputs, self.hidden_size, true).init(device))
            }
            CellKind::Gru => {
                RecurrentLayer::Gru(GruConfig::new(inputs, self.hidden_size, true).init(device))
            }
        };
        Forecaster {
            recurrent,
            head: LinearConfig::new(self.hidden_size, inputs).init(device),
        }
    }
}

impl Forecaster {
    /// inputs [batch, time, inputs] -> next-step predictions [batch, time, inputs]
    pub fn forward(&self, inputs: Tensor<3>) -> Tensor<3> {
        let hidden = match &self.recurrent {
            RecurrentLayer::Lstm(lstm) => lstm.forward(inputs, None).0,
            RecurrentLayer::Gru(gru) => gru.forward(inputs, None),
        };
        // [batch, time, hidden]
        self.head.forward(hidden)
    }

    /// Mean squared error of the predictions for steps `burn_in + 1 ..`, each
    /// made from the steps before it.
    /// sequences [batch, time, inputs] -> scalar
    pub fn loss(&self, sequences: Tensor<3>, burn_in: usize) -> Tensor<1> {
        let [batch, time, inputs] = sequences.dims();
        let predictions = self.forward(sequences.clone().slice([0..batch, 0..time - 1, 0..inputs]));
        let predicted = predictions.slice([0..batch, burn_in..time - 1, 0..inputs]);
        let actual = sequences.slice([0..batch, burn_in + 1..time, 0..inputs]);
        (predicted - actual).square().mean()
    }
}
