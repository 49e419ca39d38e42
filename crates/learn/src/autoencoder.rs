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
    /// For each input, whether it is rebuilt relative to its window's mean
    /// (`level_relative`).
    #[module(skip)]
    pub centred_inputs: Vec<bool>,
}

impl Autoencoder {
    /// An autoencoder of shape `config` over windows of `window_len` steps
    /// of the inputs `measured` describes, freshly initialised.
    pub fn init(
        config: &AutoencoderConfig,
        window_len: usize,
        measured: &[bool],
        device: &Device,
    ) -> Autoencoder {
        let widths = config.widths(window_len * measured.len());
        Autoencoder {
            layers: widths
                .windows(2)
                .map(|pair| LinearConfig::new(pair[0], pair[1]).init(device))
                .collect(),
            activation: config.activation,
            centred_inputs: config.centred_inputs(measured),
        }
    }

    /// windows [batch, window * inputs] -> reconstructions, same shape;
    /// centred inputs are rebuilt from the window less its mean, and the
    /// mean is added back.
    pub fn forward(&self, windows: Tensor<2>) -> Tensor<2> {
        if !self.centred_inputs.iter().any(|&c| c) {
            return self.forward_stack(windows);
        }
        let [batch, width] = windows.dims();
        let inputs = self.centred_inputs.len();
        let steps = [batch, width / inputs, inputs];
        let mask: Vec<f32> = self
            .centred_inputs
            .iter()
            .map(|&c| if c { 1.0 } else { 0.0 })
            .collect();
        let mask =
            Tensor::<1>::from_floats(mask.as_slice(), &windows.device()).reshape([1, 1, inputs]);
        let windows = windows.reshape(steps);
        // [batch, 1, inputs]
        let means = windows.clone().mean_dim(1) * mask;
        let rebuilt = self.forward_stack((windows - means.clone()).reshape([batch, width]));
        (rebuilt.reshape(steps) + means).reshape([batch, width])
    }

    /// The dense layers alone.
    /// windows [batch, window * inputs] -> same shape
    fn forward_stack(&self, windows: Tensor<2>) -> Tensor<2> {
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
