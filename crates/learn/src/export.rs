//! Trained burn modules -> hot-path kernels ([`KernelModel`]), and back
//! ([`modules_from_kernels`]) for a key whose model came from a checkpoint.
//!
//! burn keeps one `Linear` per gate and per source (input, hidden); the
//! kernels pack the gates side by side so one matrix product computes them all.

use burn::module::Param;
use burn::nn::{GateController, Gru, Linear, Lstm};
use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array1, Array2, Array3, Axis, concatenate, s};

use crate::autoencoder::Autoencoder;
use crate::fit::init_seeded;
use crate::forecaster::{Forecaster, RecurrentLayer};
use tidewatch_stream::config::{AutoencoderConfig, CellKind, ForecasterConfig};
use tidewatch_stream::infer::activation::Activation;
use tidewatch_stream::infer::dense::{Dense, DenseStack};
use tidewatch_stream::infer::model::{KernelModel, Scratch, reconstruct};
use tidewatch_stream::infer::recurrent::{GruCell, LstmCell, RecurrentCell};

pub fn kernel_model(
    forecaster: &Forecaster,
    autoencoder: &Autoencoder,
    window_len: usize,
) -> KernelModel {
    KernelModel {
        cell: recurrent_cell(&forecaster.recurrent),
        head: dense(&forecaster.head, Activation::Identity),
        autoencoder: dense_stack(autoencoder),
        window_len,
        centred_inputs: autoencoder.centred_inputs.clone(),
    }
}

pub fn recurrent_cell(layer: &RecurrentLayer) -> RecurrentCell {
    match layer {
        RecurrentLayer::Lstm(lstm) => RecurrentCell::Lstm(lstm_cell(lstm)),
        RecurrentLayer::Gru(gru) => RecurrentCell::Gru(gru_cell(gru)),
    }
}

fn lstm_cell(lstm: &Lstm) -> LstmCell {
    let forget = lstm
        .forget_gate
        .as_ref()
        .expect("tidewatch builds LSTMs with a forget gate");
    let gates = [&lstm.input_gate, forget, &lstm.cell_gate, &lstm.output_gate];
    LstmCell {
        w_input: columns(gates.iter().map(|g| weight(&g.input_transform))),
        w_hidden: columns(gates.iter().map(|g| weight(&g.hidden_transform))),
        bias: Array1::from_iter(
            gates
                .iter()
                .flat_map(|g| (bias(&g.input_transform) + bias(&g.hidden_transform)).to_vec()),
        ),
    }
}

fn gru_cell(gru: &Gru) -> GruCell {
    assert!(
        gru.reset_after,
        "the GRU kernel applies the reset gate after the hidden product"
    );
    let gates = [&gru.update_gate, &gru.reset_gate, &gru.new_gate];
    GruCell {
        w_input: columns(gates.iter().map(|g| weight(&g.input_transform))),
        w_hidden: columns(gates.iter().map(|g| weight(&g.hidden_transform))),
        b_input: Array1::from_iter(gates.iter().flat_map(|g| bias(&g.input_transform).to_vec())),
        b_hidden: Array1::from_iter(
            gates
                .iter()
                .flat_map(|g| bias(&g.hidden_transform).to_vec()),
        ),
    }
}

fn dense_stack(autoencoder: &Autoencoder) -> DenseStack {
    let last = autoencoder.layers.len() - 1;
    DenseStack {
        layers: autoencoder
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let activation = if i < last {
                    autoencoder.activation
                } else {
                    Activation::Identity
                };
                dense(layer, activation)
            })
            .collect(),
    }
}

fn dense(linear: &Linear, activation: Activation) -> Dense {
    Dense {
        weight: weight(linear),
        bias: bias(linear),
        activation,
    }
}

/// [inputs, outputs]
fn weight(linear: &Linear) -> Array2<f32> {
    to_array2(linear.weight.val())
}

fn bias(linear: &Linear) -> Array1<f32> {
    match &linear.bias {
        Some(bias) => Array1::from(
            bias.val()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32 bias"),
        ),
        None => Array1::zeros(linear.weight.dims()[1]),
    }
}

pub fn to_array2(tensor: Tensor<2>) -> Array2<f32> {
    let [rows, cols] = tensor.dims();
    let values = tensor.into_data().try_to_vec::<f32>().expect("f32 weights");
    Array2::from_shape_vec((rows, cols), values).expect("shape matches data")
}

fn columns(blocks: impl Iterator<Item = Array2<f32>>) -> Array2<f32> {
    let blocks: Vec<Array2<f32>> = blocks.collect();
    let views: Vec<_> = blocks.iter().map(Array2::view).collect();
    // Row-major like every other weight matrix: the product kernels pick
    // their summation order by layout, and a bundle loads row-major.
    concatenate(Axis(1), &views)
        .expect("gates share their row count")
        .as_standard_layout()
        .into_owned()
}

/// burn modules that compute what `kernels` compute, to continue training
/// from: a key restored from a checkpoint refits from the model it scores
/// with. Shapes come from the kernels. An LSTM's input and hidden biases
/// were summed on export; the sum goes to the input side.
pub fn modules_from_kernels(kernels: &KernelModel, device: &Device) -> (Forecaster, Autoencoder) {
    let hidden = kernels.cell.hidden();
    let inputs = kernels.inputs();
    let cell = match kernels.cell {
        RecurrentCell::Lstm(_) => CellKind::Lstm,
        RecurrentCell::Gru(_) => CellKind::Gru,
    };
    let shape = ForecasterConfig {
        cell,
        hidden_size: hidden,
    };
    // Drawn under the seed lock (then overwritten), so that other keys
    // training at the same time draw what they would have alone.
    let mut forecaster = init_seeded(0, device, |d| Forecaster::init(&shape, inputs, d));
    let span = |v: &Array1<f32>, g: usize| v.slice(s![g * hidden..(g + 1) * hidden]).to_owned();
    match (&mut forecaster.recurrent, &kernels.cell) {
        (RecurrentLayer::Lstm(lstm), RecurrentCell::Lstm(k)) => {
            let forget = lstm
                .forget_gate
                .as_mut()
                .expect("tidewatch builds LSTMs with a forget gate");
            let gates = [
                &mut lstm.input_gate,
                forget,
                &mut lstm.cell_gate,
                &mut lstm.output_gate,
            ];
            let biases = |g| (span(&k.bias, g), Array1::zeros(hidden));
            set_gates(gates, &k.w_input, &k.w_hidden, biases, device);
        }
        (RecurrentLayer::Gru(gru), RecurrentCell::Gru(k)) => {
            let gates = [&mut gru.update_gate, &mut gru.reset_gate, &mut gru.new_gate];
            let biases = |g| (span(&k.b_input, g), span(&k.b_hidden, g));
            set_gates(gates, &k.w_input, &k.w_hidden, biases, device);
        }
        _ => unreachable!("the forecaster was built with the kernels' cell"),
    }
    set_linear(
        &mut forecaster.head,
        kernels.head.weight.clone(),
        kernels.head.bias.clone(),
        device,
    );

    let layers = &kernels.autoencoder.layers;
    let encoder = layers.len() / 2;
    let shape = AutoencoderConfig {
        hidden_widths: layers[..encoder].iter().map(|l| l.outputs()).collect(),
        activation: layers[0].activation,
        level_relative: kernels.centred_inputs.iter().any(|&c| c),
    };
    let measured = if kernels.centred_inputs.is_empty() {
        vec![false; inputs]
    } else {
        kernels.centred_inputs.clone()
    };
    let mut autoencoder = init_seeded(0, device, |d| {
        Autoencoder::init(&shape, kernels.window_len, &measured, d)
    });
    for (linear, dense) in autoencoder.layers.iter_mut().zip(layers) {
        set_linear(linear, dense.weight.clone(), dense.bias.clone(), device);
    }
    (forecaster, autoencoder)
}

/// Gate `g`'s input and hidden transforms from columns `g` of the packed
/// kernel weights (gates side by side, `hidden` columns each) and from
/// `biases(g)`: (input side, hidden side).
fn set_gates<const N: usize>(
    gates: [&mut GateController; N],
    w_input: &Array2<f32>,
    w_hidden: &Array2<f32>,
    biases: impl Fn(usize) -> (Array1<f32>, Array1<f32>),
    device: &Device,
) {
    let hidden = w_hidden.nrows();
    let columns =
        |m: &Array2<f32>, g: usize| m.slice(s![.., g * hidden..(g + 1) * hidden]).to_owned();
    for (g, controller) in gates.into_iter().enumerate() {
        let (input_bias, hidden_bias) = biases(g);
        set_linear(
            &mut controller.input_transform,
            columns(w_input, g),
            input_bias,
            device,
        );
        set_linear(
            &mut controller.hidden_transform,
            columns(w_hidden, g),
            hidden_bias,
            device,
        );
    }
}

/// weight [inputs, outputs], bias [outputs]
fn set_linear(linear: &mut Linear, weight: Array2<f32>, bias: Array1<f32>, device: &Device) {
    let (rows, cols) = weight.dim();
    let weight: Vec<f32> = weight.iter().copied().collect();
    linear.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(weight, [rows, cols]),
        device,
    ));
    linear.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias.to_vec(), [cols]),
        device,
    )));
}

/// The largest absolute difference between burn's forecaster and its
/// kernels, running the kernels one step at a time as the stream does.
/// sequences [batch, time, inputs]
pub fn forecaster_gap(forecaster: &Forecaster, sequences: &Array3<f32>) -> f32 {
    let device = Device::flex();
    let (batch, time, inputs) = sequences.dim();
    let data = TensorData::new(
        sequences.iter().copied().collect::<Vec<_>>(),
        [batch, time, inputs],
    );
    let (burn_out, _) = forecaster.forward(Tensor::from_data(data, &device), None);
    let values = burn_out
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 output");
    let burn_out =
        Array3::from_shape_vec((batch, time, inputs), values).expect("shape matches data");
    let model = KernelModel {
        cell: recurrent_cell(&forecaster.recurrent),
        head: dense(&forecaster.head, Activation::Identity),
        autoencoder: DenseStack { layers: Vec::new() },
        window_len: 1,
        centred_inputs: Vec::new(),
    };
    let mut state = Array2::zeros((batch, model.state_width()));
    let mut out = Array2::zeros((batch, inputs));
    let mut scratch = Scratch::default();
    let mut worst = 0f32;
    for t in 0..time {
        model.advance(
            sequences.slice(s![.., t, ..]),
            state.view_mut(),
            &mut scratch,
        );
        model.forecast_into(state.view(), out.view_mut());
        let expected = burn_out.slice(s![.., t, ..]);
        worst = worst.max((&out - &expected).iter().fold(0f32, |m, d| m.max(d.abs())));
    }
    worst
}

/// The largest absolute difference between burn's autoencoder and its kernels.
/// windows [batch, window * inputs]
pub fn autoencoder_gap(autoencoder: &Autoencoder, windows: &Array2<f32>) -> f32 {
    let device = Device::flex();
    let (batch, width) = windows.dim();
    let data = TensorData::new(windows.iter().copied().collect::<Vec<_>>(), [batch, width]);
    let expected = to_array2(autoencoder.forward(Tensor::from_data(data, &device)));
    let stack = dense_stack(autoencoder);
    let mut out = Array2::zeros((batch, width));
    reconstruct(
        &stack,
        &autoencoder.centred_inputs,
        windows.view(),
        out.view_mut(),
        &mut Scratch::default(),
    );
    (&out - &expected).iter().fold(0f32, |m, d| m.max(d.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use tidewatch_stream::config::{AutoencoderConfig, CellKind, ForecasterConfig};

    fn random(shape: [usize; 3], seed: u64) -> Array3<f32> {
        let device = Device::flex();
        device.seed(seed);
        let t = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.5), &device);
        Array3::from_shape_vec(shape, t.into_data().try_to_vec::<f32>().unwrap()).unwrap()
    }

    #[test]
    fn kernels_match_burn_on_random_weights_and_inputs() {
        let device = Device::flex();
        for (i, cell) in [CellKind::Lstm, CellKind::Gru].into_iter().enumerate() {
            let config = ForecasterConfig {
                cell,
                hidden_size: 64,
            };
            let forecaster =
                crate::fit::init_seeded(7 + i as u64, &device, |d| Forecaster::init(&config, 8, d));
            let gap = forecaster_gap(&forecaster, &random([16, 40, 8], 3));
            assert!(gap < 1e-4, "{cell}: max abs difference {gap}");
        }
        let windows = random([32, 64, 8], 5)
            .into_shape_with_order((32, 512))
            .unwrap();
        // Inputs 0 to 5 measured, 6 and 7 calendar context.
        let measured: Vec<bool> = (0..8).map(|i| i < 6).collect();
        for level_relative in [false, true] {
            let config = AutoencoderConfig {
                level_relative,
                ..AutoencoderConfig::default()
            };
            let autoencoder = Autoencoder::init(&config, 64, &measured, &device);
            let gap = autoencoder_gap(&autoencoder, &windows);
            assert!(
                gap < 1e-4,
                "autoencoder (level_relative {level_relative}): max abs difference {gap}"
            );
        }
    }

    #[test]
    fn modules_rebuilt_from_kernels_export_to_the_same_kernels() {
        let device = Device::flex();
        let measured: Vec<bool> = (0..3).map(|i| i < 2).collect();
        for (i, (cell, level_relative)) in [(CellKind::Lstm, true), (CellKind::Gru, false)]
            .into_iter()
            .enumerate()
        {
            let forecaster = crate::fit::init_seeded(11 + i as u64, &device, |d| {
                Forecaster::init(
                    &ForecasterConfig {
                        cell,
                        hidden_size: 6,
                    },
                    3,
                    d,
                )
            });
            let config = AutoencoderConfig {
                hidden_widths: vec![8, 3],
                level_relative,
                ..AutoencoderConfig::default()
            };
            let autoencoder = crate::fit::init_seeded(21 + i as u64, &device, |d| {
                Autoencoder::init(&config, 5, &measured, d)
            });
            let kernels = kernel_model(&forecaster, &autoencoder, 5);
            let (forecaster, autoencoder) = modules_from_kernels(&kernels, &device);
            let again = kernel_model(&forecaster, &autoencoder, 5);
            // The LSTM's summed biases come back summed the same way.
            assert_eq!(again, kernels, "{cell}");
        }
    }
}
