//! LSTM and GRU cells, one step at a time, for a batch of keys.
//!
//! Each key keeps its recurrent state between events; a step advances it by
//! one event, so the cost per event does not grow with the window.
//! Gate equations and order follow burn's `Lstm` and `Gru` (reset after the
//! hidden product), so weights exported from training score identically.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, Axis, s};

use super::activation::{sigmoid_in_place, tanh, tanh_in_place};
use super::linalg::{fill_rows, matmul_into};

/// LSTM cell. Gates packed in the order input, forget, cell, output.
#[derive(Debug, Clone, PartialEq)]
pub struct LstmCell {
    /// [inputs, 4 * hidden]
    pub w_input: Array2<f32>,
    /// [hidden, 4 * hidden]
    pub w_hidden: Array2<f32>,
    /// [4 * hidden], input and hidden biases summed
    pub bias: Array1<f32>,
}

/// GRU cell. Gates packed in the order update, reset, new.
#[derive(Debug, Clone, PartialEq)]
pub struct GruCell {
    /// [inputs, 3 * hidden]
    pub w_input: Array2<f32>,
    /// [hidden, 3 * hidden]
    pub w_hidden: Array2<f32>,
    /// [3 * hidden]
    pub b_input: Array1<f32>,
    /// [3 * hidden]; kept apart because the reset gate scales the hidden
    /// part of the new gate, bias included
    pub b_hidden: Array1<f32>,
}

/// A recurrent cell of either kind.
#[derive(Debug, Clone, PartialEq)]
pub enum RecurrentCell {
    Lstm(LstmCell),
    Gru(GruCell),
}

/// Gate pre-activations reused between steps.
#[derive(Debug, Default, Clone)]
pub struct CellScratch {
    input_gates: Array2<f32>,
    hidden_gates: Array2<f32>,
}

impl CellScratch {
    fn sized(buffer: &mut Array2<f32>, rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
        if buffer.nrows() < rows || buffer.ncols() != cols {
            *buffer = Array2::zeros((rows, cols));
        }
        buffer.slice_mut(s![..rows, ..])
    }
}

impl RecurrentCell {
    pub fn hidden(&self) -> usize {
        match self {
            RecurrentCell::Lstm(cell) => cell.w_hidden.nrows(),
            RecurrentCell::Gru(cell) => cell.w_hidden.nrows(),
        }
    }

    pub fn inputs(&self) -> usize {
        match self {
            RecurrentCell::Lstm(cell) => cell.w_input.nrows(),
            RecurrentCell::Gru(cell) => cell.w_input.nrows(),
        }
    }

    /// Floats of state per key: `[h | c]` for an LSTM, `[h]` for a GRU.
    pub fn state_width(&self) -> usize {
        match self {
            RecurrentCell::Lstm(_) => 2 * self.hidden(),
            RecurrentCell::Gru(_) => self.hidden(),
        }
    }

    /// Advances every row's state by one input.
    /// input [batch, inputs], state [batch, state_width] (updated in place)
    pub fn step(
        &self,
        input: ArrayView2<f32>,
        mut state: ArrayViewMut2<f32>,
        scratch: &mut CellScratch,
    ) {
        let batch = input.nrows();
        let hidden = self.hidden();
        match self {
            RecurrentCell::Lstm(cell) => {
                let mut gates = CellScratch::sized(&mut scratch.input_gates, batch, 4 * hidden);
                fill_rows(gates.view_mut(), cell.bias.view());
                matmul_into(input, cell.w_input.view(), gates.view_mut(), true);
                matmul_into(
                    state.slice(s![.., ..hidden]),
                    cell.w_hidden.view(),
                    gates.view_mut(),
                    true,
                );
                for (mut gate_row, mut state_row) in gates
                    .axis_iter_mut(Axis(0))
                    .zip(state.axis_iter_mut(Axis(0)))
                {
                    let g = gate_row.as_slice_mut().expect("contiguous gates");
                    let (ifg, o) = g.split_at_mut(3 * hidden);
                    let (i_f, cand) = ifg.split_at_mut(2 * hidden);
                    sigmoid_in_place(i_f);
                    sigmoid_in_place(o);
                    tanh_in_place(cand);
                    let (i, f) = i_f.split_at(hidden);
                    let (h, c) = state_row
                        .as_slice_mut()
                        .expect("contiguous state")
                        .split_at_mut(hidden);
                    for j in 0..hidden {
                        c[j] = f[j].mul_add(c[j], i[j] * cand[j]);
                        h[j] = o[j] * tanh(c[j]);
                    }
                }
            }
            RecurrentCell::Gru(cell) => {
                let mut gx = CellScratch::sized(&mut scratch.input_gates, batch, 3 * hidden);
                fill_rows(gx.view_mut(), cell.b_input.view());
                matmul_into(input, cell.w_input.view(), gx.view_mut(), true);
                let mut gh = CellScratch::sized(&mut scratch.hidden_gates, batch, 3 * hidden);
                fill_rows(gh.view_mut(), cell.b_hidden.view());
                matmul_into(state.view(), cell.w_hidden.view(), gh.view_mut(), true);
                for ((mut x_row, h_row), mut state_row) in gx
                    .axis_iter_mut(Axis(0))
                    .zip(gh.axis_iter(Axis(0)))
                    .zip(state.axis_iter_mut(Axis(0)))
                {
                    let x = x_row.as_slice_mut().expect("contiguous gates");
                    let hg = h_row.to_slice().expect("contiguous gates");
                    let (zr, n) = x.split_at_mut(2 * hidden);
                    for (v, w) in zr.iter_mut().zip(&hg[..2 * hidden]) {
                        *v += w;
                    }
                    sigmoid_in_place(zr);
                    let (z, r) = zr.split_at(hidden);
                    for j in 0..hidden {
                        n[j] = r[j].mul_add(hg[2 * hidden + j], n[j]);
                    }
                    tanh_in_place(n);
                    let h = state_row.as_slice_mut().expect("contiguous state");
                    for j in 0..hidden {
                        h[j] = z[j].mul_add(h[j] - n[j], n[j]);
                    }
                }
            }
        }
    }

    /// The hidden part of a state matrix: [batch, hidden].
    pub fn hidden_of<'a>(&self, state: ArrayView2<'a, f32>) -> ArrayView2<'a, f32> {
        state.slice_move(s![.., ..self.hidden()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn sig(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn lstm_step_matches_the_equations() {
        // inputs 1, hidden 1: gates i f g o
        let cell = LstmCell {
            w_input: array![[0.5, -0.5, 1.0, 0.25]],
            w_hidden: array![[0.1, 0.2, -0.3, 0.4]],
            bias: array![0.0, 1.0, 0.0, -1.0],
        };
        let (x, h, c) = (0.7f32, 0.2f32, -0.4f32);
        let i = sig(0.5 * x + 0.1 * h);
        let f = sig(-0.5 * x + 0.2 * h + 1.0);
        let g = (x - 0.3 * h).tanh();
        let o = sig(0.25 * x + 0.4 * h - 1.0);
        let c_next = f * c + i * g;
        let h_next = o * c_next.tanh();
        let mut state = array![[h, c]];
        RecurrentCell::Lstm(cell).step(
            array![[x]].view(),
            state.view_mut(),
            &mut CellScratch::default(),
        );
        assert!(
            state.abs_diff_eq(&array![[h_next, c_next]], 1e-5),
            "{state}"
        );
    }

    #[test]
    fn gru_step_matches_the_equations() {
        // inputs 1, hidden 1: gates z r n
        let cell = GruCell {
            w_input: array![[0.5, -0.5, 1.0]],
            w_hidden: array![[0.1, 0.2, -0.3]],
            b_input: array![0.1, 0.0, 0.2],
            b_hidden: array![0.0, 0.3, 0.4],
        };
        let (x, h) = (0.7f32, 0.2f32);
        let z = sig(0.5 * x + 0.1 + 0.1 * h);
        let r = sig(-0.5 * x + 0.2 * h + 0.3);
        let n = (x + 0.2 + r * (-0.3 * h + 0.4)).tanh();
        let h_next = (1.0 - z) * n + z * h;
        let mut state = array![[h]];
        RecurrentCell::Gru(cell).step(
            array![[x]].view(),
            state.view_mut(),
            &mut CellScratch::default(),
        );
        assert!((state[[0, 0]] - h_next).abs() < 1e-5, "{state} vs {h_next}");
    }
}
