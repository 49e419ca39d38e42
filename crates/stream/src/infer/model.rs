//! The scoring model in kernel form: one or more members, each a recurrent
//! forecaster (cell + head) and a dense autoencoder, with the buffers a
//! batch of events needs. Members' forecasts and reconstructions are
//! averaged, so the detectors downstream see one model.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, s};

use super::dense::{Dense, DenseStack, StackScratch};
use super::recurrent::{CellScratch, RecurrentCell};

/// Weights of both detectors, ready for the hot path.
#[derive(Debug, Clone, PartialEq)]
pub struct KernelModel {
    /// At least one; all of the same shape. Members trained from different
    /// seeds average out what a single training run happened to learn.
    pub members: Vec<Member>,
    pub window_len: usize,
}

/// One trained pair of models.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub cell: RecurrentCell,
    /// hidden -> inputs: the forecast of the next input
    pub head: Dense,
    /// window_len * inputs -> ... -> window_len * inputs
    pub autoencoder: DenseStack,
}

/// Reusable buffers for scoring batches.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    cell: CellScratch,
    stack: StackScratch,
    /// One member's state, contiguous: [batch, member state width]
    member_state: Array2<f32>,
    /// One member's forecasts or reconstructions: [batch, outputs]
    member_out: Array2<f32>,
}

impl Scratch {
    fn sized(buffer: &mut Array2<f32>, rows: usize, cols: usize) -> &mut Array2<f32> {
        if buffer.dim() != (rows, cols) {
            *buffer = Array2::zeros((rows, cols));
        }
        buffer
    }
}

impl KernelModel {
    pub fn inputs(&self) -> usize {
        self.members[0].cell.inputs()
    }

    /// Floats of recurrent state per key: the members' states side by side.
    pub fn state_width(&self) -> usize {
        self.members.iter().map(|m| m.cell.state_width()).sum()
    }

    /// Each member with the columns of its state.
    fn state_columns(&self) -> impl Iterator<Item = (&Member, std::ops::Range<usize>)> {
        self.members.iter().scan(0, |start, member| {
            let columns = *start..*start + member.cell.state_width();
            *start = columns.end;
            Some((member, columns))
        })
    }

    /// Forecast of each row's next input from its recurrent state.
    /// state [batch, state_width] -> out [batch, inputs]
    pub fn forecast_into(
        &self,
        state: ArrayView2<f32>,
        mut out: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
    ) {
        if let [member] = self.members.as_slice() {
            member.head.forward_into(member.cell.hidden_of(state), out);
            return;
        }
        out.fill(0.0);
        let buffer = Scratch::sized(&mut scratch.member_out, state.nrows(), self.inputs());
        for (member, columns) in self.state_columns() {
            let member_state = state.slice(s![.., columns]);
            member
                .head
                .forward_into(member.cell.hidden_of(member_state), buffer.view_mut());
            out += &*buffer;
        }
        out /= self.members.len() as f32;
    }

    /// Advances each row's recurrent state by its input.
    /// inputs [batch, inputs], state [batch, state_width]
    pub fn advance(
        &self,
        inputs: ArrayView2<f32>,
        mut state: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
    ) {
        if let [member] = self.members.as_slice() {
            member.cell.step(inputs, state, &mut scratch.cell);
            return;
        }
        for (member, columns) in self.state_columns() {
            // A member's columns are strided in the shared state; the cell
            // steps a contiguous copy.
            let buffer = Scratch::sized(&mut scratch.member_state, state.nrows(), columns.len());
            buffer.assign(&state.slice(s![.., columns.clone()]));
            member
                .cell
                .step(inputs, buffer.view_mut(), &mut scratch.cell);
            state.slice_mut(s![.., columns]).assign(&*buffer);
        }
    }

    /// windows [batch, window_len * inputs] -> out, same shape
    pub fn reconstruct_into(
        &self,
        windows: ArrayView2<f32>,
        mut out: ArrayViewMut2<f32>,
        scratch: &mut Scratch,
    ) {
        if let [member] = self.members.as_slice() {
            member
                .autoencoder
                .forward_into(windows, out, &mut scratch.stack);
            return;
        }
        out.fill(0.0);
        let buffer = Scratch::sized(&mut scratch.member_out, windows.nrows(), windows.ncols());
        for member in &self.members {
            member
                .autoencoder
                .forward_into(windows, buffer.view_mut(), &mut scratch.stack);
            out += &*buffer;
        }
        out /= self.members.len() as f32;
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
            self.forecast_into(state.view(), out.slice_mut(s![t..=t, ..]), &mut scratch);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2};

    use super::*;
    use crate::infer::activation::Activation;
    use crate::infer::recurrent::LstmCell;

    /// A member with weights drawn from `seed`: inputs 2, hidden 3, window 2.
    fn member(seed: u32) -> Member {
        let value = |i: usize| ((i as u32 * 7919 + seed * 104_729) % 997) as f32 / 997.0 - 0.5;
        let matrix = |rows: usize, cols: usize, at: usize| {
            Array2::from_shape_fn((rows, cols), |(r, c)| value(at + r * cols + c))
        };
        let dense = |from: usize, to: usize, at: usize, activation| Dense {
            weight: matrix(from, to, at),
            bias: Array1::from_shape_fn(to, |j| value(at + 500 + j)),
            activation,
        };
        Member {
            cell: RecurrentCell::Lstm(LstmCell {
                w_input: matrix(2, 12, 0),
                w_hidden: matrix(3, 12, 100),
                bias: Array1::from_shape_fn(12, |j| value(200 + j)),
            }),
            head: dense(3, 2, 300, Activation::Identity),
            autoencoder: DenseStack {
                layers: vec![
                    dense(4, 2, 400, Activation::Relu),
                    dense(2, 4, 600, Activation::Identity),
                ],
            },
        }
    }

    fn model(members: Vec<Member>) -> KernelModel {
        KernelModel {
            members,
            window_len: 2,
        }
    }

    #[test]
    fn an_ensemble_averages_what_its_members_predict_alone() {
        let (a, b) = (model(vec![member(1)]), model(vec![member(2)]));
        let both = model(vec![member(1), member(2)]);
        assert_eq!(both.state_width(), a.state_width() + b.state_width());
        let inputs = Array2::from_shape_fn((3, 2), |(r, c)| r as f32 - c as f32 * 0.5);
        let windows = Array2::from_shape_fn((3, 4), |(r, c)| (r * 4 + c) as f32 * 0.1 - 0.6);
        let mut scratch = Scratch::default();
        let mut states = [a.state_width(), b.state_width(), both.state_width()]
            .map(|width| Array2::<f32>::zeros((3, width)));
        let mut outs = [(); 3].map(|_| Array2::<f32>::zeros((3, 2)));
        let mut rebuilt = [(); 3].map(|_| Array2::<f32>::zeros((3, 4)));
        for step in 0..3 {
            let inputs = &inputs * (step as f32 + 1.0);
            for (i, m) in [&a, &b, &both].into_iter().enumerate() {
                m.advance(inputs.view(), states[i].view_mut(), &mut scratch);
                m.forecast_into(states[i].view(), outs[i].view_mut(), &mut scratch);
                m.reconstruct_into(windows.view(), rebuilt[i].view_mut(), &mut scratch);
            }
            // Each member's state evolves as it would alone.
            let width = a.state_width();
            assert_eq!(states[2].slice(s![.., ..width]), states[0]);
            assert_eq!(states[2].slice(s![.., width..]), states[1]);
            for (single, ensemble) in [(&outs, &outs[2]), (&rebuilt, &rebuilt[2])] {
                let mean = (&single[0] + &single[1]) / 2.0;
                let gap = (&mean - ensemble).iter().fold(0f32, |m, d| m.max(d.abs()));
                assert!(gap < 1e-6, "step {step}: {gap}");
                assert!(single[0] != single[1], "the members differ");
            }
        }
    }
}
