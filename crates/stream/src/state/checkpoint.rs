//! A key's checkpoint: everything it has learned, as one versioned binary
//! record, so that a restart, a rebalance or a model update does not send
//! it back through its warm-up.
//!
//! ```text
//! magic    4 bytes  "TWKS"
//! version  u8       FORMAT_VERSION
//! model    string   the model the state belongs to (u32 length, UTF-8)
//! inputs   KeyInputs: last event time, moving averages
//! state    KeyState: scaler, window, recurrent state, error tails,
//!          threshold, hygiene, events
//! ```
//!
//! Numbers are little-endian and collections carry their length
//! ([`crate::codec`]). A record of another format version, of another
//! model, or whose shapes do not fit the model is refused, never
//! half-used: the key then starts afresh.

use super::store::{KeyInputs, KeyState};
use crate::codec::{Decode, DecodeError, Encode};

/// First bytes of every key checkpoint.
pub const MAGIC: [u8; 4] = *b"TWKS";

/// Version of the record layout; a reader refuses any other.
pub const FORMAT_VERSION: u8 = 1;

/// The shapes a model gives its keys' state; a record must match them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyShape {
    pub window_len: usize,
    /// Model inputs per event.
    pub inputs: usize,
    /// Floats of recurrent state.
    pub state_width: usize,
    /// Error tails: one per detector and evidence feature.
    pub tails: usize,
    /// Moving averages the schema keeps per key.
    pub averages: usize,
}

/// Why a checkpoint was not restored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a key checkpoint (no TWKS header)")]
    NotACheckpoint,
    #[error("checkpoint format {found}, this build reads {FORMAT_VERSION}")]
    UnknownVersion { found: u8 },
    #[error("checkpoint of model {found:?}, the key is scored by {expected:?}")]
    OtherModel { found: String, expected: String },
    #[error("checkpoint does not fit the model: {0}")]
    WrongShape(String),
    #[error("corrupt checkpoint: {0}")]
    Corrupt(#[from] DecodeError),
}

impl CheckpointError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            CheckpointError::NotACheckpoint | CheckpointError::Corrupt(_) => "corrupt",
            CheckpointError::UnknownVersion { .. } => "version",
            CheckpointError::OtherModel { .. } => "model",
            CheckpointError::WrongShape(_) => "shape",
        }
    }
}

/// A key's record for `model`.
pub fn encode_key(model: &str, inputs: &KeyInputs, state: &KeyState) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 + state.window.heap_bytes());
    out.extend_from_slice(&MAGIC);
    FORMAT_VERSION.encode(&mut out);
    model.encode(&mut out);
    inputs.encode(&mut out);
    state.encode(&mut out);
    out
}

/// A key's inputs and state from its record, if it was written by this
/// format for `model` and fits `shape`.
pub fn decode_key(
    record: &[u8],
    model: &str,
    shape: &KeyShape,
) -> Result<(KeyInputs, KeyState), CheckpointError> {
    let Some(body) = record.strip_prefix(&MAGIC) else {
        return Err(CheckpointError::NotACheckpoint);
    };
    let mut body = body;
    let version = u8::decode(&mut body)?;
    if version != FORMAT_VERSION {
        return Err(CheckpointError::UnknownVersion { found: version });
    }
    let found = String::decode(&mut body)?;
    if found != model {
        return Err(CheckpointError::OtherModel {
            found,
            expected: model.to_owned(),
        });
    }
    let inputs = KeyInputs::decode(&mut body)?;
    let state = KeyState::decode(&mut body)?;
    if !body.is_empty() {
        return Err(DecodeError::TrailingBytes(body.len()).into());
    }
    let found_shape = KeyShape {
        window_len: state.window.slots(),
        inputs: state.window.width(),
        state_width: state.recurrent.len(),
        tails: state.detection.tail_count(),
        averages: inputs.averages(),
    };
    // A key checkpointed before its first event has no averages yet.
    let averages_fit = found_shape.averages == shape.averages || found_shape.averages == 0;
    let model_shapes_fit = KeyShape {
        averages: shape.averages,
        ..found_shape
    } == *shape;
    if !model_shapes_fit || !averages_fit {
        return Err(CheckpointError::WrongShape(format!(
            "{found_shape:?}, the model's {shape:?}"
        )));
    }
    Ok((inputs, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StreamConfig;
    use crate::detect::DetectionState;
    use crate::detect::score::{ErrorTail, ScoreConfig};
    use crate::detect::threshold::Threshold;
    use crate::source::Schema;
    use crate::source::schema::{KeyedInputs, Smoothed};
    use crate::state::scaler::{RunningScaler, ScalerStats};

    const MODEL: &str = "sensor@3";

    fn shape() -> KeyShape {
        KeyShape {
            window_len: 4,
            inputs: 2,
            state_width: 3,
            tails: 2,
            averages: 1,
        }
    }

    /// A key that has seen some events: every part of its state has moved.
    fn used_key() -> (KeyInputs, KeyState) {
        let config = StreamConfig::for_schema(Schema::identity("s", "t", &["a", "b"]));
        let prior = ScalerStats {
            mean: vec![1.0, 2.0],
            std: vec![0.5, 1.5],
            count: 500,
        };
        let errors: Vec<f64> = (1..=300).map(|i| f64::from(i) / 100.0).collect();
        let tail = ErrorTail::fit(&errors, &ScoreConfig::default());
        let mut state = KeyState::new(
            RunningScaler::from_prior(&prior, &config.state, &config.schema),
            4,
            2,
            3,
            DetectionState::new(vec![tail.clone(), tail], Threshold::Fixed { value: 0.8 }),
        );
        let keyed = KeyedInputs {
            since_previous: Vec::new(),
            smoothed: vec![Smoothed {
                input: 1,
                source: 0,
                weight: 0.1,
            }],
        };
        let mut inputs = KeyInputs::default();
        let mut row = [0.0; 2];
        for t in 0..7 {
            let x = t as f32 * 0.3;
            inputs.fill(t * 1000, &[x, x], &keyed, &mut row);
            state.scaler.observe(&row);
            state.window.push(&row);
            state.recurrent = vec![x, -x, 0.5];
            state.events += 1;
            state
                .detection
                .detect(&[0.1 * f64::from(x), 5.0], &config.detect);
        }
        (inputs, state)
    }

    #[test]
    fn a_key_reads_back_as_it_was_written() {
        let (inputs, state) = used_key();
        let record = encode_key(MODEL, &inputs, &state);
        let (read_inputs, read_state) = decode_key(&record, MODEL, &shape()).unwrap();
        assert_eq!(read_inputs, inputs);
        assert_eq!(read_state, state);
        assert_eq!(encode_key(MODEL, &read_inputs, &read_state), record);
    }

    #[test]
    fn records_of_another_version_model_or_shape_are_refused() {
        let (inputs, state) = used_key();
        let record = encode_key(MODEL, &inputs, &state);
        let mut newer = record.clone();
        newer[4] = FORMAT_VERSION + 1;
        assert_eq!(
            decode_key(&newer, MODEL, &shape()).unwrap_err(),
            CheckpointError::UnknownVersion {
                found: FORMAT_VERSION + 1
            }
        );
        assert!(matches!(
            decode_key(&record, "sensor@4", &shape()),
            Err(CheckpointError::OtherModel { .. })
        ));
        let wider = KeyShape {
            inputs: 3,
            ..shape()
        };
        assert!(matches!(
            decode_key(&record, MODEL, &wider),
            Err(CheckpointError::WrongShape(_))
        ));
        assert_eq!(
            decode_key(b"{\"json\": 1}", MODEL, &shape()).unwrap_err(),
            CheckpointError::NotACheckpoint
        );
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let (inputs, state) = used_key();
        let record = encode_key(MODEL, &inputs, &state);
        for end in 0..record.len() {
            assert!(
                decode_key(&record[..end], MODEL, &shape()).is_err(),
                "cut at {end}"
            );
        }
        // Every single flipped byte past the header is either refused or
        // read as some state that fits the model; never a panic.
        for at in 5..record.len() {
            let mut damaged = record.clone();
            damaged[at] ^= 0xff;
            let _ = decode_key(&damaged, MODEL, &shape());
        }
    }
}
