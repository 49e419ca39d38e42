//! The multilayer perceptron: per hidden width a block of linear layer,
//! normalisation, activation and dropout, then a linear output layer.
//! `reduce`'s autoencoder is two of them; a tabular model is an
//! [`Ensemble`] of them.

use burn::module::Module;
use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear,
    LinearConfig,
};
use burn::tensor::{Device, Tensor};

use crate::tabular::config::{ActivationKind, MlpConfig, NormKind};

#[derive(Module, Debug)]
pub struct Block {
    linear: Linear,
    batch_norm: Option<BatchNorm>,
    layer_norm: Option<LayerNorm>,
    activation: Activation,
    dropout: Dropout,
}

impl Block {
    /// [batch, in] -> [batch, out]
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = self.linear.forward(x);
        if let Some(norm) = &self.batch_norm {
            x = norm.forward(x);
        }
        if let Some(norm) = &self.layer_norm {
            x = norm.forward(x);
        }
        self.dropout.forward(self.activation.forward(x))
    }
}

#[derive(Module, Debug)]
pub struct Mlp {
    blocks: Vec<Block>,
    output: Linear,
}

impl MlpConfig {
    /// A network from `inputs` to `outputs` units.
    pub fn init(&self, inputs: usize, outputs: usize, device: &Device) -> Mlp {
        let mut width = inputs;
        let mut blocks = Vec::with_capacity(self.hidden_widths.len());
        for &next in &self.hidden_widths {
            blocks.push(Block {
                linear: LinearConfig::new(width, next).init(device),
                batch_norm: (self.norm == NormKind::Batch)
                    .then(|| BatchNormConfig::new(next).init(device)),
                layer_norm: (self.norm == NormKind::Layer)
                    .then(|| LayerNormConfig::new(next).init(device)),
                activation: match self.activation {
                    ActivationKind::Relu => ActivationConfig::Relu,
                    ActivationKind::Gelu => ActivationConfig::Gelu,
                }
                .init(device),
                dropout: DropoutConfig::new(self.dropout).init(),
            });
            width = next;
        }
        Mlp {
            blocks,
            output: LinearConfig::new(width, outputs).init(device),
        }
    }
}

impl Mlp {
    /// [batch, inputs] -> [batch, outputs]
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        self.output.forward(x)
    }
}

/// Networks trained apart (each from its own seed, on its own validation
/// split) whose outputs are averaged: the average of several networks
/// errs less than each, since their errors are partly independent.
#[derive(Module, Debug)]
pub struct Ensemble {
    members: Vec<Mlp>,
}

impl Ensemble {
    pub fn new(members: Vec<Mlp>) -> Ensemble {
        assert!(!members.is_empty(), "an ensemble has a member");
        Ensemble { members }
    }

    /// `members` untrained networks of one shape (to load weights into).
    pub fn init(
        config: &MlpConfig,
        members: usize,
        inputs: usize,
        outputs: usize,
        device: &Device,
    ) -> Ensemble {
        Ensemble::new(
            (0..members)
                .map(|_| config.init(inputs, outputs, device))
                .collect(),
        )
    }

    /// [batch, inputs] -> [batch, outputs]: the members' mean output
    /// (values, or logits).
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let n = self.members.len() as f64;
        let sum = self
            .members
            .iter()
            .map(|m| m.forward(x.clone()))
            .reduce(|a, b| a + b)
            .expect("an ensemble has a member");
        sum / n
    }
}
