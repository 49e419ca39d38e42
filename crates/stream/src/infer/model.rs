//! The scoring model in kernel form: a recurrent forecaster (cell + head)
//! and a dense autoencoder, with the buffers a batch of events needs.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};

use super::dense::{Dense, DenseStack, StackScratch};
use super::recurrent::{CellScratch, RecurrentCell};
use crate::codec::{Decode, DecodeError, Encode};

/// Weights of both detectors, ready for the hot path.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelModel {
    pub cell: RecurrentCell,
    /// hidden -> inputs: the forecast of the next input
    pub head: Dense,
    /// window_len * inputs -> ... -> window_len * inputs
    pub autoencoder: DenseStack,
    pub window_len: usize,
    /// For each input, whether the autoencoder sees it relative to its
    /// mean over the window (`level_relative`); empty or all false: none.
    pub centred_inputs: Vec<bool>,
}

/// Reusable buffers for scoring batches.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    cell: CellScratch,
    stack: StackScratch,
    /// [batch, window_len * inputs]: windows with centred inputs at zero mean
    centred: Array2<f32>,
    /// [batch, inputs]: each window's mean of its centred inputs, 0 for the others
    means: Array2<f32>,
}

impl KernelModel {
    pub fn inputs(&self) -> usize {
        self.cell.inputs()
    }

    pub fn state_width(&self) -> usize {
        self.cell.state_width()
    }

    /// Forecast of each row's next input from its recurrent state.
    /// state [batch, state_width] -> out [batch, inputs]
    pub fn forecast_into(&self, state: ArrayView2<f32>, out: ArrayViewMut2<f32>) {
        self.head.forward_into(self.cell.hidden_of(state), out);
    }

    /// Advances each row's recurrent state by its input.
    /// inputs [batch, inputs], state [batch, state_width]
    pub fn advance(
        &self,
        inputs: ArrayView2<f32>,
        state: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
    ) {
        self.cell.step(inputs, state, &mut scratch.cell);
    }

    /// windows [batch, window_len * inputs] -> out, same shape
    pub fn reconstruct_into(
        &self,
        windows: ArrayView2<f32>,
        out: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
    ) {
        reconstruct(
            &self.autoencoder,
            &self.centred_inputs,
            windows,
            out,
            scratch,
        );
    }

    /// Runs the forecaster over a whole sequence from a zero state, for
    /// checks and calibration.
    /// sequence [time, inputs] -> predictions of the next input [time, inputs]
    pub fn forecast_sequence(&self, sequence: ArrayView2<f32>) -> Array2<f32> {
        let mut state = Array2::zeros((1, self.state_width()));
        let mut out = Array2::zeros(sequence.raw_dim());
        let mut scratch = Scratch::default();
        for t in 0..sequence.nrows() {
            self.advance(
                sequence.slice(s![t..=t, ..]),
                state.view_mut(),
                &mut scratch,
            );
            self.forecast_into(state.view(), out.slice_mut(s![t..=t, ..]));
        }
        out
    }
}

/// Runs an autoencoder over windows. Centred inputs are rebuilt from the
/// window less its mean, and the mean is added back, so `out` compares
/// with `windows` either way.
/// windows [batch, window_len * inputs] -> out, same shape
pub fn reconstruct(
    autoencoder: &DenseStack,
    centred_inputs: &[bool],
    windows: ArrayView2<f32>,
    mut out: ArrayViewMut2<f32>,
    scratch: &mut Scratch,
) {
    if !centred_inputs.iter().any(|&c| c) {
        autoencoder.forward_into(windows, out, &mut scratch.stack);
        return;
    }
    let inputs = centred_inputs.len();
    let batch = windows.nrows();
    if scratch.centred.dim() != windows.dim() {
        scratch.centred = Array2::zeros(windows.raw_dim());
    }
    if scratch.means.dim() != (batch, inputs) {
        scratch.means = Array2::zeros((batch, inputs));
    }
    for ((window, mut centred), mut means) in windows
        .rows()
        .into_iter()
        .zip(scratch.centred.rows_mut())
        .zip(scratch.means.rows_mut())
    {
        let window = window.to_slice().expect("row-major windows");
        let centred = centred.as_slice_mut().expect("row-major scratch");
        let means = means.as_slice_mut().expect("row-major scratch");
        window_means(window, centred_inputs, means);
        for (from, to) in window
            .chunks_exact(inputs)
            .zip(centred.chunks_exact_mut(inputs))
        {
            for ((value, centred), mean) in from.iter().zip(to).zip(&*means) {
                *centred = value - mean;
            }
        }
    }
    autoencoder.forward_into(scratch.centred.view(), out.view_mut(), &mut scratch.stack);
    for (mut rebuilt, means) in out.rows_mut().into_iter().zip(scratch.means.rows()) {
        let means = means.as_slice().expect("row-major scratch");
        let rebuilt = rebuilt.as_slice_mut().expect("row-major output");
        for step in rebuilt.chunks_exact_mut(inputs) {
            for (value, mean) in step.iter_mut().zip(means) {
                *value += mean;
            }
        }
    }
}

/// Mean of each centred input over a window laid out step by step
/// (`window[t * inputs + i]`); 0 for inputs that are not centred.
/// window [window_len * inputs], centred [inputs] -> means [inputs]
fn window_means(window: &[f32], centred: &[bool], means: &mut [f32]) {
    means.fill(0.0);
    for step in window.chunks_exact(centred.len()) {
        for (sum, &value) in means.iter_mut().zip(step) {
            *sum += value;
        }
    }
    let steps = (window.len() / centred.len()) as f32;
    for (mean, &c) in means.iter_mut().zip(centred) {
        *mean = if c { *mean / steps } else { 0.0 };
    }
}

impl Encode for KernelModel {
    fn encode(&self, out: &mut Vec<u8>) {
        self.cell.encode(out);
        self.head.encode(out);
        self.autoencoder.encode(out);
        self.window_len.encode(out);
        self.centred_inputs.encode(out);
    }
}

impl Decode for KernelModel {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let model = KernelModel {
            cell: RecurrentCell::decode(input)?,
            head: Dense::decode(input)?,
            autoencoder: DenseStack::decode(input)?,
            window_len: usize::decode(input)?,
            centred_inputs: Vec::decode(input)?,
        };
        let inputs = model.inputs();
        let window_inputs = model.window_len.checked_mul(inputs);
        let consistent = model.window_len > 0
            && model.head.inputs() == model.cell.hidden()
            && model.head.outputs() == inputs
            && window_inputs == Some(model.autoencoder.inputs())
            && window_inputs == Some(model.autoencoder.outputs())
            && (model.centred_inputs.is_empty() || model.centred_inputs.len() == inputs);
        if !consistent {
            return Err(DecodeError::invalid(
                "model",
                format!(
                    "a forecaster of {inputs} inputs, a head of {} -> {}, an autoencoder of {} -> {} over windows of {}",
                    model.head.inputs(),
                    model.head.outputs(),
                    model.autoencoder.inputs(),
                    model.autoencoder.outputs(),
                    model.window_len
                ),
            ));
        }
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infer::activation::Activation;
    use crate::infer::dense::Dense;
    use ndarray::Array1;

    /// A one-layer stack that maps every window to zeros plus a bias.
    fn constant_stack(width: usize) -> DenseStack {
        DenseStack {
            layers: vec![Dense {
                weight: Array2::zeros((width, width)),
                bias: Array1::from_iter((0..width).map(|i| i as f32 / 10.0)),
                activation: Activation::Identity,
            }],
        }
    }

    #[test]
    fn centred_inputs_are_rebuilt_around_their_window_mean_and_the_others_as_they_are() {
        // Two steps of two inputs: the first centred, the second not.
        let stack = constant_stack(4);
        let windows = Array2::from_shape_vec((1, 4), vec![5.0, 1.0, 7.0, 3.0]).unwrap();
        let mut out = Array2::zeros((1, 4));
        let mut scratch = Scratch::default();
        reconstruct(
            &stack,
            &[true, false],
            windows.view(),
            out.view_mut(),
            &mut scratch,
        );
        // Input 0's mean (6) is added back to the stack's output; input 1 has none.
        assert_eq!(out.as_slice().unwrap(), &[6.0, 0.1, 6.2, 0.3]);
        reconstruct(
            &stack,
            &[false, false],
            windows.view(),
            out.view_mut(),
            &mut scratch,
        );
        assert_eq!(out.as_slice().unwrap(), &[0.0, 0.1, 0.2, 0.3]);
    }

    #[test]
    fn a_window_shifted_in_a_centred_input_rebuilds_shifted_by_as_much() {
        let mut stack = constant_stack(6);
        stack.layers[0].weight =
            Array2::from_shape_fn((6, 6), |(i, j)| ((i * 7 + j * 3) % 5) as f32 / 4.0 - 0.5);
        let windows = Array2::from_shape_vec(
            (2, 6),
            vec![
                1.0, 2.0, 3.0, 0.5, -1.0, 2.5, //
                11.0, 2.0, 13.0, 0.5, 9.0, 2.5, // input 0 shifted by 10
            ],
        )
        .unwrap();
        let mut out = Array2::zeros((2, 6));
        reconstruct(
            &stack,
            &[true, false],
            windows.view(),
            out.view_mut(),
            &mut Scratch::default(),
        );
        for i in 0..6 {
            let shift = if i % 2 == 0 { 10.0 } else { 0.0 };
            assert!(
                (out[[1, i]] - out[[0, i]] - shift).abs() < 1e-5,
                "position {i}: {out}"
            );
        }
    }
}
