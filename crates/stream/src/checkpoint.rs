//! A key's checkpoint: everything it has learned, as one versioned binary
//! record, so that a restart, a rebalance or a model update does not send
//! it back through its warm-up.
//!
//! ```text
//! magic    4 bytes  "TWKS"
//! version  u8       FORMAT_VERSION
//! model    string   the stream's model the record belongs to (u32 length, UTF-8)
//! inputs   KeyInputs: last event time, moving averages
//! scoring  option: which model scores the key (0: the stream's, a bundle
//!          or an online stream's prior; 1: its own, learned online,
//!          which follows), then its KeyState: scaler, window, recurrent
//!          state, error tails, threshold, hygiene, events
//! learner  option (online keys): the history it learns from, each event
//!          with its usability, and its counters
//! ```
//!
//! Numbers are little-endian and collections carry their length
//! ([`crate::codec`]). A record of another format version, of another
//! model, or whose shapes do not fit the model is refused, never
//! half-used: the key then starts afresh.

use crate::codec::{Decode, DecodeError, Encode};
use crate::config::StreamConfig;
use crate::learner::LearnerFactory;
use crate::model::ScoringModel;
use crate::online::OnlineLearner;
use crate::state::store::{KeyInputs, KeyState};

/// First bytes of every key checkpoint.
pub const MAGIC: [u8; 4] = *b"TWKS";

/// Version of the record layout; a reader refuses any other.
pub const FORMAT_VERSION: u8 = 1;

/// The model a key scores with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyModel<'a> {
    /// The stream's: its bundle, or an online stream's prior.
    Shared,
    /// Its own, learned online.
    Own(&'a ScoringModel),
}

/// A key as its checkpoint holds it.
#[derive(Debug)]
pub struct RestoredKey {
    pub inputs: KeyInputs,
    /// The key's own model (`None`: the stream's) and its state, once it
    /// scores.
    pub scoring: Option<(Option<ScoringModel>, KeyState)>,
    pub learner: Option<OnlineLearner>,
}

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
}

impl KeyShape {
    pub fn of(model: &ScoringModel) -> KeyShape {
        KeyShape {
            window_len: model.kernels.window_len,
            inputs: model.kernels.inputs(),
            state_width: model.kernels.state_width(),
            tails: model.error_tails.len(),
        }
    }

    fn of_state(state: &KeyState) -> KeyShape {
        KeyShape {
            window_len: state.window.slots(),
            inputs: state.window.width(),
            state_width: state.recurrent.len(),
            tails: state.detection.tail_count(),
        }
    }
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
    /// Every label [`CheckpointError::reason`] gives.
    pub const REASONS: [&'static str; 4] = ["corrupt", "version", "model", "shape"];

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

/// A key's record for the stream's model `model_id`.
pub fn encode_key(
    model_id: &str,
    inputs: &KeyInputs,
    scoring: Option<(KeyModel<'_>, &KeyState)>,
    learner: Option<&OnlineLearner>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(&MAGIC);
    FORMAT_VERSION.encode(&mut out);
    model_id.encode(&mut out);
    inputs.encode(&mut out);
    scoring.is_some().encode(&mut out);
    if let Some((model, state)) = scoring {
        match model {
            KeyModel::Shared => 0u8.encode(&mut out),
            KeyModel::Own(model) => {
                1u8.encode(&mut out);
                model.encode(&mut out);
            }
        }
        state.encode(&mut out);
    }
    learner.is_some().encode(&mut out);
    if let Some(learner) = learner {
        learner.encode_progress(&mut out);
    }
    out
}

/// A key from its record, if it was written by this format for the
/// stream's model `model_id` and fits the models: `shared` (the stream's
/// bundle or prior) or the key's own. A learning key gets a learner from
/// `learners`, which only online streams have.
pub fn decode_key(
    record: &[u8],
    model_id: &str,
    shared: Option<&ScoringModel>,
    config: &StreamConfig,
    learners: Option<&dyn LearnerFactory>,
) -> Result<RestoredKey, CheckpointError> {
    let Some(mut body) = record.strip_prefix(&MAGIC) else {
        return Err(CheckpointError::NotACheckpoint);
    };
    let version = u8::decode(&mut body)?;
    if version != FORMAT_VERSION {
        return Err(CheckpointError::UnknownVersion { found: version });
    }
    let found = String::decode(&mut body)?;
    if found != model_id {
        return Err(CheckpointError::OtherModel {
            found,
            expected: model_id.to_owned(),
        });
    }
    let inputs = KeyInputs::decode(&mut body)?;
    let averages = config.schema.keyed_inputs().smoothed.len();
    // A key checkpointed before its first event has no averages yet.
    if inputs.averages() != averages && inputs.averages() != 0 {
        return Err(CheckpointError::WrongShape(format!(
            "{} moving averages, the schema has {averages}",
            inputs.averages()
        )));
    }
    let scoring = if bool::decode(&mut body)? {
        let own = match u8::decode(&mut body)? {
            0 => None,
            1 => Some(ScoringModel::decode(&mut body)?),
            other => return Err(DecodeError::invalid("key model", other.to_string()).into()),
        };
        let state = KeyState::decode(&mut body)?;
        let Some(model) = own.as_ref().or(shared) else {
            return Err(CheckpointError::WrongShape(
                "the key scored with the stream's model, which this stream has none of".into(),
            ));
        };
        let (found, expected) = (KeyShape::of_state(&state), KeyShape::of(model));
        if found != expected || model.kernels.inputs() != config.schema.input_width() {
            return Err(CheckpointError::WrongShape(format!(
                "{found:?}, the model's {expected:?}"
            )));
        }
        Some((own, state))
    } else {
        None
    };
    let learner = if bool::decode(&mut body)? {
        let Some(learners) = learners else {
            return Err(CheckpointError::WrongShape(
                "a key learning online, for a stream that learns nothing".into(),
            ));
        };
        let restored = OnlineLearner::decode_progress(&mut body, learners.learner())?;
        let width = restored.history_width();
        if width != 0 && width != config.schema.input_width() {
            return Err(CheckpointError::WrongShape(format!(
                "a learning history of {width} inputs, the schema has {}",
                config.schema.input_width()
            )));
        }
        Some(restored)
    } else {
        None
    };
    if !body.is_empty() {
        return Err(DecodeError::TrailingBytes(body.len()).into());
    }
    Ok(RestoredKey {
        inputs,
        scoring,
        learner,
    })
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2};

    use super::*;
    use crate::detect::score::{ErrorTail, ScoreConfig};
    use crate::detect::threshold::Threshold;
    use crate::infer::KernelModel;
    use crate::infer::activation::Activation;
    use crate::infer::dense::{Dense, DenseStack};
    use crate::infer::recurrent::{GruCell, RecurrentCell};
    use crate::learner::{LearnError, Learner, Series};
    use crate::state::scaler::ScalerStats;

    const MODEL: &str = "sensor@3";

    /// Two inputs (a value and its moving average), windows of 4, a GRU of 3.
    fn config() -> StreamConfig {
        toml::from_str(
            r#"
            [schema]
            name = "s"
            features = [{ name = "a" }, { name = "a_slow", field = "a", smoothing_events = 10 }]
            [model]
            window_len = 4
            "#,
        )
        .unwrap()
    }

    /// A small model with weights that vary, so that keys' states move.
    fn model(seed: f32) -> ScoringModel {
        let (inputs, hidden, window_len) = (2, 3, 4);
        let matrix = |rows: usize, cols: usize| {
            Array2::from_shape_fn((rows, cols), |(i, j)| {
                ((i * 7 + j * 3) as f32 * seed).sin() * 0.5
            })
        };
        let dense = |from: usize, to: usize| Dense {
            weight: matrix(from, to),
            bias: Array1::from_elem(to, 0.1),
            activation: Activation::Identity,
        };
        let errors: Vec<f64> = (1..=300).map(|i| f64::from(i) / 100.0).collect();
        let tail = ErrorTail::fit(&errors, &ScoreConfig::default());
        ScoringModel {
            kernels: KernelModel {
                cell: RecurrentCell::Gru(GruCell {
                    w_input: matrix(inputs, 3 * hidden),
                    w_hidden: matrix(hidden, 3 * hidden),
                    b_input: Array1::zeros(3 * hidden),
                    b_hidden: Array1::zeros(3 * hidden),
                }),
                head: dense(hidden, inputs),
                autoencoder: DenseStack {
                    layers: vec![dense(window_len * inputs, window_len * inputs)],
                },
                window_len,
                centred_inputs: vec![true, true],
            },
            scaler: ScalerStats {
                mean: vec![1.0, 1.0],
                std: vec![0.5, 0.5],
                count: 500,
            },
            error_tails: vec![tail.clone(), tail.clone(), tail.clone(), tail],
            threshold: Threshold::Fixed { value: 0.8 },
        }
    }

    struct NoLearner;

    #[derive(Debug)]
    struct NoLearners;

    impl LearnerFactory for NoLearners {
        fn learner(&self) -> Box<dyn Learner> {
            Box::new(NoLearner)
        }
    }

    impl Learner for NoLearner {
        fn learn(
            &mut self,
            _history: &Series,
            _config: &StreamConfig,
            _max_epochs: usize,
        ) -> Result<(ScoringModel, KeyState), LearnError> {
            unreachable!("restoring trains nothing")
        }

        fn resume(&mut self, _model: &ScoringModel) {}
    }

    /// A key that has seen some events scored by `model`: every part of its
    /// state has moved, and its learner has a history.
    fn used_key(model: &ScoringModel) -> (KeyInputs, KeyState, OnlineLearner) {
        let config = config();
        let keyed = config.schema.keyed_inputs();
        let mut state = model.new_key_state(&config, None);
        let mut inputs = KeyInputs::default();
        let mut learner = OnlineLearner::new(50, &config.online, NoLearners.learner());
        let evidence = crate::pipeline::Evidence::of(&config.schema);
        let mut buffers = crate::pipeline::BatchBuffers::default();
        let mut row = [0.0; 2];
        for t in 0..40 {
            let x = (t as f32 * 0.3).sin() * 2.0 + 1.0;
            inputs.fill(t * 1000, &[x, x], &keyed, &mut row);
            let raw = ndarray::ArrayView2::from_shape((1, 2), &row).unwrap();
            let errors = crate::pipeline::advance_batch(
                &model.kernels,
                std::slice::from_mut(&mut state),
                raw,
                &evidence,
                config.state.input_clip,
                &mut buffers,
            );
            let learned = match errors[0] {
                Some(_) => {
                    state
                        .detection
                        .detect(&buffers.feature_errors[..4], &config.detect)
                        .learned
                }
                None => true,
            };
            if learned {
                state.scaler.observe(&row);
            }
            learner.observe(&row, learned);
        }
        (inputs, state, learner)
    }

    fn restore(
        record: &[u8],
        shared: Option<&ScoringModel>,
    ) -> Result<RestoredKey, CheckpointError> {
        decode_key(record, MODEL, shared, &config(), Some(&NoLearners))
    }

    #[test]
    fn a_key_scored_by_the_streams_model_reads_back_as_it_was_written() {
        let shared = model(0.3);
        let (inputs, state, _) = used_key(&shared);
        let record = encode_key(MODEL, &inputs, Some((KeyModel::Shared, &state)), None);
        let restored = restore(&record, Some(&shared)).unwrap();
        assert_eq!(restored.inputs, inputs);
        assert_eq!(restored.scoring, Some((None, state.clone())));
        assert!(restored.learner.is_none());
        let (_, state) = restored.scoring.as_ref().unwrap();
        assert_eq!(
            encode_key(
                MODEL,
                &restored.inputs,
                Some((KeyModel::Shared, state)),
                None
            ),
            record
        );
    }

    /// A key learning online, scored by its own model, and its record.
    fn online_key() -> (ScoringModel, KeyInputs, KeyState, OnlineLearner, Vec<u8>) {
        let own = model(0.7);
        let (inputs, state, learner) = used_key(&own);
        let record = encode_key(
            MODEL,
            &inputs,
            Some((KeyModel::Own(&own), &state)),
            Some(&learner),
        );
        (own, inputs, state, learner, record)
    }

    #[test]
    fn a_key_learning_online_keeps_its_own_model_and_history() {
        let (own, _, state, learner, record) = online_key();
        // An online stream without a prior: the key's own model is in the record.
        let restored = restore(&record, None).unwrap();
        // A stream that learns nothing refuses a learning key.
        assert!(matches!(
            decode_key(&record, MODEL, None, &config(), None),
            Err(CheckpointError::WrongShape(_))
        ));
        assert_eq!(restored.scoring, Some((Some(own.clone()), state.clone())));
        let restored_learner = restored.learner.as_ref().unwrap();
        assert_eq!(restored_learner.seen(), 40);
        assert_eq!(restored_learner.scaler_stats(), learner.scaler_stats());
        let (model, state) = restored.scoring.as_ref().unwrap();
        let again = encode_key(
            MODEL,
            &restored.inputs,
            Some((KeyModel::Own(model.as_ref().unwrap()), state)),
            Some(restored_learner),
        );
        assert_eq!(again, record);
    }

    #[test]
    fn records_of_another_version_model_or_shape_are_refused() {
        let shared = model(0.3);
        let (inputs, state, _) = used_key(&shared);
        let record = encode_key(MODEL, &inputs, Some((KeyModel::Shared, &state)), None);
        let mut newer = record.clone();
        newer[4] = FORMAT_VERSION + 1;
        assert_eq!(
            restore(&newer, Some(&shared)).unwrap_err(),
            CheckpointError::UnknownVersion {
                found: FORMAT_VERSION + 1
            }
        );
        assert!(matches!(
            decode_key(
                &record,
                "sensor@4",
                Some(&shared),
                &config(),
                Some(&NoLearners)
            ),
            Err(CheckpointError::OtherModel { .. })
        ));
        // A stream model with another window length.
        let mut longer = model(0.3);
        longer.kernels.window_len = 2;
        longer.kernels.autoencoder.layers = vec![Dense {
            weight: Array2::zeros((4, 4)),
            bias: Array1::zeros(4),
            activation: Activation::Identity,
        }];
        assert!(matches!(
            restore(&record, Some(&longer)),
            Err(CheckpointError::WrongShape(_))
        ));
        // The key scored with the stream's model, and there is none.
        assert!(matches!(
            restore(&record, None),
            Err(CheckpointError::WrongShape(_))
        ));
        assert_eq!(
            restore(b"{\"json\": 1}", Some(&shared)).unwrap_err(),
            CheckpointError::NotACheckpoint
        );
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let (.., record) = online_key();
        for end in 0..record.len() {
            assert!(restore(&record[..end], None).is_err(), "cut at {end}");
        }
        // Every single damaged byte past the header is either refused or
        // read as some state that fits the model; never a panic.
        for at in 5..record.len() {
            let mut damaged = record.clone();
            damaged[at] ^= 0xa5;
            let _ = restore(&damaged, None);
        }
    }
}
