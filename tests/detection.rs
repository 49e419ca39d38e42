//! The detection core end to end on synthetic series: every kind of
//! injected anomaly is flagged, and a clean series raises no flag once the
//! warm-up is over.

use std::sync::Arc;

use tidewatch::jobs::demo::sensor_config;
use tidewatch::simulate::{Injected, SensorAnomaly, SensorSeries, SensorShape};
use tidewatch_learn::online::NeuralLearners;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::pipeline::{ModelSource, Pipeline, Status, Verdict};
use tidewatch_stream::source::Record;

const WARMUP: u64 = 600;

/// The demo's sensor settings (`examples/sensor.toml`) with a fixed warm-up.
fn config() -> StreamConfig {
    let mut config = sensor_config();
    config.online.warmup_events = Some(WARMUP);
    config.validate().unwrap();
    config
}

/// Every row's verdict, one key learning online.
fn verdicts(series: &SensorSeries, config: StreamConfig) -> Vec<Verdict> {
    let warmup_events = config.online.warmup_for(None);
    let mut pipeline = Pipeline::new(
        Arc::new(config),
        ModelSource::Online {
            warmup_events,
            learners: Arc::new(NeuralLearners),
            prior: None,
        },
    );
    let verdicts = series
        .timestamps_ms
        .iter()
        .zip(&series.values)
        .map(|(&timestamp_ms, values)| {
            pipeline.process(&Record {
                key: "device-1".into(),
                timestamp_ms,
                inputs: values.iter().map(|&v| v as f32).collect(),
            })
        })
        .collect();
    let failures = pipeline.take_learn_failures();
    assert!(failures.is_empty(), "{failures:?}");
    verdicts
}

/// Rows at which flags were raised.
fn flags(series: &SensorSeries) -> Vec<usize> {
    let mut flagged = Vec::new();
    for (t, verdict) in verdicts(series, config()).into_iter().enumerate() {
        assert_eq!(
            verdict.status == Status::Learning,
            (t as u64) < WARMUP,
            "row {t}"
        );
        if verdict.flag {
            flagged.push(t);
        }
    }
    flagged
}

/// Training and scoring are a function of the input and the seed alone:
/// the same series learned alone and twice at once (sharing the backend's
/// process-wide generator and thread pool) gives identical scores.
#[test]
fn the_same_series_scores_the_same_alone_and_concurrently() {
    let mut config = config();
    config.online.warmup_events = Some(400);
    config.online.refit_every_events = 300;
    config.training.max_epochs = 4;
    let anomaly = Injected {
        kind: SensorAnomaly::Spike,
        start: 900,
        len: 5,
    };
    let series = SensorSeries::generate(&SensorShape::default(), &[anomaly], 7);
    let series = SensorSeries {
        timestamps_ms: series.timestamps_ms[..1200].to_vec(),
        values: series.values[..1200].to_vec(),
        ..series
    };
    let scores = |verdicts: Vec<Verdict>| -> Vec<u64> {
        verdicts.iter().map(|v| v.score.to_bits()).collect()
    };
    let alone = scores(verdicts(&series, config.clone()));
    assert!(
        alone.iter().any(|&s| f64::from_bits(s) > 0.0),
        "nothing was scored"
    );
    // Interleavings differ from round to round; a few rounds catch a
    // shared generator or reduction that one lucky round might not.
    for round in 0..3 {
        let (first, second) = std::thread::scope(|scope| {
            let first = scope.spawn(|| scores(verdicts(&series, config.clone())));
            let second = scope.spawn(|| scores(verdicts(&series, config.clone())));
            (first.join().unwrap(), second.join().unwrap())
        });
        assert_eq!(
            first, alone,
            "round {round}: run 1 differs from the run alone"
        );
        assert_eq!(
            second, alone,
            "round {round}: run 2 differs from the run alone"
        );
    }
}

fn with(kind: SensorAnomaly, len: usize, seed: u64) -> (SensorSeries, Vec<usize>) {
    let anomaly = Injected {
        kind,
        start: 2000,
        len,
    };
    let series = SensorSeries::generate(&SensorShape::default(), &[anomaly], seed);
    let flagged = flags(&series);
    (series, flagged)
}

fn assert_caught(kind: SensorAnomaly, len: usize) {
    let (series, flagged) = with(kind, len, 7);
    let anomaly = series.anomalies[0];
    let inside = flagged
        .iter()
        .filter(|&&t| t >= anomaly.start && t < anomaly.start + anomaly.len + 16);
    assert!(
        inside.count() >= 1,
        "{kind:?} not flagged; flags at {flagged:?}"
    );
    let early: Vec<&usize> = flagged.iter().filter(|&&t| t < anomaly.start).collect();
    assert!(
        early.is_empty(),
        "{kind:?}: false flags before the anomaly at {early:?}"
    );
}

#[test]
fn spikes_are_flagged() {
    assert_caught(SensorAnomaly::Spike, 3);
}

#[test]
fn level_shifts_are_flagged() {
    assert_caught(SensorAnomaly::LevelShift, 200);
}

#[test]
fn frequency_changes_are_flagged() {
    assert_caught(SensorAnomaly::FrequencyChange, 200);
}

#[test]
fn flat_lines_are_flagged() {
    assert_caught(SensorAnomaly::FlatLine, 200);
}

#[test]
fn correlation_breaks_are_flagged() {
    assert_caught(SensorAnomaly::CorrelationBreak, 200);
}

#[test]
fn clean_series_raise_no_flag_past_the_warmup() {
    for seed in 1..=4 {
        let series = SensorSeries::generate(&SensorShape::default(), &[], seed);
        let flagged = flags(&series);
        assert!(flagged.is_empty(), "seed {seed}: flags at {flagged:?}");
    }
}
