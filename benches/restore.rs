//! Restoring keys from their checkpoints: the shipped
//! `examples/sensor.toml` stream with a bundle trained on a little clean
//! data, 100,000 pumps that have each seen 40 readings. Reports the size of
//! their records, then
//!
//! - in process: the time to write them all
//!   (`Pipeline::checkpoint_changed`) and to restore them all into a fresh
//!   pipeline (`Pipeline::restore`), one thread;
//! - through a broker (Nisshi, as the tests start it): the records
//!   produced to a one-partition changelog, then the daemon's restore path
//!   timed, reading the partition to its end (`changelog::read_partition`)
//!   and restoring every key.
//!
//! Run: `cargo bench --bench restore` (set `TIDEWATCH_BENCH_KEYS` for
//! another count). Under `cargo test` it runs once with 2,000 keys, as a
//! check that it works.

use std::sync::Arc;
use std::time::Instant;

use ndarray::Array2;
#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use tidewatch::simulate::{SensorSeries, SensorShape};
use tidewatch_learn::fit::Progress;
use tidewatch_learn::train::learn;
use tidewatch_runtime::changelog;
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
        "restore/sensor in process: {keys} keys, {:.0} bytes per key ({:.1} MB in all); written in {:.2} s \
         ({:.0} keys/s), restored in {:.2} s ({:.0} keys/s)",
        bytes as f64 / keys as f64,
        bytes as f64 / 1e6,
        written.as_secs_f64(),
        keys as f64 / written.as_secs_f64(),
        read.as_secs_f64(),
        keys as f64 / read.as_secs_f64(),
    );
    through_broker(&records, pipeline);
}

/// The records produced to a changelog on a fresh broker, then read back
/// and restored as a daemon does on assignment.
fn through_broker(records: &[(String, Vec<u8>)], pipeline: impl Fn() -> Pipeline) {
    let broker = support::Nisshi::start();
    broker.create_topic("state", 1);
    let producer = support::producer(&broker.brokers());
    for (key, record) in records {
        support::send(&producer, "state", key, record);
    }
    support::flush(&producer);
    let mut client = rdkafka::ClientConfig::new();
    client.set("bootstrap.servers", broker.brokers());

    let started = Instant::now();
    let read = changelog::read_partition(&client, "state", 0, Duration::from_secs(600))
        .expect("the changelog reads to its end");
    let read_secs = started.elapsed().as_secs_f64();
    assert_eq!(read.len(), records.len(), "every key read back");
    let mut restored = pipeline();
    for (key, record) in &read {
        restored
            .restore(key, record, "pump@1")
            .expect("a record of this model");
    }
    let total_secs = started.elapsed().as_secs_f64();
    let bytes: usize = read.values().map(Vec::len).sum();
    println!(
        "restore/sensor from the broker: {} keys read in {read_secs:.2} s ({:.1} MB/s), \
         read and restored in {total_secs:.2} s ({:.0} keys/s)",
        read.len(),
        bytes as f64 / 1e6 / read_secs,
        read.len() as f64 / total_secs,
    );
}
