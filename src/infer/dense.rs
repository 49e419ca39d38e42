//! Dense layers and stacks of them (the autoencoder, forecast heads).

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, s};
use serde::{Deserialize, Serialize};

use super::activation::Activation;
use super::linalg::{fill_rows, matmul_into};

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

    /// input [batch, inputs] -> out [batch, outputs]
    pub fn forward_into(&self, input: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
        fill_rows(out.view_mut(), self.bias.view());
        matmul_into(input, self.weight.view(), out.view_mut(), true);
        if self.activation != Activation::Identity {
            for mut row in out.rows_mut() {
                self.activation.apply(
                    row.as_slice_mut()
                        .expect("rows of a standard-layout buffer"),
                );
            }
        }
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

    /// input [batch, inputs] -> out [batch, outputs]; `scratch` is resized as needed.
    pub fn forward_into(
        &self,
        input: ArrayView2<f32>,
        out: ArrayViewMut2<f32>,
        scratch: &mut StackScratch,
    ) {
        let batch = input.nrows();
        let widest = self.layers.iter().map(Dense::outputs).max().unwrap_or(0);
        for buffer in &mut scratch.buffers {
            if buffer.nrows() < batch || buffer.ncols() < widest {
                *buffer = Array2::zeros((batch, widest));
            }
        }
        let [current, next] = &mut scratch.buffers;
        let mut out = out;
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            let source = match i {
                0 => input.view(),
                _ => current.slice(s![..batch, ..layer.inputs()]),
            };
            if i == last {
                layer.forward_into(source, out.view_mut());
            } else {
                layer.forward_into(source, next.slice_mut(s![..batch, ..layer.outputs()]));
                std::mem::swap(current, next);
            }
        }
    }
}

/// Two ping-pong buffers for the hidden activations of a [`DenseStack`].
#[derive(Debug, Default, Clone)]
pub struct StackScratch {
    buffers: [Array2<f32>; 2],
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
