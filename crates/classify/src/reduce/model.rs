//! The autoencoder: an encoder network from the inputs through the hidden
//! widths to a k-unit code (linear, so that codes are not clipped), and a
//! decoder from the code back through the widths reversed.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::tabular::config::MlpConfig;
use crate::tabular::model::Mlp;

#[derive(Module, Debug)]
pub struct Autoencoder {
    encoder: Mlp,
    decoder: Mlp,
}

impl Autoencoder {
    pub fn init(config: &MlpConfig, inputs: usize, code: usize, device: &Device) -> Autoencoder {
        let mirror = MlpConfig {
            hidden_widths: config.hidden_widths.iter().rev().copied().collect(),
            ..config.clone()
        };
        Autoencoder {
            encoder: config.init(inputs, code, device),
            decoder: mirror.init(code, inputs, device),
        }
    }

    /// [batch, inputs] -> [batch, code]
    pub fn encode(&self, x: Tensor<2>) -> Tensor<2> {
        self.encoder.forward(x)
    }

    /// [batch, code] -> [batch, inputs]
    pub fn decode(&self, code: Tensor<2>) -> Tensor<2> {
        self.decoder.forward(code)
    }

    /// [batch, inputs] -> [batch, inputs]
    pub fn reconstruct(&self, x: Tensor<2>) -> Tensor<2> {
        self.decode(self.encode(x))
    }
}
