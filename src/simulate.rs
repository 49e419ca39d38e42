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

/// Kinds of injected payment anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentAnomaly {
    /// Several online payments within minutes.
    Burst,
    /// An amount far above the account's habit.
    UnusualAmount,
    /// A payment from a new country in the middle of the night.
    NewCountryAtNight,
}

/// One simulated payment, as the JSON message of the payments stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    pub account: String,
    pub timestamp: i64,
    pub amount: f64,
    pub merchant_category: String,
    pub country: String,
    pub channel: String,
}

/// An injected anomaly: which key, which kind, and when it happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Truth {
    pub stream: String,
    pub key: String,
    pub kind: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// A flag up to this time still counts as catching the anomaly (the
    /// models' window still holds it).
    pub caught_until_ms: i64,
}

const CATEGORIES: [&str; 6] = [
    "grocery",
    "fuel",
    "restaurant",
    "travel",
    "electronics",
    "online",
];
const COUNTRIES: [&str; 5] = ["FR", "DE", "GB", "ES", "US"];

/// Simulated payments of `accounts` accounts, `per_account` each, time
/// ordered, with `anomalies_per_account` anomalies per account injected
/// after the first `clean_events` payments; and the truth.
pub fn simulate_payments(
    accounts: usize,
    per_account: usize,
    clean_events: usize,
    anomalies_per_account: usize,
    seed: u64,
) -> (Vec<Payment>, Vec<Truth>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut payments = Vec::with_capacity(accounts * per_account);
    let mut truth = Vec::new();
    const KINDS: [PaymentAnomaly; 3] = [
        PaymentAnomaly::Burst,
        PaymentAnomaly::UnusualAmount,
        PaymentAnomaly::NewCountryAtNight,
    ];
    for a in 0..accounts {
        let key = format!("acct-{:04}", a + 1);
        let typical_amount = (2.5 + 2.0 * rng.random::<f64>()).exp();
        let home = rng.random_range(0..4);
        let usual: Vec<usize> = (0..3).map(|_| rng.random_range(0..5)).collect();
        let channel = if rng.random::<f64>() < 0.7 {
            "pos"
        } else {
            "web"
        };
        let mean_gap_secs = 3600.0 * (2.0 + 4.0 * rng.random::<f64>());
        let mut t = START_MS + rng.random_range(0..3_600_000);
        let scored = per_account.saturating_sub(clean_events);
        let starts: Vec<usize> = (0..anomalies_per_account)
            .map(|k| clean_events + scored * (2 * k + 1) / (2 * anomalies_per_account.max(1)))
            .collect();
        let mut i = 0;
        while i < per_account {
            if let Some(k) = starts.iter().position(|&s| s == i) {
                let kind = KINDS[(a + k) % KINDS.len()];
                let injected = inject_payment(&key, kind, &mut t, typical_amount, home, &mut rng);
                i += injected.len();
                let start_ms = injected[0].timestamp;
                let end_ms = injected.last().map_or(start_ms, |p| p.timestamp);
                payments.extend(injected);
                truth.push(Truth {
                    stream: "payments".into(),
                    key: key.clone(),
                    kind: format!("{kind:?}"),
                    start_ms,
                    end_ms,
                    caught_until_ms: end_ms,
                });
                continue;
            }
            t = next_daytime(t, mean_gap_secs, &mut rng);
            let amount = typical_amount * (0.3 * standard_normal(&mut rng)).exp();
            payments.push(Payment {
                account: key.clone(),
                timestamp: t,
                amount: (amount * 100.0).round() / 100.0,
                merchant_category: CATEGORIES[usual[rng.random_range(0..usual.len())]].into(),
                country: COUNTRIES[if rng.random::<f64>() < 0.98 {
                    home
                } else {
                    (home + 1) % 4
                }]
                .into(),
                channel: if rng.random::<f64>() < 0.85 {
                    channel
                } else {
                    "atm"
                }
                .into(),
            });
            i += 1;
        }
    }
    payments.sort_by_key(|p| p.timestamp);
    (payments, truth)
}

/// The next payment time: an exponential gap, moved into 08:00-22:00 UTC.
fn next_daytime(t: i64, mean_gap_secs: f64, rng: &mut StdRng) -> i64 {
    let gap = -mean_gap_secs * (1.0 - rng.random::<f64>()).ln();
    let mut next = t + (gap * 1000.0) as i64 + 60_000;
    let hour = next.rem_euclid(86_400_000) / 3_600_000;
    if !(8..22).contains(&hour) {
        let day = next.div_euclid(86_400_000) + i64::from(hour >= 22);
        next = day * 86_400_000 + 8 * 3_600_000 + rng.random_range(0..3_600_000);
    }
    next
}

fn inject_payment(
    key: &str,
    kind: PaymentAnomaly,
    t: &mut i64,
    typical: f64,
    home: usize,
    rng: &mut StdRng,
) -> Vec<Payment> {
    let payment =
        |timestamp: i64, amount: f64, category: &str, country: usize, channel: &str| Payment {
            account: key.to_owned(),
            timestamp,
            amount: (amount * 100.0).round() / 100.0,
            merchant_category: category.into(),
            country: COUNTRIES[country].into(),
            channel: channel.into(),
        };
    *t = next_daytime(*t, 3600.0, rng);
    match kind {
        PaymentAnomaly::Burst => (0..6)
            .map(|_| {
                *t += rng.random_range(20_000..90_000);
                payment(*t, typical * 1.5, "online", home, "web")
            })
            .collect(),
        PaymentAnomaly::UnusualAmount => {
            vec![payment(*t, typical * 40.0, "electronics", home, "web")]
        }
        PaymentAnomaly::NewCountryAtNight => {
            *t = (*t).div_euclid(86_400_000) * 86_400_000
                + 86_400_000
                + 3 * 3_600_000
                + rng.random_range(0..1_800_000);
            vec![payment(*t, typical * 4.0, "travel", 4, "pos")]
        }
    }
}

/// One sensor reading, as the JSON message of the sensor stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reading {
    pub device: String,
    pub timestamp: i64,
    pub temperature: f64,
    pub pressure: f64,
}

/// Readings of `devices` devices (each a [`SensorSeries`] with two anomalies
/// after `clean_points`), interleaved in time, and the truth.
pub fn simulate_readings(
    devices: usize,
    points: usize,
    clean_points: usize,
    seed: u64,
) -> (Vec<Reading>, Vec<Truth>) {
    const KINDS: [SensorAnomaly; 5] = [
        SensorAnomaly::Spike,
        SensorAnomaly::LevelShift,
        SensorAnomaly::FrequencyChange,
        SensorAnomaly::FlatLine,
        SensorAnomaly::CorrelationBreak,
    ];
    let shape = SensorShape {
        points,
        ..SensorShape::default()
    };
    let scored = points.saturating_sub(clean_points);
    let mut readings = Vec::with_capacity(devices * points);
    let mut truth = Vec::new();
    for d in 0..devices {
        let key = format!("pump-{}", d + 1);
        // Too short a scored part has no room for anomalies.
        let count = if scored >= 4 { 2 } else { 0 };
        let anomalies: Vec<Injected> = (0..count)
            .map(|k| {
                let kind = KINDS[(2 * d + k) % KINDS.len()];
                // Each anomaly keeps within its quarter of the scored part.
                let len = if kind == SensorAnomaly::Spike { 3 } else { 120 };
                let len = len.min(scored / 4).max(1);
                Injected {
                    kind,
                    start: clean_points + scored * (2 * k + 1) / 4,
                    len,
                }
            })
            .collect();
        let series = SensorSeries::generate(&shape, &anomalies, seed + d as u64);
        let step_ms = shape.interval_secs * 1000;
        for a in &series.anomalies {
            let start_ms = series.timestamps_ms[a.start];
            let end_ms = series.timestamps_ms[a.start + a.len - 1];
            truth.push(Truth {
                stream: "pump".into(),
                key: key.clone(),
                kind: format!("{:?}", a.kind),
                start_ms,
                end_ms,
                caught_until_ms: end_ms + 32 * step_ms,
            });
        }
        readings.extend(
            series
                .timestamps_ms
                .iter()
                .zip(&series.values)
                .map(|(&t, v)| Reading {
                    device: key.clone(),
                    timestamp: t,
                    temperature: (v[0] * 1e4).round() / 1e4,
                    pressure: (v[1] * 1e4).round() / 1e4,
                }),
        );
    }
    readings.sort_by_key(|r| r.timestamp);
    (readings, truth)
}
