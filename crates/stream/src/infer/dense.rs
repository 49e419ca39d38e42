//! Dense layers and stacks of them (the autoencoder, forecast heads).

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::linalg::matmul_into;
use crate::codec::{Decode, DecodeError, Encode};

/// `y = act(x · W + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    /// [inputs, outputs]
    pub weight: Array2<f32>,
    /// [outputs]
    pub bias: Array1<f32>,
    pub activation: Activation,
}

impl Dense {
    pub fn inputs(&self) -> usize {
        self.weight.nrows()
    }

    pub fn outputs(&self) -> usize {
        self.weight.ncols()
    }

    /// input [batch, inputs] -> out [batch, outputs] (row-major)
    pub fn forward_into(&self, input: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        matmul_into(input, self.weight.view(), out.view_mut(), false);
        let rows = out.as_slice_mut().expect("row-major output");
        let bias = self.bias.as_slice().expect("contiguous bias");
        self.activation.apply_with_bias(rows, bias);
    }
}

/// Layer sizes and activations of a dense stack, without weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseShape {
    /// Widths from input to output: `[512, 128, 32, 128, 512]` is four layers.
    pub widths: Vec<usize>,
    /// Activation after every layer but the last, which is linear.
    pub hidden_activation: Activation,
}

/// Dense layers applied in order, with reusable scratch space.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseStack {
    pub layers: Vec<Dense>,
}

impl DenseStack {
    pub fn inputs(&self) -> usize {
        self.layers.first().map_or(0, Dense::inputs)
    }

    pub fn outputs(&self) -> usize {
        self.layers.last().map_or(0, Dense::outputs)
    }

    /// input [batch, inputs] -> out [batch, outputs] (row-major);
    /// `scratch` is resized as needed.
    pub fn forward_into(
        &self,
        input: ArrayView2<f32>,
        out: ArrayViewMut2<f32>,
        scratch: &mut StackScratch,
    ) {
        let batch = input.nrows();
        let (last, hidden) = self.layers.split_last().expect("a stack has layers");
        scratch
            .hidden
            .resize_with(hidden.len(), || Array2::zeros((0, 0)));
        for (layer, buffer) in hidden.iter().zip(&mut scratch.hidden) {
            if buffer.dim() != (batch, layer.outputs()) {
                *buffer = Array2::zeros((batch, layer.outputs()));
            }
        }
        for (i, layer) in hidden.iter().enumerate() {
            let (done, rest) = scratch.hidden.split_at_mut(i);
            let source = done.last().map_or(input.view(), Array2::view);
            layer.forward_into(source, rest[0].view_mut());
        }
        let source = scratch.hidden.last().map_or(input.view(), Array2::view);
        last.forward_into(source, out);
    }
}

/// One buffer per hidden layer of a [`DenseStack`].
#[derive(Debug, Default, Clone)]
pub struct StackScratch {
    hidden: Vec<Array2<f32>>,
}

impl Encode for Dense {
    fn encode(&self, out: &mut Vec<u8>) {
        self.weight.encode(out);
        self.bias.encode(out);
        self.activation.encode(out);
    }
}

impl Decode for Dense {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let dense = Dense {
            weight: Array2::decode(input)?,
            bias: Array1::decode(input)?,
            activation: Activation::decode(input)?,
        };
        if dense.bias.len() != dense.outputs() {
            return Err(DecodeError::invalid(
                "dense layer",
                format!(
                    "{} biases for {} outputs",
                    dense.bias.len(),
                    dense.outputs()
                ),
            ));
        }
        Ok(dense)
    }
}

impl Encode for DenseStack {
    fn encode(&self, out: &mut Vec<u8>) {
        self.layers.encode(out);
    }
}

impl Decode for DenseStack {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let stack = DenseStack {
            layers: Vec::decode(input)?,
        };
        let chained = stack
            .layers
            .windows(2)
            .all(|pair| pair[0].outputs() == pair[1].inputs());
        if stack.layers.is_empty() || !chained {
            return Err(DecodeError::invalid(
                "dense stack",
                format!("{} layers whose widths do not chain", stack.layers.len()),
            ));
        }
        Ok(stack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn stack_matches_layer_by_layer() {
        let first = Dense {
            weight: array![[1.0, -1.0, 0.5], [2.0, 0.0, -0.5]],
            bias: array![0.1, 0.2, 0.3],
            activation: Activation::Relu,
        };
        let second = Dense {
            weight: array![[1.0], [1.0], [2.0]],
            bias: array![-0.5],
            activation: Activation::Identity,
        };
        let input = array![[1.0, 2.0], [-1.0, 0.5]];
        let hidden = (input.dot(&first.weight) + &first.bias).mapv(|v: f32| v.max(0.0));
        let expected = hidden.dot(&second.weight) + &second.bias;
        let stack = DenseStack {
            layers: vec![first, second],
        };
        let mut out = Array2::zeros((2, 1));
        stack.forward_into(input.view(), out.view_mut(), &mut StackScratch::default());
        assert!(out.abs_diff_eq(&expected, 1e-6), "{out} vs {expected}");
    }
}
