//! How the neural kinds cut texts into batches, for training and for
//! prediction alike.
//!
//! Token sequences are padded to a multiple of [`BUCKET_TOKENS`] that depends
//! only on the text's own length, and a batch holds texts of one padded
//! length. A text therefore always runs through the network with the same
//! padding, whatever else is in its batch, and little work goes to padding.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ndarray::Array2;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::text::tokenize::PADDING;
use tidewatch_learn::fit::{Stepper, scalar};

/// Padded lengths are multiples of this.
pub const BUCKET_TOKENS: usize = 8;

pub fn padded_len(tokens: usize) -> usize {
    tokens.max(1).next_multiple_of(BUCKET_TOKENS)
}

/// Indices of `lengths` grouped into batches of at most `batch_size` texts
/// of one padded length; shuffled (within and across lengths) when `rng` is
/// given, in input order within each length otherwise.
pub fn length_batches(
    lengths: &[usize],
    batch_size: usize,
    rng: Option<&mut StdRng>,
) -> Vec<Vec<usize>> {
    let mut by_length: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &len) in lengths.iter().enumerate() {
        by_length.entry(padded_len(len)).or_default().push(i);
    }
    let mut groups: Vec<Vec<usize>> = by_length.into_values().collect();
    let mut batches: Vec<Vec<usize>> = Vec::new();
    match rng {
        Some(rng) => {
            for group in &mut groups {
                group.shuffle(rng);
            }
            for group in &groups {
                batches.extend(group.chunks(batch_size.max(1)).map(<[usize]>::to_vec));
            }
            batches.shuffle(rng);
        }
        None => {
            for group in &groups {
                batches.extend(group.chunks(batch_size.max(1)).map(<[usize]>::to_vec));
            }
        }
    }
    batches
}

/// Token ids `[batch, padded]` and the mask of real tokens `[batch, padded]`
/// (1 for a token, 0 for padding) of sequences of one padded length.
pub fn id_batch(sequences: &[&[u32]], device: &Device) -> (Tensor<2, Int>, Tensor<2>) {
    let width = sequences
        .iter()
        .map(|s| padded_len(s.len()))
        .max()
        .unwrap_or(BUCKET_TOKENS);
    let mut ids = Vec::with_capacity(sequences.len() * width);
    let mut mask = Vec::with_capacity(sequences.len() * width);
    for sequence in sequences {
        for i in 0..width {
            let id = sequence.get(i).copied();
            ids.push(id.unwrap_or(PADDING) as i64);
            mask.push(if id.is_some() { 1.0f32 } else { 0.0 });
        }
    }
    let shape = [sequences.len(), width];
    (
        Tensor::from_data(TensorData::new(ids, shape), device),
        Tensor::from_data(TensorData::new(mask, shape), device),
    )
}

/// Mean over the real tokens of `[batch, tokens, width]` states, given the
/// mask `[batch, tokens]`: `[batch, width]`.
pub fn masked_mean(states: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
    let mask = mask.unsqueeze_dim::<3>(2);
    let counts = mask.clone().sum_dim(1).clamp_min(1.0);
    (states * mask).sum_dim(1).div(counts).squeeze_dim(1)
}

/// Runs `forward` (sequences of one padded length to `[batch, width]`)
/// over every sequence in length batches and gathers the rows back into
/// input order: `[sequences, width]`.
pub fn in_length_batches(
    sequences: &[Vec<u32>],
    batch_size: usize,
    width: usize,
    forward: impl Fn(&[&[u32]]) -> Tensor<2>,
) -> Array2<f32> {
    let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
    let mut out = Array2::zeros((sequences.len(), width));
    for batch in length_batches(&lengths, batch_size, None) {
        let inputs: Vec<&[u32]> = batch.iter().map(|&i| sequences[i].as_slice()).collect();
        let values = forward(&inputs)
            .to_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 outputs");
        for (row, &i) in batch.iter().enumerate() {
            out.row_mut(i).assign(&ndarray::ArrayView1::from(
                &values[row * width..(row + 1) * width],
            ));
        }
    }
    out
}

/// One epoch: one optimiser step per batch, in the order given. Returns the
/// model and the mean training loss per text.
pub fn run_epoch<M: Module>(
    mut model: M,
    batches: &[Vec<usize>],
    stepper: &mut Stepper,
    loss: impl Fn(&M, &[usize]) -> Tensor<1>,
) -> (M, f64) {
    let (mut total, mut count) = (0.0, 0usize);
    for batch in batches {
        let batch_loss = loss(&model, batch);
        let (stepped, value) = stepper.step(model, batch_loss);
        model = stepped;
        total += value * batch.len() as f64;
        count += batch.len();
    }
    (model, total / count.max(1) as f64)
}

/// [`length_batches`] of a subset: `lengths[k]` is the length of text
/// `indices[k]`, and the batches hold the texts' own indices.
pub fn index_batches(
    indices: &[usize],
    lengths: &[usize],
    batch_size: usize,
    rng: Option<&mut StdRng>,
) -> Vec<Vec<usize>> {
    length_batches(lengths, batch_size, rng)
        .into_iter()
        .map(|batch| batch.into_iter().map(|b| indices[b]).collect())
        .collect()
}

/// Mean loss per text over `batches` (each batch's mean weighted by its size).
pub fn mean_over_batches(
    batches: &[Vec<usize>],
    loss: impl Fn(&[usize]) -> Tensor<1>,
) -> Option<f64> {
    let count: usize = batches.iter().map(Vec::len).sum();
    let total: f64 = batches
        .iter()
        .map(|batch| scalar(&loss(batch)) * batch.len() as f64)
        .sum();
    (count > 0).then(|| total / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn batches_hold_one_padded_length_and_cover_every_text_once() {
        let lengths = [3, 9, 8, 1, 16, 17, 2, 5];
        for rng in [None, Some(StdRng::seed_from_u64(7))] {
            let mut rng = rng;
            let batches = length_batches(&lengths, 2, rng.as_mut());
            let mut seen: Vec<usize> = batches.concat();
            seen.sort_unstable();
            assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
            for batch in &batches {
                assert!(batch.len() <= 2);
                let padded = padded_len(lengths[batch[0]]);
                assert!(batch.iter().all(|&i| padded_len(lengths[i]) == padded));
            }
        }
    }
}
