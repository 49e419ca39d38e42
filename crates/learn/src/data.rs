//! Training data cut from scaled series, as tensors.
//!
//! The autoencoder learns from windows (a [`Span`] each) that touch no point
//! judged anomalous. The forecaster learns the way it runs in the stream:
//! its recurrent state is carried across a long stretch of each series
//! ([`Lane`]s, processed side by side, one chunk of steps per optimiser
//! step), and the loss is masked where the target point was anomalous. The
//! models learn only what normal looks like.

use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{ArrayView2, s};

/// End indices of every `len`-point span of `series` whose points are all
/// usable, split chronologically into (train, validation). Spans that would
/// straddle the split are dropped so the two sets share no point.
pub fn split_spans(
    usable: &[bool],
    len: usize,
    validation_fraction: f64,
) -> (Vec<usize>, Vec<usize>) {
    let n = usable.len();
    if len == 0 || n < len {
        return (Vec::new(), Vec::new());
    }
    let mut ends = Vec::new();
    let mut run = 0;
    for (i, ok) in usable.iter().enumerate() {
        run = if *ok { run + 1 } else { 0 };
        if run >= len {
            ends.push(i);
        }
    }
    let boundary = n - ((n as f64) * validation_fraction).round() as usize;
    let train = ends.iter().copied().filter(|&e| e < boundary).collect();
    let validation = ends
        .iter()
        .copied()
        .filter(|&e| e + 1 >= boundary + len)
        .collect();
    (train, validation)
}

/// A contiguous stretch of one series, one row of a stateful batch: inputs
/// are points `start .. start + len`, targets the points one step later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lane {
    pub series: usize,
    pub start: usize,
    pub len: usize,
}

/// Cuts each `(series, start, end)` range (end exclusive) into lanes of
/// `lane_len` inputs, the first beginning `offset` points in. The last
/// point of a range only serves as a target.
pub fn lanes(ranges: &[(usize, usize, usize)], lane_len: usize, offset: usize) -> Vec<Lane> {
    let mut lanes = Vec::new();
    for &(series, start, end) in ranges {
        let mut lane_start = start + offset;
        while lane_start + lane_len < end {
            lanes.push(Lane {
                series,
                start: lane_start,
                len: lane_len,
            });
            lane_start += lane_len;
        }
    }
    lanes
}

/// Steps `from .. from + len` of every lane: (inputs [lanes, len, inputs],
/// targets [lanes, len, inputs], mask [lanes, len, 1]). The mask is 0 where
/// the target is not usable and for the first `skip` steps of each lane
/// (while its state builds up from zero).
pub fn lane_chunk(
    series: &[ArrayView2<f32>],
    usable: &[&[bool]],
    lanes: &[Lane],
    from: usize,
    len: usize,
    skip: usize,
    device: &Device,
) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
    let width = series[0].ncols();
    let mut inputs: Vec<f32> = Vec::with_capacity(lanes.len() * len * width);
    let mut targets: Vec<f32> = Vec::with_capacity(lanes.len() * len * width);
    let mut mask = Vec::with_capacity(lanes.len() * len);
    for lane in lanes {
        let first = lane.start + from;
        let rows = series[lane.series];
        inputs.extend(rows.slice(s![first..first + len, ..]).iter());
        targets.extend(rows.slice(s![first + 1..first + len + 1, ..]).iter());
        mask.extend((0..len).map(|t| {
            let usable_target = usable[lane.series][first + t + 1];
            if from + t < skip || !usable_target {
                0.0f32
            } else {
                1.0
            }
        }));
    }
    let shape = [lanes.len(), len, width];
    (
        Tensor::from_data(TensorData::new(inputs, shape), device),
        Tensor::from_data(TensorData::new(targets, shape), device),
        Tensor::from_data(TensorData::new(mask, [lanes.len(), len, 1]), device),
    )
}

/// A training sample: the span of `len` points of series `series` ending at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub series: usize,
    pub end: usize,
}

/// Flattened windows of `len` points, oldest point first.
/// series: each [points, inputs] -> [spans.len(), len * inputs]
pub fn windows(
    series: &[ArrayView2<f32>],
    spans: &[Span],
    len: usize,
    device: &Device,
) -> Tensor<2> {
    let inputs = series[0].ncols();
    Tensor::from_data(
        TensorData::new(gather(series, spans, len), [spans.len(), len * inputs]),
        device,
    )
}

fn gather(series: &[ArrayView2<f32>], spans: &[Span], len: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(spans.len() * len * series[0].ncols());
    for span in spans {
        values.extend(
            series[span.series]
                .slice(s![span.end + 1 - len..=span.end, ..])
                .iter(),
        );
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn spans_avoid_flagged_points_and_the_split() {
        let mut usable = vec![true; 20];
        usable[5] = false;
        let (train, validation) = split_spans(&usable, 3, 0.25);
        // boundary at 15: train ends < 15, validation spans start at >= 15
        assert_eq!(train, [2, 3, 4, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(validation, [17, 18, 19]);
    }

    #[test]
    fn batches_keep_time_order() {
        let series = Array2::from_shape_fn((6, 2), |(t, f)| (t * 10 + f) as f32);
        let device = Device::flex();
        let spans = [Span { series: 0, end: 2 }, Span { series: 0, end: 5 }];
        let x = windows(&[series.view()], &spans, 2, &device);
        let values = x.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(values, [10.0, 11.0, 20.0, 21.0, 40.0, 41.0, 50.0, 51.0]);
    }

    #[test]
    fn lanes_carry_targets_one_step_ahead() {
        let series = Array2::from_shape_fn((12, 1), |(t, _)| t as f32);
        let mut usable = vec![true; 12];
        usable[4] = false;
        let lanes = lanes(&[(0, 0, 12)], 5, 1);
        assert_eq!(
            lanes,
            [
                Lane {
                    series: 0,
                    start: 1,
                    len: 5
                },
                Lane {
                    series: 0,
                    start: 6,
                    len: 5
                }
            ]
        );
        let device = Device::flex();
        let (inputs, targets, mask) =
            lane_chunk(&[series.view()], &[&usable], &lanes, 0, 3, 1, &device);
        let values = |t: Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(values(inputs), [1.0, 2.0, 3.0, 6.0, 7.0, 8.0]);
        assert_eq!(values(targets), [2.0, 3.0, 4.0, 7.0, 8.0, 9.0]);
        // first step skipped; target 4 unusable
        assert_eq!(values(mask), [0.0, 1.0, 0.0, 0.0, 1.0, 1.0]);
    }
}
