//! Key checkpoints with the real models of the default sensor stream
//! (`examples/sensor.toml`): how large a key's record is, and that a key
//! restored from it scores on exactly as the key it was taken from.

use std::sync::Arc;

use ndarray::Array2;
use tidewatch::simulate::{SensorSeries, SensorShape};
use tidewatch_learn::fit::Progress;
use tidewatch_learn::online::NeuralLearners;
use tidewatch_learn::train::learn;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::Series;
use tidewatch_stream::pipeline::{ModelSource, Pipeline, Status, Verdict};
use tidewatch_stream::source::Record;

fn sensor_config() -> StreamConfig {
    StreamConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/sensor.toml"
    )))
    .unwrap()
}

/// `points` readings of one pump from the generator's default cycle.
fn readings(key: &str, points: usize, seed: u64) -> Vec<Record> {
    let shape = SensorShape {
        points,
        ..SensorShape::default()
    };
    let series = SensorSeries::generate(&shape, &[], seed);
    series
        .timestamps_ms
        .iter()
        .zip(&series.values)
        .map(|(&timestamp_ms, [a, b])| Record {
            key: key.to_owned(),
            timestamp_ms,
            inputs: vec![*a as f32, *b as f32],
        })
        .collect()
}

/// Takes `key` from `running` into `fresh` by its record, then feeds both
/// `later` and returns the restored one's verdicts, which must be the
/// running one's; also returns the record's size.
fn move_key(
    running: &mut Pipeline,
    fresh: &mut Pipeline,
    later: &[Record],
) -> (Vec<Verdict>, usize) {
    let records = running.checkpoint_changed("pump@1");
    assert_eq!(records.len(), 1);
    let (key, record) = &records[0];
    fresh.restore(key, record, "pump@1").unwrap();
    let expected: Vec<Verdict> = later
        .chunks(64)
        .flat_map(|c| running.process_batch(c))
        .collect();
    let verdicts: Vec<Verdict> = later
        .chunks(64)
        .flat_map(|c| fresh.process_batch(c))
        .collect();
    assert_eq!(verdicts, expected);
    (verdicts, record.len())
}

#[test]
fn a_bundle_key_of_the_sensor_stream_checkpoints_in_a_few_kilobytes() {
    let mut config = sensor_config();
    config.training.max_epochs = 2;
    let training = readings("pump-0", 1500, 1);
    let rows: Vec<f32> = training.iter().flat_map(|r| r.inputs.clone()).collect();
    let series = Series {
        rows: Array2::from_shape_vec((training.len(), 2), rows).unwrap(),
        usable: vec![true; training.len()],
    };
    let learned = learn(&[series], &config, None, 2, Progress::Quiet).unwrap();
    let config = Arc::new(config);
    let model = Arc::new(learned.model);
    let pipeline = || Pipeline::new(Arc::clone(&config), ModelSource::Bundle(Arc::clone(&model)));
    let events = readings("pump-1", 3200, 2);
    let mut running = pipeline();
    for chunk in events[..3000].chunks(64) {
        running.process_batch(chunk);
    }
    let (verdicts, bytes) = move_key(&mut running, &mut pipeline(), &events[3000..]);
    assert!(verdicts.iter().all(|v| v.status == Status::Scored));
    // Window 16 x 2 inputs, LSTM state 2 x 16, four error tails of at most
    // 200 peaks each (README, The daemon).
    println!("bundle key: {bytes} bytes");
    assert!(bytes <= 4 * 1024, "{bytes} bytes");
}

#[test]
fn a_key_learning_online_restores_without_a_second_warm_up() {
    let config = Arc::new(sensor_config());
    let warmup_events = config.online.warmup_for(None);
    let online = || {
        Pipeline::new(
            Arc::clone(&config),
            ModelSource::Online {
                warmup_events,
                learners: Arc::new(NeuralLearners),
                prior: None,
            },
        )
    };
    let events = readings("pump-1", 3000, 3);
    let mut running = online();
    for chunk in events[..2000].chunks(64) {
        running.process_batch(chunk);
    }
    // Up to the next refit (every 1,000 events from the first training at
    // 750) the restored key scores exactly as the running one.
    let mut restored = online();
    let (verdicts, bytes) = move_key(&mut running, &mut restored, &events[2000..2700]);
    assert!(verdicts.iter().all(|v| v.status == Status::Scored));
    // Its own two models and the last 2,000 events it learned from
    // (`online.history_events` keeps up to 3,000).
    println!("online key: {bytes} bytes");
    assert!(bytes <= 64 * 1024, "{bytes} bytes");
    // The refit at 2,750 continues from the restored model's weights.
    let restored_model = restored.key_model("pump-1").unwrap();
    for chunk in events[2700..].chunks(64) {
        let verdicts = restored.process_batch(chunk);
        assert!(verdicts.iter().all(|v| v.status == Status::Scored));
    }
    assert!(restored.take_learn_failures().is_empty());
    let refit = restored.key_model("pump-1").unwrap();
    assert!(!Arc::ptr_eq(&refit, &restored_model), "no refit happened");
}
