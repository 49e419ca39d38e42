//! LSTM and GRU cells, one step at a time, for a batch of keys.
//!
//! Each key keeps its recurrent state between events; a step advances it by
//! one event, so the cost per event does not grow with the window.
//! Gate equations and order follow burn's `Lstm` and `Gru` (reset after the
//! hidden product), so weights exported from training score identically.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewMut2, s};

use super::activation::{sigmoid, tanh, widest_simd};
use super::linalg::matmul_into;
use crate::codec::{Decode, DecodeError, Encode};

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
                matmul_into(input, cell.w_input.view(), gates.view_mut(), false);
                matmul_into(
                    state.slice(s![.., ..hidden]),
                    cell.w_hidden.view(),
                    gates.view_mut(),
                    true,
                );
                let gates = gates.into_slice().expect("contiguous gates");
                let state = state.as_slice_mut().expect("contiguous state");
                lstm_update(
                    gates,
                    cell.bias.as_slice().expect("contiguous bias"),
                    state,
                    hidden,
                );
            }
            RecurrentCell::Gru(cell) => {
                let mut gx = CellScratch::sized(&mut scratch.input_gates, batch, 3 * hidden);
                matmul_into(input, cell.w_input.view(), gx.view_mut(), false);
                let mut gh = CellScratch::sized(&mut scratch.hidden_gates, batch, 3 * hidden);
                matmul_into(state.view(), cell.w_hidden.view(), gh.view_mut(), false);
                let gx = gx.into_slice().expect("contiguous gates");
                let gh = gh.into_slice().expect("contiguous gates");
                let state = state.as_slice_mut().expect("contiguous state");
                let biases =
                    [&cell.b_input, &cell.b_hidden].map(|b| b.as_slice().expect("contiguous bias"));
                gru_update(gx, gh, biases[0], biases[1], state, hidden);
            }
        }
    }

    /// The hidden part of a state matrix: [batch, hidden].
    pub fn hidden_of<'a>(&self, state: ArrayView2<'a, f32>) -> ArrayView2<'a, f32> {
        state.slice_move(s![.., ..self.hidden()])
    }
}

widest_simd! {
    /// Adds the biases, applies the LSTM gate activations and updates the
    /// state of every row.
    /// gates [batch * 4 * hidden] (i f g o products), bias [4 * hidden],
    /// state [batch * 2 * hidden] ([h | c])
    fn lstm_update(gates: &mut [f32], bias: &[f32], state: &mut [f32], hidden: usize) {
        for (g, hc) in gates.chunks_exact_mut(4 * hidden).zip(state.chunks_exact_mut(2 * hidden)) {
            g.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
            let (i, rest) = g.split_at(hidden);
            let (f, rest) = rest.split_at(hidden);
            let (cand, o) = rest.split_at(hidden);
            let (h, c) = hc.split_at_mut(hidden);
            for j in 0..hidden {
                c[j] = sigmoid(f[j]) * c[j] + sigmoid(i[j]) * tanh(cand[j]);
                h[j] = sigmoid(o[j]) * tanh(c[j]);
            }
        }
    }
}

widest_simd! {
    /// Adds the biases, applies the GRU gates and updates the state of
    /// every row.
    /// gx, gh [batch * 3 * hidden] (z r n products of input and hidden),
    /// bx, bh [3 * hidden], state [batch * hidden]
    fn gru_update(gx: &mut [f32], gh: &mut [f32], bx: &[f32], bh: &[f32], state: &mut [f32], hidden: usize) {
        for ((x, g), h) in gx.chunks_exact_mut(3 * hidden).zip(gh.chunks_exact_mut(3 * hidden)).zip(state.chunks_exact_mut(hidden)) {
            x.iter_mut().zip(bx).for_each(|(v, b)| *v += b);
            g.iter_mut().zip(bh).for_each(|(v, b)| *v += b);
            let (xz, rest) = x.split_at(hidden);
            let (xr, xn) = rest.split_at(hidden);
            let (gz, rest) = g.split_at(hidden);
            let (gr, gn) = rest.split_at(hidden);
            for j in 0..hidden {
                let z = sigmoid(xz[j] + gz[j]);
                let reset = sigmoid(xr[j] + gr[j]);
                let candidate = tanh(xn[j] + reset * gn[j]);
                h[j] = z * (h[j] - candidate) + candidate;
            }
        }
    }
}

impl Encode for RecurrentCell {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            RecurrentCell::Lstm(cell) => {
                0u8.encode(out);
                cell.w_input.encode(out);
                cell.w_hidden.encode(out);
                cell.bias.encode(out);
            }
            RecurrentCell::Gru(cell) => {
                1u8.encode(out);
                cell.w_input.encode(out);
                cell.w_hidden.encode(out);
                cell.b_input.encode(out);
                cell.b_hidden.encode(out);
            }
        }
    }
}

impl Decode for RecurrentCell {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let (cell, gates) = match u8::decode(input)? {
            0 => (
                RecurrentCell::Lstm(LstmCell {
                    w_input: Array2::decode(input)?,
                    w_hidden: Array2::decode(input)?,
                    bias: Array1::decode(input)?,
                }),
                4,
            ),
            1 => (
                RecurrentCell::Gru(GruCell {
                    w_input: Array2::decode(input)?,
                    w_hidden: Array2::decode(input)?,
                    b_input: Array1::decode(input)?,
                    b_hidden: Array1::decode(input)?,
                }),
                3,
            ),
            other => {
                return Err(DecodeError::invalid(
                    "recurrent cell kind",
                    other.to_string(),
                ));
            }
        };
        let (w_input, w_hidden, biases) = match &cell {
            RecurrentCell::Lstm(c) => (&c.w_input, &c.w_hidden, vec![c.bias.len()]),
            RecurrentCell::Gru(c) => (
                &c.w_input,
                &c.w_hidden,
                vec![c.b_input.len(), c.b_hidden.len()],
            ),
        };
        let hidden = w_hidden.nrows();
        let width = gates * hidden;
        let consistent = hidden > 0
            && w_input.nrows() > 0
            && w_input.ncols() == width
            && w_hidden.ncols() == width
            && biases.iter().all(|&b| b == width);
        if !consistent {
            return Err(DecodeError::invalid(
                "recurrent cell",
                format!(
                    "weights {:?} and {:?} for a hidden state of {hidden}",
                    w_input.dim(),
                    w_hidden.dim()
                ),
            ));
        }
        Ok(cell)
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
