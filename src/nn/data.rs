//! Training samples cut from a scaled series, and batches of them as tensors.
//!
//! A sample is identified by the index of its last point, so one list of end
//! indices serves the forecaster (sequences) and the autoencoder (windows).
//! Samples touching a point that was flagged are never used: the models
//! learn only what normal looks like.

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

/// A training sample: the span of `len` points of series `series` ending at `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub series: usize,
    pub end: usize,
}

/// Sequences of `len` points.
/// series: each [points, inputs] -> [spans.len(), len, inputs]
pub fn sequences(
    series: &[ArrayView2<f32>],
    spans: &[Span],
    len: usize,
    device: &Device,
) -> Tensor<3> {
    let inputs = series[0].ncols();
    Tensor::from_data(
        TensorData::new(gather(series, spans, len), [spans.len(), len, inputs]),
        device,
    )
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
        let seq = sequences(&[series.view()], &spans[1..], 3, &device);
        assert_eq!(seq.dims(), [1, 3, 2]);
    }
}
