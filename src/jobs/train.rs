//! Trains a bundle from a file: every key's rows become one series, the
//! models learn from all of them, and the bundle is written.

use std::collections::HashMap;
use std::path::Path;

use ndarray::Array2;

use tidewatch_learn::bundle::{self, BundleError, Manifest};
use tidewatch_learn::fit::Progress;
use tidewatch_learn::train::{Learned, learn};
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::{LearnError, Series};
use tidewatch_stream::source::file::{FileSource, InputError, ReadOptions, SkippedRows};
use tidewatch_stream::state::store::KeyInputs;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Learn(#[from] LearnError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// What training produced.
#[derive(Debug)]
pub struct TrainReport {
    pub manifest: Manifest,
    pub rows: usize,
    pub keys: usize,
    pub skipped: SkippedRows,
}

/// Reads `input`, trains on every row, writes the bundle to `out`.
pub fn train_file(
    input: &Path,
    config: &StreamConfig,
    read: ReadOptions,
    out: &Path,
    progress: Progress,
) -> Result<TrainReport, TrainError> {
    let (series, skipped) = read_series(input, config, read)?;
    let rows = series.iter().map(|s| s.rows.nrows()).sum();
    let keys = series.len();
    let Learned { model, summary, .. } =
        learn(&series, config, None, config.training.max_epochs, progress)?;
    let manifest = bundle::save(out, &model, config, &summary)?;
    Ok(TrainReport {
        manifest,
        rows,
        keys,
        skipped,
    })
}

/// Every key's raw inputs, in file order, with the per-key transforms
/// applied as the stream would.
pub fn read_series(
    input: &Path,
    config: &StreamConfig,
    read: ReadOptions,
) -> Result<(Vec<Series>, SkippedRows), InputError> {
    let schema = &config.schema;
    let width = schema.input_width();
    let keyed = schema.keyed_inputs();
    let mut order: Vec<String> = Vec::new();
    let mut by_key: HashMap<String, (KeyInputs, Vec<f32>)> = HashMap::new();
    let mut source = FileSource::open(input, schema.clone(), read)?;
    for row in source.by_ref() {
        let record = row?.record;
        let (key_inputs, values) = by_key.entry(record.key.clone()).or_insert_with(|| {
            order.push(record.key.clone());
            (KeyInputs::default(), Vec::new())
        });
        let start = values.len();
        values.resize(start + width, 0.0);
        key_inputs.fill(
            record.timestamp_ms,
            &record.inputs,
            &keyed,
            &mut values[start..],
        );
    }
    let skipped = source.skipped().clone();
    let series = order
        .into_iter()
        .map(|key| {
            let values = by_key.remove(&key).expect("every key has rows").1;
            let points = values.len() / width;
            Series {
                rows: Array2::from_shape_vec((points, width), values).expect("whole rows"),
                usable: vec![true; points],
            }
        })
        .collect();
    Ok((series, skipped))
}
