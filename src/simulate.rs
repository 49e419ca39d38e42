//! Synthetic sensor series with labelled anomalies, for tests, the demo and
//! examples: a daily cycle plus noise, with a second sensor that follows
//! the first, and anomalies injected at chosen places.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Kinds of injected sensor anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SensorAnomaly {
    /// A few points far off the cycle.
    Spike,
    /// The level moves and stays moved.
    LevelShift,
    /// The cycle runs several times faster.
    FrequencyChange,
    /// The reading freezes at its last value.
    FlatLine,
    /// The second sensor stops following the first.
    CorrelationBreak,
}

/// An injected anomaly: its kind and the rows it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injected {
    pub kind: SensorAnomaly,
    pub start: usize,
    pub len: usize,
}

/// How a sensor series looks.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorShape {
    pub points: usize,
    /// Seconds between readings.
    pub interval_secs: i64,
    /// Points per cycle.
    pub period_points: f64,
    pub level: f64,
    pub amplitude: f64,
    /// Noise standard deviation.
    pub noise: f64,
}

impl Default for SensorShape {
    fn default() -> Self {
        SensorShape {
            points: 3000,
            interval_secs: 60,
            period_points: 120.0,
            level: 50.0,
            amplitude: 10.0,
            noise: 0.5,
        }
    }
}

/// A generated series: times, two sensor columns, and the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSeries {
    pub timestamps_ms: Vec<i64>,
    /// [points][2]: the driving sensor and one that follows it.
    pub values: Vec<[f64; 2]>,
    pub anomalies: Vec<Injected>,
}

/// 2024-01-01T00:00:00Z, where generated series start.
pub const START_MS: i64 = 1_704_067_200_000;

impl SensorSeries {
    pub fn generate(shape: &SensorShape, anomalies: &[Injected], seed: u64) -> SensorSeries {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = |rng: &mut StdRng| shape.noise * standard_normal(rng);
        let mut phase = 0.0f64;
        let mut values: Vec<[f64; 2]> = Vec::with_capacity(shape.points);
        let step = std::f64::consts::TAU / shape.period_points;
        for t in 0..shape.points {
            let active = anomalies
                .iter()
                .find(|a| (a.start..a.start + a.len).contains(&t));
            let speed = if active.is_some_and(|a| a.kind == SensorAnomaly::FrequencyChange) {
                4.0
            } else {
                1.0
            };
            phase += step * speed;
            let mut first = shape.level + shape.amplitude * phase.sin() + noise(&mut rng);
            let mut second = 0.5 * first + 5.0 + noise(&mut rng);
            match active.map(|a| (a.kind, t - a.start)) {
                Some((SensorAnomaly::Spike, _)) => first += 8.0 * shape.amplitude,
                Some((SensorAnomaly::LevelShift, _)) => {
                    first += 3.0 * shape.amplitude;
                    second += 1.5 * shape.amplitude;
                }
                Some((SensorAnomaly::FlatLine, _)) => {
                    [first, second] = values.last().copied().unwrap_or([first, second]);
                }
                Some((SensorAnomaly::CorrelationBreak, _)) => {
                    second =
                        shape.level * 0.5 + 5.0 - (first - shape.level) * 0.5 + noise(&mut rng);
                }
                Some((SensorAnomaly::FrequencyChange, _)) | None => {}
            }
            values.push([first, second]);
        }
        SensorSeries {
            timestamps_ms: (0..shape.points as i64)
                .map(|i| START_MS + i * shape.interval_secs * 1000)
                .collect(),
            values,
            anomalies: anomalies.to_vec(),
        }
    }

    /// Whether row `t` lies in an injected anomaly.
    pub fn is_anomalous(&self, t: usize) -> bool {
        self.anomalies
            .iter()
            .any(|a| (a.start..a.start + a.len).contains(&t))
    }

    /// CSV `timestamp,temperature,pressure`.
    pub fn to_csv(&self) -> String {
        let mut text = String::from("timestamp,temperature,pressure\n");
        for (t, [a, b]) in self.timestamps_ms.iter().zip(&self.values) {
            text.push_str(&format!(
                "{},{a:.4},{b:.4}\n",
                crate::jobs::score::format_timestamp(*t)
            ));
        }
        text
    }
}

/// A standard normal draw (Box-Muller).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u: f64 = rng.random_range(f64::EPSILON..1.0);
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}
