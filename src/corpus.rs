//! A generated development corpus in NAB's layout, to tune detection on
//! more than the 18 nab-dev series: `data/<family>/<name>.csv` (`timestamp,
//! value`) and `labels/combined_windows.json`, so that `eval nab` scores it
//! with NAB's own rules.
//!
//! Six families of signals, short (1,000 to 2,000 points) and long (4,000
//! to 8,000), at 5-minute or hourly steps: seasonal (daily and weekly
//! cycles), trending, noisy (a wandering level), bursty counts, quantised
//! levels and flat lines. After the probationary period each series but
//! about one in six gets one or two anomalies of the kinds a detector must
//! catch (spike, level shift, frequency change, flat line, drift, variance
//! change), labelled with NAB's windows: 10% of the series' length shared
//! among its anomalies, centred on each start.

use std::io::Write;
use std::path::Path;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::jobs::nab::probationary_rows;
use crate::simulate::standard_normal;

/// A family of signals; its name is the corpus category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Seasonal,
    Trending,
    Noisy,
    Bursty,
    Quantised,
    Flat,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::Seasonal,
        Family::Trending,
        Family::Noisy,
        Family::Bursty,
        Family::Quantised,
        Family::Flat,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Family::Seasonal => "seasonal",
            Family::Trending => "trending",
            Family::Noisy => "noisy",
            Family::Bursty => "bursty",
            Family::Quantised => "quantised",
            Family::Flat => "flat",
        }
    }
}

/// What an injected anomaly does from its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A few points far off.
    Spike,
    /// The level moves and stays.
    LevelShift,
    /// The cycle runs at another period for a while.
    FrequencyChange,
    /// The signal sticks at one value for a while.
    FlatLine,
    /// The level ramps away and stays.
    Drift,
    /// The noise grows for a while.
    VarianceChange,
}

impl AnomalyKind {
    const ALL: [AnomalyKind; 6] = [
        AnomalyKind::Spike,
        AnomalyKind::LevelShift,
        AnomalyKind::FrequencyChange,
        AnomalyKind::FlatLine,
        AnomalyKind::Drift,
        AnomalyKind::VarianceChange,
    ];
}

/// One labelled series.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusSeries {
    pub family: Family,
    pub name: String,
    pub start_secs: i64,
    pub step_secs: i64,
    pub values: Vec<f64>,
    /// Start index and kind of each anomaly.
    pub anomalies: Vec<(usize, AnomalyKind)>,
}

impl CorpusSeries {
    /// NAB's label windows as row ranges: 10% of the length shared among
    /// the anomalies, centred on each start.
    pub fn windows(&self) -> Vec<(usize, usize)> {
        if self.anomalies.is_empty() {
            return Vec::new();
        }
        let len = self.values.len();
        let half = len / 10 / self.anomalies.len() / 2;
        self.anomalies
            .iter()
            .map(|&(at, _)| (at.saturating_sub(half), (at + half).min(len - 1)))
            .collect()
    }

    fn timestamp(&self, row: usize) -> String {
        let secs = self.start_secs + self.step_secs * row as i64;
        chrono::DateTime::from_timestamp(secs, 0)
            .expect("corpus times are in range")
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    }
}

/// `count` series, the families in turn, from `seed`.
pub fn generate(count: usize, seed: u64) -> Vec<CorpusSeries> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let family = Family::ALL[i % Family::ALL.len()];
            let name = format!("{}_{:03}", family.name(), i / Family::ALL.len());
            series(family, name, &mut rng)
        })
        .collect()
}

fn series(family: Family, name: String, rng: &mut StdRng) -> CorpusSeries {
    let len = if rng.random_bool(0.5) {
        rng.random_range(1_000..2_000)
    } else {
        rng.random_range(4_000..8_000)
    };
    let step_secs = if rng.random_bool(0.5) { 300 } else { 3_600 };
    let period = (86_400 / step_secs) as f64;
    let level = 10f64.powf(rng.random_range(0.0..3.0));
    let noise = level * rng.random_range(0.01..0.08);
    let amplitude = level * rng.random_range(0.1..0.5);
    let trend = level * rng.random_range(-1.0..1.0) / len as f64;

    // Anomalies after the probationary period, apart from each other.
    let count = match rng.random_range(0..6) {
        0 => 0,
        1 | 2 => 2,
        _ => 1,
    };
    let first = probationary_rows(len) + len / 20;
    let mut anomalies: Vec<(usize, AnomalyKind)> = Vec::new();
    for k in 0..count {
        let span = (len - first) / count;
        let at = first + k * span + rng.random_range(0..span / 2);
        let kind = loop {
            let kind = AnomalyKind::ALL[rng.random_range(0..AnomalyKind::ALL.len())];
            // A signal with no cycle cannot change frequency.
            let cyclic = matches!(family, Family::Seasonal | Family::Quantised);
            if cyclic || kind != AnomalyKind::FrequencyChange {
                break kind;
            }
        };
        anomalies.push((at, kind));
    }
    let duration = (len / 40).max(20);
    // Each anomaly's size, up or down: well clear of the noise and of a
    // twentieth of the level.
    let size = 6.0 * noise.max(amplitude * 0.2).max(level * 0.05);
    let sizes: Vec<f64> = anomalies
        .iter()
        .map(|_| if rng.random_bool(0.5) { size } else { -size })
        .collect();

    let mut values = Vec::with_capacity(len);
    let mut wander = 0.0;
    // Lasting moves of the level: shifts and drifts.
    let mut offset = 0.0;
    for t in 0..len {
        let active = |kind: AnomalyKind, lasting: bool| {
            anomalies
                .iter()
                .any(|&(at, k)| k == kind && t >= at && (lasting || t < at + duration))
        };
        let phase_speed = if active(AnomalyKind::FrequencyChange, false) {
            3.0
        } else {
            1.0
        };
        let phase = std::f64::consts::TAU * t as f64 * phase_speed / period;
        let weekly = 1.0 + 0.2 * (std::f64::consts::TAU * t as f64 / (7.0 * period)).sin();
        let noise_scale = if active(AnomalyKind::VarianceChange, false) {
            5.0
        } else {
            1.0
        };
        let e = noise * noise_scale * standard_normal(rng);
        wander += 0.05 * noise * standard_normal(rng);
        let base = match family {
            Family::Seasonal => level + amplitude * phase.sin() * weekly + e,
            Family::Trending => level + trend * t as f64 + 0.3 * amplitude * phase.sin() + e,
            Family::Noisy => level + 10.0 * wander + e,
            Family::Bursty => {
                let rate = (level / 10.0).max(1.0) * (1.0 + 0.5 * phase.sin());
                poisson(rate * noise_scale.sqrt(), rng)
            }
            Family::Quantised => (level / 10.0 + (amplitude / 10.0) * phase.sin() + e / 10.0)
                .round()
                .max(0.0),
            Family::Flat => level + if noise_scale > 1.0 { e } else { 0.0 },
        };
        let mut spike = 0.0;
        for (&(at, kind), &size) in anomalies.iter().zip(&sizes) {
            match kind {
                AnomalyKind::Spike if (at..at + 3).contains(&t) => spike += 2.0 * size,
                AnomalyKind::LevelShift if t == at => offset += size,
                AnomalyKind::Drift if (at..at + duration).contains(&t) => {
                    offset += size / duration as f64
                }
                _ => {}
            }
        }
        let value = if active(AnomalyKind::FlatLine, false) {
            *values.last().unwrap_or(&base)
        } else {
            base + offset + spike
        };
        values.push(value);
    }
    CorpusSeries {
        family,
        name,
        start_secs: 1_420_070_400, // 2015-01-01
        step_secs,
        values,
        anomalies,
    }
}

/// A Poisson draw (Knuth for small rates, a rounded normal for large).
fn poisson(rate: f64, rng: &mut StdRng) -> f64 {
    if rate > 30.0 {
        return (rate + rate.sqrt() * standard_normal(rng)).round().max(0.0);
    }
    let limit = (-rate).exp();
    let (mut k, mut p) = (0.0, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= limit {
            return k;
        }
        k += 1.0;
    }
}

/// Writes `series` under `dir` in NAB's layout.
pub fn write(dir: &Path, series: &[CorpusSeries]) -> std::io::Result<()> {
    let mut labels = serde_json::Map::new();
    for s in series {
        let folder = dir.join("data").join(s.family.name());
        std::fs::create_dir_all(&folder)?;
        let mut text = String::from("timestamp,value\n");
        for (t, v) in s.values.iter().enumerate() {
            text.push_str(&format!("{},{v:.6}\n", s.timestamp(t)));
        }
        std::fs::write(folder.join(format!("{}.csv", s.name)), text)?;
        let windows: Vec<serde_json::Value> = s
            .windows()
            .into_iter()
            .map(|(from, to)| {
                serde_json::json!([
                    format!("{}.000000", s.timestamp(from)),
                    format!("{}.000000", s.timestamp(to))
                ])
            })
            .collect();
        labels.insert(
            format!("{}/{}.csv", s.family.name(), s.name),
            windows.into(),
        );
    }
    let folder = dir.join("labels");
    std::fs::create_dir_all(&folder)?;
    std::fs::write(
        folder.join("combined_windows.json"),
        serde_json::to_string_pretty(&labels).expect("labels serialise") + "\n",
    )
}

/// Writes every series into one CSV, `series,timestamp,value`, keyed by
/// series name: what `tidewatch train` reads to learn one model of them
/// all (the shipped prior, `models/prior`).
pub fn write_combined(path: &Path, series: &[CorpusSeries]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "series,timestamp,value")?;
    for s in series {
        for (t, v) in s.values.iter().enumerate() {
            writeln!(out, "{},{},{v:.6}", s.name, s.timestamp(t))?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_corpus_is_seeded_and_labels_every_anomaly_after_the_probation() {
        let corpus = generate(60, 3);
        assert_eq!(corpus, generate(60, 3));
        let mut kinds = std::collections::BTreeSet::new();
        for s in &corpus {
            assert!(s.values.iter().all(|v| v.is_finite()), "{}", s.name);
            for (&(at, kind), (from, to)) in s.anomalies.iter().zip(s.windows()) {
                assert!(at > probationary_rows(s.values.len()), "{}", s.name);
                assert!(from <= at && at <= to, "{}", s.name);
                kinds.insert(format!("{kind:?}"));
            }
        }
        assert_eq!(kinds.len(), AnomalyKind::ALL.len(), "{kinds:?}");
        assert!(corpus.iter().any(|s| s.anomalies.is_empty()));
        assert!(corpus.iter().any(|s| s.values.len() < 2_000));
        assert!(corpus.iter().any(|s| s.values.len() >= 4_000));
    }
}
