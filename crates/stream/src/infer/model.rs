//! The scoring model in kernel form: a recurrent forecaster (cell + head)
//! and a dense autoencoder, with the buffers a batch of events needs.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};

use super::dense::{Dense, DenseStack, StackScratch};
use super::recurrent::{CellScratch, RecurrentCell};

/// Weights of both detectors, ready for the hot path.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelModel {
    pub cell: RecurrentCell,
    /// hidden -> inputs: the forecast of the next input
    pub head: Dense,
    /// window_len * inputs -> ... -> window_len * inputs
    pub autoencoder: DenseStack,
    pub window_len: usize,
}

/// Reusable buffers for scoring batches.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    cell: CellScratch,
    stack: StackScratch,
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
        self.autoencoder
            .forward_into(windows, out, &mut scratch.stack);
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
