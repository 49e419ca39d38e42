//! Running per-input statistics that standardise a key's inputs.
//!
//! A key starts from the statistics its model was trained with (as if it had
//! already seen `prior_events` events) and moves towards its own as events
//! arrive; past `memory_events` the oldest influence fades geometrically, so
//! a drifting stream is followed instead of averaged away.
//!
//! No single event can blind a key: the running statistics learn each input
//! that its transform leaves unbounded winsorised to within `input_clip`
//! standard deviations of the mean (a genuine shift still moves them,
//! geometrically fast; an absurd reading only as much as one at the clip),
//! and training leaves out rows beyond a series' [`Fence`]. One-hot and
//! calendar inputs cannot be absurd, and a rare category is learned whole.

use serde::{Deserialize, Serialize};

use crate::codec::{Decode, DecodeError, Encode};
use crate::source::Schema;
use crate::source::schema::KeyedInputs;
use crate::state::StateConfig;

/// Mean and standard deviation of each input, as saved in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalerStats {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    /// Events the statistics were computed from.
    pub count: u64,
}

/// Smallest standard deviation used, relative to the prior's, so a key whose
/// input never varied still scales a change to a large, finite value.
const STD_FLOOR_FRACTION: f32 = 0.1;
/// Absolute floor for inputs that never varied at all, even in training.
const STD_FLOOR_ABSOLUTE: f32 = 1e-3;

impl ScalerStats {
    /// The first inconsistency of statistics read from a manifest for
    /// `width` inputs: lengths, a mean that is not finite, a standard
    /// deviation that is not finite and positive.
    pub fn check(&self, width: usize) -> Result<(), String> {
        for (name, values) in [("mean", &self.mean), ("std", &self.std)] {
            if values.len() != width {
                return Err(format!(
                    "scaler.{name} has {} values; the schema has {width} inputs",
                    values.len()
                ));
            }
        }
        if let Some((i, m)) = self.mean.iter().enumerate().find(|(_, m)| !m.is_finite()) {
            return Err(format!("scaler.mean[{i}] must be finite, got {m}"));
        }
        match self
            .std
            .iter()
            .enumerate()
            .find(|(_, s)| !(s.is_finite() && **s > 0.0))
        {
            Some((i, s)) => Err(format!("scaler.std[{i}] must be in (0, inf), got {s}")),
            None => Ok(()),
        }
    }

    /// Statistics of a set of rows (each `width` long).
    pub fn fit<'a>(rows: impl IntoIterator<Item = &'a [f32]>, width: usize) -> ScalerStats {
        let mut scaler = RunningScaler::empty(width, u64::MAX);
        for row in rows {
            scaler.observe(row);
        }
        scaler.stats()
    }

    /// These statistics with each smoothed input given its source's, so
    /// that a moving average is measured in the units of the value it
    /// averages (its own spread is far smaller, and over a key's first
    /// events next to none).
    pub fn scaled_like_sources(self, keyed: &KeyedInputs) -> ScalerStats {
        let scaled_by = keyed.scaled_by(self.mean.len());
        ScalerStats {
            mean: scaled_by.iter().map(|&j| self.mean[j]).collect(),
            std: scaled_by.iter().map(|&j| self.std[j]).collect(),
            count: self.count,
        }
    }
}

/// Quantiles whose span measures a series' bulk: robust to the 1% of rows
/// beyond them, however absurd.
const BULK_QUANTILES: (f64, f64) = (0.01, 0.99);
/// How far beyond its bulk a value may lie and still be learned from, in
/// spans of the bulk: about a hundred standard deviations of normal noise,
/// so only readings no process produces are left out.
const FENCE_REACH: f32 = 20.0;
/// Smallest bulk span, relative to the bulk's magnitude, so a series that
/// hardly ever varies keeps its rare changes.
const BULK_SPAN_FLOOR_FRACTION: f32 = 1e-3;

/// The plausible values of each input of one series: its bulk widened by
/// [`FENCE_REACH`] spans on each side. Training learns only from rows
/// within it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    low: Vec<f32>,
    high: Vec<f32>,
}

impl Fence {
    /// The fence of `rows` on the inputs marked `unbounded` (each row as
    /// long as the mask); open on the others, and when there are no rows.
    /// A rare category is not absurd: bounded inputs are never fenced.
    pub fn around<'a>(rows: impl IntoIterator<Item = &'a [f32]>, unbounded: &[bool]) -> Fence {
        let mut columns = vec![Vec::new(); unbounded.len()];
        for row in rows {
            for ((column, &x), _) in columns
                .iter_mut()
                .zip(row)
                .zip(unbounded)
                .filter(|(_, fenced)| **fenced)
            {
                column.push(x);
            }
        }
        let (low, high) = columns
            .into_iter()
            .map(|mut column| {
                if column.is_empty() {
                    return (f32::NEG_INFINITY, f32::INFINITY);
                }
                column.sort_unstable_by(f32::total_cmp);
                let quantile = |q: f64| column[((column.len() - 1) as f64 * q).round() as usize];
                let (bottom, top) = (quantile(BULK_QUANTILES.0), quantile(BULK_QUANTILES.1));
                let span = (top - bottom)
                    .max(BULK_SPAN_FLOOR_FRACTION * bottom.abs().max(top.abs()))
                    .max(STD_FLOOR_ABSOLUTE);
                (bottom - FENCE_REACH * span, top + FENCE_REACH * span)
            })
            .unzip();
        Fence { low, high }
    }

    /// Whether every input of `row` is within the fence.
    pub fn holds(&self, row: &[f32]) -> bool {
        row.iter()
            .zip(self.low.iter().zip(&self.high))
            .all(|(x, (low, high))| (low..=high).contains(&x))
    }
}

/// Welford statistics with a bounded memory.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningScaler {
    mean: Vec<f64>,
    m2: Vec<f64>,
    count: f64,
    memory_events: f64,
    floor: Vec<f32>,
    /// Each input is learned winsorised to `mean ± learn_clip · std`
    /// (infinite for inputs bounded by their transform).
    learn_clip: Vec<f64>,
    /// The input whose statistics scale each input ([`KeyedInputs::scaled_by`]).
    scaled_by: Vec<usize>,
}

impl RunningScaler {
    fn empty(width: usize, memory_events: u64) -> RunningScaler {
        RunningScaler {
            mean: vec![0.0; width],
            m2: vec![0.0; width],
            count: 0.0,
            memory_events: memory_events as f64,
            floor: vec![STD_FLOOR_ABSOLUTE; width],
            learn_clip: vec![f64::INFINITY; width],
            scaled_by: (0..width).collect(),
        }
    }

    /// Starts from `prior`, weighted as `scaler_prior_events` events; the
    /// inputs `schema` leaves unbounded are learned winsorised, and its
    /// smoothed inputs are scaled like their sources.
    pub fn from_prior(prior: &ScalerStats, config: &StateConfig, schema: &Schema) -> RunningScaler {
        let unbounded = schema.unbounded_inputs();
        let scaled_by = schema.keyed_inputs().scaled_by(prior.mean.len());
        let memory_events = config.scaler_memory_events;
        let count = config
            .scaler_prior_events
            .min(prior.count)
            .min(memory_events) as f64;
        RunningScaler {
            mean: prior.mean.iter().map(|&m| f64::from(m)).collect(),
            m2: prior
                .std
                .iter()
                .map(|&s| f64::from(s).powi(2) * count)
                .collect(),
            count,
            memory_events: memory_events as f64,
            floor: prior
                .std
                .iter()
                .map(|&s| (s * STD_FLOOR_FRACTION).max(STD_FLOOR_ABSOLUTE))
                .collect(),
            learn_clip: unbounded
                .iter()
                .map(|&u| {
                    if u {
                        f64::from(config.input_clip)
                    } else {
                        f64::INFINITY
                    }
                })
                .collect(),
            scaled_by,
        }
    }

    pub fn observe(&mut self, row: &[f32]) {
        // Past the memory, treat the statistics as worth `memory - 1` events
        // so each new one keeps a weight of 1 / memory.
        if self.count >= self.memory_events {
            let keep = (self.memory_events - 1.0) / self.count;
            self.m2.iter_mut().for_each(|m| *m *= keep);
            self.count = self.memory_events - 1.0;
        }
        let known = self.count > 0.0;
        let count = self.count + 1.0;
        for (i, &x) in row.iter().enumerate().take(self.mean.len()) {
            // Winsorised by the statistics before this event.
            let x = f64::from(x);
            let x = if known {
                let reach = self.learn_clip[i] * f64::from(self.std(i));
                x.clamp(self.mean[i] - reach, self.mean[i] + reach)
            } else {
                x
            };
            let delta = x - self.mean[i];
            self.mean[i] += delta / count;
            self.m2[i] += delta * (x - self.mean[i]);
        }
        self.count = count;
    }

    fn std(&self, i: usize) -> f32 {
        let var = if self.count > 1.0 {
            self.m2[i] / self.count
        } else {
            0.0
        };
        (var.sqrt() as f32).max(self.floor[i])
    }

    /// Standardises `row` into `out`, clipped to `±clip`.
    pub fn transform(&self, row: &[f32], clip: f32, out: &mut [f32]) {
        for ((o, &x), &j) in out.iter_mut().zip(row).zip(&self.scaled_by) {
            *o = ((x - self.mean[j] as f32) / self.std(j)).clamp(-clip, clip);
        }
    }

    /// The statistics each input is scaled with.
    /// Inputs the scaler standardises.
    pub fn width(&self) -> usize {
        self.mean.len()
    }

    pub fn stats(&self) -> ScalerStats {
        ScalerStats {
            mean: self
                .scaled_by
                .iter()
                .map(|&j| self.mean[j] as f32)
                .collect(),
            std: self.scaled_by.iter().map(|&j| self.std(j)).collect(),
            count: self.count as u64,
        }
    }
}

impl Encode for RunningScaler {
    fn encode(&self, out: &mut Vec<u8>) {
        self.mean.encode(out);
        self.m2.encode(out);
        self.count.encode(out);
        self.memory_events.encode(out);
        self.floor.encode(out);
        self.learn_clip.encode(out);
        self.scaled_by.encode(out);
    }
}

impl Decode for RunningScaler {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let scaler = RunningScaler {
            mean: Vec::decode(input)?,
            m2: Vec::decode(input)?,
            count: f64::decode(input)?,
            memory_events: f64::decode(input)?,
            floor: Vec::decode(input)?,
            learn_clip: Vec::decode(input)?,
            scaled_by: Vec::decode(input)?,
        };
        let width = scaler.mean.len();
        let consistent = [
            scaler.m2.len(),
            scaler.floor.len(),
            scaler.learn_clip.len(),
            scaler.scaled_by.len(),
        ]
        .iter()
        .all(|&len| len == width)
            && scaler.scaled_by.iter().all(|&source| source < width)
            && scaler.mean.iter().chain(&scaler.m2).all(|v| v.is_finite())
            && scaler.m2.iter().all(|&v| v >= 0.0)
            && scaler.floor.iter().all(|&v| v.is_finite() && v > 0.0)
            && scaler.learn_clip.iter().all(|&v| v > 0.0)
            && scaler.count.is_finite()
            && scaler.count >= 0.0
            && scaler.memory_events >= 1.0;
        if !consistent {
            return Err(DecodeError::invalid(
                "scaler",
                format!("statistics of {width} inputs that do not hold together"),
            ));
        }
        Ok(scaler)
    }
}

impl Encode for ScalerStats {
    fn encode(&self, out: &mut Vec<u8>) {
        self.mean.encode(out);
        self.std.encode(out);
        self.count.encode(out);
    }
}

impl Decode for ScalerStats {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let stats = ScalerStats {
            mean: Vec::decode(input)?,
            std: Vec::decode(input)?,
            count: u64::decode(input)?,
        };
        stats
            .check(stats.mean.len())
            .map_err(|e| DecodeError::invalid("scaler statistics", e))?;
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A schema of one unbounded input.
    fn one_value() -> Schema {
        Schema::identity("s", "timestamp", &["x"])
    }

    #[test]
    fn fits_mean_and_std() {
        let rows = [[1.0f32, 10.0], [3.0, 10.0], [5.0, 10.0]];
        let stats = ScalerStats::fit(rows.iter().map(|r| r.as_slice()), 2);
        assert_eq!(stats.mean, [3.0, 10.0]);
        assert!((stats.std[0] - (8.0f32 / 3.0).sqrt()).abs() < 1e-6);
        assert_eq!(stats.std[1], STD_FLOOR_ABSOLUTE);
        assert_eq!(stats.count, 3);
    }

    #[test]
    fn a_moving_average_is_scaled_like_the_value_it_averages() {
        let schema: Schema = toml::from_str(
            r#"
            name = "s"
            [[features]]
            name = "x"
            [[features]]
            name = "x_slow"
            field = "x"
            smoothing_events = 64
            "#,
        )
        .unwrap();
        let own = ScalerStats {
            mean: vec![0.0, 5.0],
            std: vec![2.0, 0.01],
            count: 32,
        };
        let tied = own.scaled_like_sources(&schema.keyed_inputs());
        assert_eq!(
            (tied.mean.clone(), tied.std.clone()),
            (vec![0.0, 0.0], vec![2.0, 2.0])
        );
        let mut scaler = RunningScaler::from_prior(&tied, &StateConfig::default(), &schema);
        // The average stays put while the value swings: its own spread
        // shrinks, the value's does not, and the value's scales both.
        for i in 0..5000 {
            let x = if i % 2 == 0 { 2.0 } else { -2.0 };
            scaler.observe(&[x, 0.0]);
        }
        let mut out = [0.0; 2];
        scaler.transform(&[4.0, 1.0], 50.0, &mut out);
        assert!(
            (out[0] - 2.0).abs() < 1e-3 && (out[1] - 0.5).abs() < 1e-3,
            "{out:?}"
        );
        let std = scaler.stats().std;
        assert!((std[0] - 2.0).abs() < 1e-3 && std[1] == std[0], "{std:?}");
    }

    #[test]
    fn follows_a_shift_within_its_memory() {
        let prior = ScalerStats {
            mean: vec![0.0],
            std: vec![1.0],
            count: 1000,
        };
        let config = StateConfig {
            scaler_prior_events: 100,
            scaler_memory_events: 200,
            input_clip: 50.0,
        };
        let mut scaler = RunningScaler::from_prior(&prior, &config, &one_value());
        let mut out = [0.0];
        scaler.transform(&[2.0], 50.0, &mut out);
        assert_eq!(out, [2.0]);
        for _ in 0..2000 {
            scaler.observe(&[10.0]);
        }
        let stats = scaler.stats();
        assert!((stats.mean[0] - 10.0).abs() < 0.01, "{stats:?}");
        // the floor keeps a constant input finite
        assert!((stats.std[0] - 0.1).abs() < 1e-6, "{stats:?}");
        scaler.transform(&[1e9], 50.0, &mut out);
        assert_eq!(out, [50.0]);
    }

    #[test]
    fn one_absurd_reading_moves_the_statistics_no_more_than_one_at_the_clip() {
        let prior = ScalerStats {
            mean: vec![0.0],
            std: vec![1.0],
            count: 1000,
        };
        let config = StateConfig::default();
        let at_clip = |x: f32| {
            let mut scaler = RunningScaler::from_prior(&prior, &config, &one_value());
            scaler.observe(&[x]);
            scaler.stats()
        };
        let absurd = at_clip(3e38);
        assert_eq!(absurd, at_clip(config.input_clip));
        assert!(absurd.std[0] < 1.2 && absurd.mean[0] < 0.03, "{absurd:?}");
    }

    #[test]
    fn a_genuine_shift_is_followed_quickly_despite_the_winsorising() {
        let prior = ScalerStats {
            mean: vec![0.0],
            std: vec![1.0],
            count: 1000,
        };
        let mut scaler = RunningScaler::from_prior(&prior, &StateConfig::default(), &one_value());
        for _ in 0..200 {
            scaler.observe(&[1e6]);
        }
        let mut out = [0.0];
        scaler.transform(&[1e6], 20.0, &mut out);
        assert!(out[0].abs() < 3.0, "{out:?} {:?}", scaler.stats());
    }

    #[test]
    fn the_fence_keeps_the_bulk_and_rare_changes_and_leaves_out_the_absurd() {
        let mut rows: Vec<[f32; 1]> = (0..400).map(|i| [100.0 + (i % 7) as f32]).collect();
        rows[50] = [1e30];
        rows[60] = [-1e30];
        rows[70] = [200.0];
        let fence = Fence::around(rows.iter().map(|r| r.as_slice()), &[true]);
        let held: Vec<bool> = rows.iter().map(|r| fence.holds(r)).collect();
        assert_eq!(held.iter().filter(|&&h| !h).count(), 2);
        assert!(!held[50] && !held[60] && held[70]);

        // An input that never varies keeps a change of a few per cent.
        let flat: Vec<[f32; 1]> = (0..400).map(|_| [1000.0]).collect();
        let fence = Fence::around(flat.iter().map(|r| r.as_slice()), &[true]);
        assert!(fence.holds(&[1010.0]) && !fence.holds(&[2000.0]));
    }
}
