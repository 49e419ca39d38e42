//! The demo: simulated devices with injected anomalies go through the
//! streaming path together, each learning online; flags are matched to the
//! injected truth for a precision / recall summary.

use std::sync::Arc;

use crate::config::StreamConfig;
use crate::learn::LearnError;
use crate::pipeline::{ModelSource, Pipeline, Verdict};
use crate::simulate::{Injected, SensorAnomaly, SensorSeries, SensorShape};
use crate::source::Record;

/// What the demo simulates.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    pub devices: usize,
    /// Readings per device.
    pub points: usize,
    /// Readings each device learns from before it is scored.
    pub warmup_events: u64,
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            devices: 4,
            points: 3000,
            warmup_events: 600,
            seed: 7,
        }
    }
}

/// The stream config the demo runs with (`examples/sensor.toml`).
pub fn demo_config() -> StreamConfig {
    toml::from_str(include_str!("../../examples/sensor.toml"))
        .expect("the shipped sensor config parses")
}

/// One device's simulated readings.
#[derive(Debug, Clone)]
pub struct Device {
    pub key: String,
    pub series: SensorSeries,
}

/// Devices, each with two anomalies of different kinds after its warm-up.
pub fn simulate_devices(options: &DemoOptions) -> Vec<Device> {
    const KINDS: [SensorAnomaly; 5] = [
        SensorAnomaly::Spike,
        SensorAnomaly::LevelShift,
        SensorAnomaly::FrequencyChange,
        SensorAnomaly::FlatLine,
        SensorAnomaly::CorrelationBreak,
    ];
    let shape = SensorShape {
        points: options.points,
        ..SensorShape::default()
    };
    let scored = options
        .points
        .saturating_sub(options.warmup_events as usize);
    (0..options.devices)
        .map(|d| {
            let anomalies: Vec<Injected> = (0..2)
                .map(|k| {
                    let kind = KINDS[(2 * d + k) % KINDS.len()];
                    let len = if kind == SensorAnomaly::Spike { 3 } else { 120 };
                    let start = options.warmup_events as usize + scored * (2 * k + 1) / 4;
                    Injected { kind, start, len }
                })
                .collect();
            Device {
                key: format!("pump-{}", d + 1),
                series: SensorSeries::generate(&shape, &anomalies, options.seed + d as u64),
            }
        })
        .collect()
}

/// A raised flag, with the injected anomaly it caught, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoFlag {
    pub device: usize,
    pub row: usize,
    pub timestamp_ms: i64,
    pub verdict: Verdict,
    pub caught: Option<Injected>,
}

/// Precision and recall against the injected anomalies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoSummary {
    pub events: usize,
    pub flags: usize,
    pub true_flags: usize,
    pub injected: usize,
    pub detected: usize,
}

impl DemoSummary {
    pub fn precision(&self) -> f64 {
        if self.flags == 0 {
            0.0
        } else {
            self.true_flags as f64 / self.flags as f64
        }
    }

    pub fn recall(&self) -> f64 {
        if self.injected == 0 {
            0.0
        } else {
            self.detected as f64 / self.injected as f64
        }
    }
}

/// Rows after an anomaly in which a flag still counts as catching it (the
/// window of the autoencoder still holds it).
const LATE_ROWS: usize = 32;

/// Runs every device through one pipeline, one batch per time step, and
/// calls `on_flag` for each flag as it is raised.
pub fn run_demo(
    options: &DemoOptions,
    mut on_flag: impl FnMut(&DemoFlag),
) -> Result<DemoSummary, LearnError> {
    let mut config = demo_config();
    config.online.warmup_events = Some(options.warmup_events);
    let devices = simulate_devices(options);
    let mut pipeline = Pipeline::new(
        Arc::new(config),
        ModelSource::Online {
            warmup_events: options.warmup_events,
        },
    );
    let mut detected = vec![vec![false; 2]; devices.len()];
    let (mut flags, mut true_flags) = (0, 0);
    for row in 0..options.points {
        let batch: Vec<Record> = devices
            .iter()
            .map(|d| Record {
                key: d.key.clone(),
                timestamp_ms: d.series.timestamps_ms[row],
                inputs: d.series.values[row].iter().map(|&v| v as f32).collect(),
            })
            .collect();
        for (device, verdict) in pipeline.process_batch(&batch)?.into_iter().enumerate() {
            if !verdict.flag {
                continue;
            }
            let anomalies = &devices[device].series.anomalies;
            let caught = anomalies
                .iter()
                .position(|a| row >= a.start && row < a.start + a.len + LATE_ROWS);
            flags += 1;
            if let Some(k) = caught {
                true_flags += 1;
                detected[device][k] = true;
            }
            on_flag(&DemoFlag {
                device,
                row,
                timestamp_ms: batch[device].timestamp_ms,
                verdict,
                caught: caught.map(|k| anomalies[k]),
            });
        }
    }
    Ok(DemoSummary {
        events: options.points * devices.len(),
        flags,
        true_flags,
        injected: detected.iter().map(Vec::len).sum(),
        detected: detected.iter().flatten().filter(|d| **d).count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_is_valid() {
        demo_config().validate().unwrap();
    }

    #[test]
    fn anomalies_fall_after_the_warmup_and_inside_the_series() {
        let options = DemoOptions::default();
        for device in simulate_devices(&options) {
            for a in &device.series.anomalies {
                assert!(
                    a.start as u64 >= options.warmup_events && a.start + a.len < options.points
                );
            }
        }
    }
}
