//! Everything tidewatch remembers about one key, and the map of keys.

use std::time::{Duration, Instant};

use foldhash::HashMap;
use foldhash::HashMapExt;

use super::scaler::RunningScaler;
use super::window::Window;
use crate::codec::{Decode, DecodeError, Encode, check_finite};
use crate::detect::DetectionState;
use crate::source::schema::KeyedInputs;

/// One key's state between events.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    pub scaler: RunningScaler,
    /// Scaled inputs of the last `window_len` events.
    pub window: Window,
    /// Recurrent state of the forecaster: `[h | c]` (LSTM) or `[h]` (GRU).
    pub recurrent: Vec<f32>,
    pub detection: DetectionState,
    /// Events this key has advanced its model with.
    pub events: u64,
}

impl KeyState {
    pub fn new(
        scaler: RunningScaler,
        window_len: usize,
        inputs: usize,
        state_width: usize,
        detection: DetectionState,
    ) -> KeyState {
        KeyState {
            scaler,
            window: Window::new(window_len, inputs),
            recurrent: vec![0.0; state_width],
            detection,
            events: 0,
        }
    }
}

/// What a key remembers of its earlier events to fill its
/// [`KeyedInputs`]: the last event time (seconds since previous) and the
/// moving averages of its smoothed features.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyInputs {
    last_timestamp_ms: Option<i64>,
    /// One per smoothed input; empty until the key's first event. Double
    /// precision: a single-precision average of values near 10^6 would move
    /// in steps of 0.06.
    averages: Vec<f64>,
}

impl KeyInputs {
    /// Writes an event's model inputs into `out`: its decoded `inputs`
    /// with the keyed ones filled in from this key's history, which takes
    /// the event in. Every event counts, normal or not, as for a raw value.
    pub fn fill(
        &mut self,
        timestamp_ms: i64,
        inputs: &[f32],
        keyed: &KeyedInputs,
        out: &mut [f32],
    ) {
        out.copy_from_slice(inputs);
        if !keyed.since_previous.is_empty() {
            let gap = self.log_seconds_since_previous(timestamp_ms);
            for &slot in &keyed.since_previous {
                out[slot] = gap;
            }
        }
        if self.averages.is_empty() {
            self.averages = keyed
                .smoothed
                .iter()
                .map(|s| f64::from(out[s.input]))
                .collect();
        }
        for (average, smoothed) in self.averages.iter_mut().zip(&keyed.smoothed) {
            *average += smoothed.weight * (f64::from(out[smoothed.input]) - *average);
            out[smoothed.input] = *average as f32;
        }
    }

    /// Seconds since this key's previous event as `ln(1 + s)`, recording
    /// this event's time. Out-of-order events count as 0 s.
    fn log_seconds_since_previous(&mut self, timestamp_ms: i64) -> f32 {
        let gap_ms = self
            .last_timestamp_ms
            .map_or(0, |previous| (timestamp_ms - previous).max(0));
        self.last_timestamp_ms = Some(
            self.last_timestamp_ms
                .map_or(timestamp_ms, |p| p.max(timestamp_ms)),
        );
        (gap_ms as f64 / 1000.0).ln_1p() as f32
    }
}

/// Per-key entries of any kind, owned by one worker, each stamped with
/// when it was last used so idle keys can be forgotten.
#[derive(Debug)]
pub struct KeyStore<T> {
    entries: HashMap<String, (T, Instant)>,
    now: Instant,
}

impl<T> Default for KeyStore<T> {
    fn default() -> Self {
        KeyStore {
            entries: HashMap::new(),
            now: Instant::now(),
        }
    }
}

/// Keys forgotten by one [`KeyStore::evict`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evicted {
    pub idle: usize,
    pub over_capacity: usize,
    /// Every key forgotten, in no particular order (the changelog deletes
    /// their records).
    pub keys: Vec<String>,
}

impl<T> KeyStore<T> {
    /// Sets the time that keys used from now on are stamped with (read once
    /// per batch rather than per event).
    pub fn set_now(&mut self, now: Instant) {
        self.now = now;
    }

    pub fn get_or_insert_with(&mut self, key: &str, create: impl FnOnce() -> T) -> &mut T {
        let now = self.now;
        if !self.entries.contains_key(key) {
            self.entries.insert(key.to_owned(), (create(), now));
        }
        let entry = self.entries.get_mut(key).expect("just inserted");
        entry.1 = now;
        &mut entry.0
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        self.entries.get_mut(key).map(|(entry, _)| entry)
    }

    pub fn remove(&mut self, key: &str) -> Option<T> {
        self.entries.remove(key).map(|(entry, _)| entry)
    }

    /// Forgets keys idle for `ttl`, then the least recently used beyond
    /// `max_keys`.
    pub fn evict(&mut self, now: Instant, ttl: Duration, max_keys: usize) -> Evicted {
        let mut keys = Vec::new();
        self.entries.retain(|key, (_, seen)| {
            let keep = now.saturating_duration_since(*seen) < ttl;
            if !keep {
                keys.push(key.clone());
            }
            keep
        });
        let idle = keys.len();
        let over_capacity = self.entries.len().saturating_sub(max_keys);
        if over_capacity > 0 {
            let mut seen: Vec<Instant> = self.entries.values().map(|(_, s)| *s).collect();
            seen.sort_unstable();
            let cutoff = seen[over_capacity - 1];
            let mut to_drop = over_capacity;
            self.entries.retain(|key, (_, s)| {
                let drop = to_drop > 0 && *s <= cutoff;
                to_drop -= usize::from(drop);
                if drop {
                    keys.push(key.clone());
                }
                !drop
            });
        }
        Evicted {
            idle,
            over_capacity,
            keys,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.entries.iter().map(|(key, (entry, _))| (key, entry))
    }

    /// Every entry, mutably, without marking it used.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&String, &mut T)> {
        self.entries
            .iter_mut()
            .map(|(key, (entry, _))| (key, entry))
    }
}

impl Encode for KeyState {
    fn encode(&self, out: &mut Vec<u8>) {
        self.scaler.encode(out);
        self.window.encode(out);
        self.recurrent.encode(out);
        self.detection.encode(out);
        self.events.encode(out);
    }
}

impl Decode for KeyState {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let state = KeyState {
            scaler: RunningScaler::decode(input)?,
            window: Window::decode(input)?,
            recurrent: Vec::decode(input)?,
            detection: DetectionState::decode(input)?,
            events: u64::decode(input)?,
        };
        if state.scaler.width() != state.window.width() {
            return Err(DecodeError::invalid(
                "key state",
                format!(
                    "a scaler of {} inputs for a window of {}",
                    state.scaler.width(),
                    state.window.width()
                ),
            ));
        }
        check_finite("recurrent state", &state.recurrent)?;
        Ok(state)
    }
}

impl Encode for KeyInputs {
    fn encode(&self, out: &mut Vec<u8>) {
        self.last_timestamp_ms.encode(out);
        self.averages.encode(out);
    }
}

impl Decode for KeyInputs {
    fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let inputs = KeyInputs {
            last_timestamp_ms: Option::decode(input)?,
            averages: Vec::decode(input)?,
        };
        check_finite("moving averages", &inputs.averages)?;
        Ok(inputs)
    }
}

impl KeyInputs {
    /// Moving averages the key keeps (0 before its first event).
    pub fn averages(&self) -> usize {
        self.averages.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::schema::Smoothed;

    #[test]
    fn forgets_idle_keys_then_the_least_recent() {
        let start = Instant::now();
        let mut store: KeyStore<u32> = KeyStore::default();
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            store.set_now(start + Duration::from_secs(i as u64));
            *store.get_or_insert_with(key, || 0) += 1;
        }
        store.set_now(start + Duration::from_secs(10));
        store.get_or_insert_with("a", || 0);
        // b is idle past the TTL; of the rest, c is the least recent beyond 2 keys.
        let evicted = store.evict(
            start + Duration::from_secs(11),
            Duration::from_millis(9500),
            2,
        );
        assert_eq!((evicted.idle, evicted.over_capacity), (1, 1));
        assert_eq!(evicted.keys, ["b", "c"]);
        let mut keys: Vec<&String> = store.iter().map(|(k, _)| k).collect();
        keys.sort();
        assert_eq!(keys, ["a", "d"]);
    }

    #[test]
    fn fills_gaps_in_log_seconds_and_moving_averages() {
        // Inputs: a value, its moving average (weight 0.5), the gap.
        let keyed = KeyedInputs {
            since_previous: vec![2],
            smoothed: vec![Smoothed {
                input: 1,
                source: 0,
                weight: 0.5,
            }],
        };
        let mut state = KeyInputs::default();
        let mut out = [0.0; 3];
        let mut fill = |t: i64, x: f32| {
            state.fill(t, &[x, x, 0.0], &keyed, &mut out);
            out
        };
        assert_eq!(fill(10_000, 4.0), [4.0, 4.0, 0.0]);
        let [x, average, gap] = fill(19_000, 8.0);
        assert_eq!((x, average), (8.0, 6.0));
        assert!((gap - 10f32.ln()).abs() < 1e-6);
        // Time going backwards counts as no gap; the average moves on.
        assert_eq!(fill(5_000, 2.0), [2.0, 4.0, 0.0]);
    }
}
