//! Everything tidewatch remembers about one key, and the map of keys.

use foldhash::HashMap;
use foldhash::HashMapExt;

use super::scaler::RunningScaler;
use super::window::Window;
use crate::detect::DetectionState;

/// One key's state between events.
#[derive(Debug, Clone)]
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

/// A key's last event time, for the seconds-since-previous transform.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventClock {
    last_timestamp_ms: Option<i64>,
}

impl EventClock {
    /// Seconds since this key's previous event as `ln(1 + s)`, recording
    /// this event's time. Out-of-order events count as 0 s.
    pub fn log_seconds_since_previous(&mut self, timestamp_ms: i64) -> f32 {
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

/// Per-key entries of any kind, owned by one worker.
#[derive(Debug)]
pub struct KeyStore<T> {
    entries: HashMap<String, T>,
}

impl<T> Default for KeyStore<T> {
    fn default() -> Self {
        KeyStore {
            entries: HashMap::new(),
        }
    }
}

impl<T> KeyStore<T> {
    pub fn get_or_insert_with(&mut self, key: &str, create: impl FnOnce() -> T) -> &mut T {
        if !self.entries.contains_key(key) {
            self.entries.insert(key.to_owned(), create());
        }
        self.entries.get_mut(key).expect("just inserted")
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        self.entries.get_mut(key)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_gaps_in_log_seconds() {
        let mut state = EventClock::default();
        assert_eq!(state.log_seconds_since_previous(10_000), 0.0);
        assert!((state.log_seconds_since_previous(19_000) - 10f32.ln()).abs() < 1e-6);
        assert_eq!(state.log_seconds_since_previous(5_000), 0.0);
    }
}
