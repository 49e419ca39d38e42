//! The reconstruction autoencoder: squeezes a window of inputs through a
//! narrow code and rebuilds it; windows unlike the training data rebuild badly.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use tidewatch_stream::config::AutoencoderConfig;
use tidewatch_stream::infer::activation::Activation;

#[derive(Module, Debug)]
pub struct Autoencoder {
    pub layers: Vec<Linear>,
    #[module(skip)]
    pub activation: Activation,
}

impl Autoencoder {
    /// An autoencoder of shape `config` over windows of `window_inputs`
    /// values, freshly initialised.
    pub fn init(config: &AutoencoderConfig, window_inputs: usize, device: &Device) -> Autoencoder {
        let widths = config.widths(window_inputs);
        Autoencoder {
            layers: widths
                .windows(2)
                .map(|pair| LinearConfig::new(pair[0], pair[1]).init(device))
                .collect(),
            activation: config.activation,
        }
    }

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
