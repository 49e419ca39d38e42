//! Restoring keys from their checkpoints, in process: the shipped
//! `examples/sensor.toml` stream with a bundle trained on a little clean
//! data, 100,000 pumps that have each seen 40 readings. Reports the size of
//! their records, the time to write them all (`Pipeline::checkpoint_changed`)
//! and to restore them all into a fresh pipeline (`Pipeline::restore`), one
//! thread. The broker's share of a restore (reading the changelog) is not
//! in these figures.
//!
//! Run: `cargo bench --bench restore` (set `TIDEWATCH_BENCH_KEYS` for
//! another count). Under `cargo test` it runs once with 2,000 keys, as a
//! check that it works.

use std::sync::Arc;
use std::time::Instant;

use ndarray::Array2;
use tidewatch::simulate::{SensorSeries, SensorShape};
use tidewatch_learn::fit::Progress;
use tidewatch_learn::train::learn;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::Series;
use tidewatch_stream::pipeline::{ModelSource, Pipeline};
use tidewatch_stream::source::Record;

/// Readings each key has seen before its checkpoint: a full window of 16
/// and some error-tail peaks.
const READINGS_PER_KEY: usize = 40;

/// Keys scored per micro-batch while the keys are made.
const BATCH_KEYS: usize = 256;

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let keys: usize = match std::env::var("TIDEWATCH_BENCH_KEYS") {
        Ok(n) => n.parse().expect("TIDEWATCH_BENCH_KEYS is a count"),
        Err(_) if measuring => 100_000,
        Err(_) => 2_000,
    };
    let mut config = StreamConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/sensor.toml"
    )))
    .expect("examples/sensor.toml");
    config.training.max_epochs = 2;
    let series = SensorSeries::generate(
        &SensorShape {
            points: 1500,
            ..SensorShape::default()
        },
        &[],
        1,
    );
    let rows: Vec<f32> = series
        .values
        .iter()
        .flat_map(|[a, b]| [*a as f32, *b as f32])
        .collect();
    let training = Series {
        rows: Array2::from_shape_vec((series.values.len(), 2), rows).expect("two columns"),
        usable: vec![true; series.values.len()],
    };
    let learned = learn(&[training], &config, None, 2, Progress::Quiet).expect("trains");
    let config = Arc::new(config);
    let model = Arc::new(learned.model);
    let pipeline = || Pipeline::new(Arc::clone(&config), ModelSource::Bundle(Arc::clone(&model)));

    // Every key reads the same cycle at its own phase.
    let mut running = pipeline();
    for first in (0..keys).step_by(BATCH_KEYS) {
        let batch_keys = first..(first + BATCH_KEYS).min(keys);
        for t in 0..READINGS_PER_KEY {
            let records: Vec<Record> = batch_keys
                .clone()
                .map(|k| {
                    let [a, b] = series.values[(t + k * 7) % series.values.len()];
                    Record {
                        key: format!("pump-{k}"),
                        timestamp_ms: series.timestamps_ms[t],
                        inputs: vec![a as f32, b as f32],
                    }
                })
                .collect();
            running.process_batch(&records);
        }
    }

    let started = Instant::now();
    let records = running.checkpoint_changed("pump@1");
    let written = started.elapsed();
    assert_eq!(records.len(), keys);
    let bytes: usize = records.iter().map(|(_, r)| r.len()).sum();

    let mut restored = pipeline();
    let started = Instant::now();
    for (key, record) in &records {
        restored
            .restore(key, record, "pump@1")
            .expect("a record of this model");
    }
    let read = started.elapsed();
    assert_eq!(restored.key_count(), keys);

    println!(
        "restore/sensor: {keys} keys, {:.0} bytes per key ({:.1} MB in all); written in {:.2} s \
         ({:.0} keys/s), restored in {:.2} s ({:.0} keys/s)",
        bytes as f64 / keys as f64,
        bytes as f64 / 1e6,
        written.as_secs_f64(),
        keys as f64 / written.as_secs_f64(),
        read.as_secs_f64(),
        keys as f64 / read.as_secs_f64(),
    );
}
