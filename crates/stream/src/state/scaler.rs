//! Running per-input statistics that standardise a key's inputs.
//!
//! A key starts from the statistics its model was trained with (as if it had
//! already seen `prior_events` events) and moves towards its own as events
//! arrive; past `memory_events` the oldest influence fades geometrically, so
//! a drifting stream is followed instead of averaged away.

use serde::{Deserialize, Serialize};

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
    /// Statistics of a set of rows (each `width` long).
    pub fn fit<'a>(rows: impl IntoIterator<Item = &'a [f32]>, width: usize) -> ScalerStats {
        let mut scaler = RunningScaler::empty(width, u64::MAX);
        for row in rows {
            scaler.observe(row);
        }
        scaler.stats()
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
}

impl RunningScaler {
    fn empty(width: usize, memory_events: u64) -> RunningScaler {
        RunningScaler {
            mean: vec![0.0; width],
            m2: vec![0.0; width],
            count: 0.0,
            memory_events: memory_events as f64,
            floor: vec![STD_FLOOR_ABSOLUTE; width],
        }
    }

    /// Starts from `prior`, weighted as `prior_events` events.
    pub fn from_prior(prior: &ScalerStats, prior_events: u64, memory_events: u64) -> RunningScaler {
        let count = prior_events.min(prior.count).min(memory_events) as f64;
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
        self.count += 1.0;
        for ((mean, m2), &x) in self.mean.iter_mut().zip(&mut self.m2).zip(row) {
            let x = f64::from(x);
            let delta = x - *mean;
            *mean += delta / self.count;
            *m2 += delta * (x - *mean);
        }
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
        for (i, (o, &x)) in out.iter_mut().zip(row).enumerate() {
            *o = ((x - self.mean[i] as f32) / self.std(i)).clamp(-clip, clip);
        }
    }

    pub fn stats(&self) -> ScalerStats {
        ScalerStats {
            mean: self.mean.iter().map(|&m| m as f32).collect(),
            std: (0..self.mean.len()).map(|i| self.std(i)).collect(),
            count: self.count as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn follows_a_shift_within_its_memory() {
        let prior = ScalerStats {
            mean: vec![0.0],
            std: vec![1.0],
            count: 1000,
        };
        let mut scaler = RunningScaler::from_prior(&prior, 100, 200);
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
}
