//! The convolutional classifier: blocks of convolution, batch norm, ReLU,
//! 2x2 max pooling and dropout, then dense layers to one logit per class.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

use crate::vision::config::CnnConfig;

/// The shape a network is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CnnShape {
    pub channels: usize,
    pub side: usize,
    pub classes: usize,
}

#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: BatchNorm,
    pool: MaxPool2d,
    dropout: Dropout,
}

impl ConvBlock {
    /// [batch, in, side, side] -> [batch, out, side / 2, side / 2]
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.norm.forward(self.conv.forward(x)));
        self.dropout.forward(self.pool.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Cnn {
    blocks: Vec<ConvBlock>,
    hidden: Vec<Linear>,
    dropout: Dropout,
    output: Linear,
}

impl CnnConfig {
    pub fn init(&self, shape: CnnShape, device: &Device) -> Cnn {
        let conv_channels = self.conv_channels(shape.side as u32);
        let mut blocks = Vec::with_capacity(conv_channels.len());
        let mut channels = shape.channels;
        let mut side = shape.side;
        for &out in &conv_channels {
            blocks.push(ConvBlock {
                conv: Conv2dConfig::new([channels, out], [self.kernel_size; 2])
                    .with_padding(PaddingConfig2d::Same)
                    .init(device),
                norm: BatchNormConfig::new(out).init(device),
                pool: MaxPool2dConfig::new([2, 2]).init(),
                dropout: DropoutConfig::new(self.dropout).init(),
            });
            channels = out;
            side /= 2;
        }
        let mut width = channels * side * side;
        let mut hidden = Vec::with_capacity(self.dense_widths.len());
        for &next in &self.dense_widths {
            hidden.push(LinearConfig::new(width, next).init(device));
            width = next;
        }
        Cnn {
            blocks,
            hidden,
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(width, shape.classes).init(device),
        }
    }
}

impl Cnn {
    /// images [batch, channels, side, side] -> logits [batch, classes]
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for block in &self.blocks {
            x = block.forward(x);
        }
        let mut x: Tensor<2> = x.flatten(1, 3);
        for layer in &self.hidden {
            x = self.dropout.forward(relu(layer.forward(x)));
        }
        self.output.forward(x)
    }

    /// images [batch, channels, side, side] -> class probabilities [batch, classes]
    pub fn probabilities(&self, images: Tensor<4>) -> Tensor<2> {
        softmax(self.forward(images), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_networks_fit_small_and_large_images() {
        let device = Device::flex();
        for (channels, side) in [(1, 28), (3, 64), (3, 128), (1, 8)] {
            let shape = CnnShape {
                channels,
                side,
                classes: 4,
            };
            let model = CnnConfig::default().init(shape, &device);
            let images = Tensor::<4>::zeros([2, channels, side, side], &device);
            assert_eq!(model.probabilities(images).dims(), [2, 4], "{side} px");
        }
    }
}
