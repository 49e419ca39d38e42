//! The detection core end to end on synthetic series: every kind of
//! injected anomaly is flagged, and a clean series raises no flag once the
//! warm-up is over.

use std::sync::Arc;

use tidewatch::config::StreamConfig;
use tidewatch::jobs::demo::sensor_config;
use tidewatch::pipeline::{ModelSource, Pipeline, Status};
use tidewatch::simulate::{Injected, SensorAnomaly, SensorSeries, SensorShape};
use tidewatch::source::Record;

const WARMUP: u64 = 600;

/// The demo's sensor settings (`examples/sensor.toml`) with a fixed warm-up.
fn config() -> StreamConfig {
    let mut config = sensor_config();
    config.online.warmup_events = Some(WARMUP);
    config.validate().unwrap();
    config
}

/// Rows at which flags were raised.
fn flags(series: &SensorSeries) -> Vec<usize> {
    let config = Arc::new(config());
    let mut pipeline = Pipeline::new(
        config,
        ModelSource::Online {
            warmup_events: WARMUP,
        },
    );
    let mut flagged = Vec::new();
    for (t, (&timestamp_ms, values)) in series.timestamps_ms.iter().zip(&series.values).enumerate()
    {
        let record = Record {
            key: "device-1".into(),
            timestamp_ms,
            inputs: values.iter().map(|&v| v as f32).collect(),
        };
        let verdict = pipeline.process(&record).unwrap();
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
