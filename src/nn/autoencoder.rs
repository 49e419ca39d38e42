//! The reconstruction autoencoder: squeezes a window of inputs through a
//! narrow code and rebuilds it; windows unlike the training data rebuild badly.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::infer::activation::Activation;

/// Shape of the autoencoder. The encoder narrows through `hidden_widths`,
/// the decoder mirrors it: widths `[128, 32]` over a window of 64 x 8 inputs
/// give 512-128-32-128-512.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// Encoder widths after the input, narrowest (the code) last.
    #[serde(default = "default_hidden_widths")]
    pub hidden_widths: Vec<usize>,
    /// Activation between layers (the output layer is linear).
    #[serde(default)]
    pub activation: Activation,
}

fn default_hidden_widths() -> Vec<usize> {
    vec![128, 32]
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        AutoencoderConfig {
            hidden_widths: default_hidden_widths(),
            activation: Activation::default(),
        }
    }
}

impl AutoencoderConfig {
    /// All layer widths from input to output.
    pub fn widths(&self, window_inputs: usize) -> Vec<usize> {
        let mut widths = vec![window_inputs];
        widths.extend(&self.hidden_widths);
        widths.extend(self.hidden_widths.iter().rev().skip(1));
        widths.push(window_inputs);
        widths
    }

    pub fn init(&self, window_inputs: usize, device: &Device) -> Autoencoder {
        let widths = self.widths(window_inputs);
        Autoencoder {
            layers: widths
                .windows(2)
                .map(|pair| LinearConfig::new(pair[0], pair[1]).init(device))
                .collect(),
            activation: self.activation,
        }
    }
}

#[derive(Module, Debug)]
pub struct Autoencoder {
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: Activation,
}

impl Autoencoder {
    /// windows [batch, window * inputs] -> reconstructions, same shape
    pub fn forward(&self, windows: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut x = windows;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(x);
            if i < last {
                x = match self.activation {
                    Activation::Relu => burn::tensor::activation::relu(x),
                    Activation::Tanh => x.tanh(),
                    Activation::Identity => x,
                };
            }
        }
        x
    }

    /// windows [batch, window * inputs] -> scalar mean squared reconstruction error
    pub fn loss(&self, windows: Tensor<2>) -> Tensor<1> {
        (self.forward(windows.clone()) - windows).square().mean()
    }
}
