//! The streaming path, shared by `score`, online learning, calibration and
//! the daemon: record -> key state -> kernels -> detection -> [`Verdict`].
//!
//! Events are processed in micro-batches. Within a batch, events of distinct
//! keys that share a model go through the kernels together; a key's second
//! event in the same batch waits for its first (a "wave" later), so a batch
//! gives exactly the verdicts that one-by-one processing would.

use foldhash::{HashMap, HashMapExt};
use std::borrow::BorrowMut;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ndarray::{Array2, ArrayView2};

use crate::checkpoint::{CheckpointError, KeyModel, decode_key, encode_key};
use crate::config::StreamConfig;
use crate::detect::DetectorErrors;
use crate::infer::{KernelModel, Scratch};
use crate::learner::{LearnError, LearnerFactory};
use crate::model::ScoringModel;
use crate::online::OnlineLearner;
use crate::source::schema::KeyedInputs;
use crate::source::{Record, Schema};
use crate::state::store::{Evicted, KeyInputs, KeyState, KeyStore};

/// Where a verdict stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The key has no model yet and is learning from this event (online mode).
    Learning,
    /// The key's window is not full yet; nothing is judged.
    Warming,
    Scored,
}

/// A feature's share of an event's error.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    pub feature: String,
    /// In [0, 1]; the shares of all features sum to 1.
    pub share: f64,
}

/// What the pipeline made of one event (verdicts come back in the order of
/// their records, which carry the key and time).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub status: Status,
    /// Anomaly score in [0, 1] (0 unless scored).
    pub score: f64,
    /// The key's threshold, once it is scored.
    pub threshold: Option<f64>,
    /// The key is in an anomalous state.
    pub is_anomaly: bool,
    /// A flag is raised for this event (anomalous and not cooling down).
    pub flag: bool,
    /// Per-detector RMSE, when the key has a model.
    pub errors: Option<DetectorErrors>,
    /// Largest contributors first; filled for anomalous events only.
    pub top_features: Vec<Contribution>,
}

impl Verdict {
    fn unscored(status: Status) -> Verdict {
        Verdict {
            status,
            score: 0.0,
            threshold: None,
            is_anomaly: false,
            flag: false,
            errors: None,
            top_features: Vec::new(),
        }
    }
}

/// Reusable buffers for one group of events that share a model.
#[derive(Debug, Default)]
pub struct BatchBuffers {
    inputs: Array2<f32>,
    states: Array2<f32>,
    forecasts: Array2<f32>,
    windows: Array2<f32>,
    reconstructions: Array2<f32>,
    /// Squared forecast error per input: [batch, inputs]
    forecast_sq: Array2<f32>,
    /// Mean squared reconstruction error per input over the window: [batch, inputs]
    reconstruction_sq: Array2<f32>,
    /// Each evidence feature's RMSE, forecast then reconstruction:
    /// [batch * 2 * evidence features]
    pub feature_errors: Vec<f64>,
    scratch: Scratch,
}

fn sized(buffer: &mut Array2<f32>, rows: usize, cols: usize) {
    if buffer.dim() != (rows, cols) {
        *buffer = Array2::zeros((rows, cols));
    }
}

/// Advances each key by one event and returns the per-detector RMSE over
/// evidence inputs (`None` while the key's window is filling); each
/// evidence feature's own RMSE per detector is left in
/// [`BatchBuffers::feature_errors`]. `raw` rows are the events' inputs
/// before scaling: [batch, inputs].
pub fn advance_batch(
    model: &KernelModel,
    states: &mut [impl BorrowMut<KeyState>],
    raw: ArrayView2<f32>,
    evidence: &Evidence,
    input_clip: f32,
    buffers: &mut BatchBuffers,
) -> Vec<Option<DetectorErrors>> {
    let batch = states.len();
    let inputs = model.inputs();
    let window_inputs = model.window_len * inputs;
    sized(&mut buffers.inputs, batch, inputs);
    sized(&mut buffers.states, batch, model.state_width());
    sized(&mut buffers.forecasts, batch, inputs);
    sized(&mut buffers.windows, batch, window_inputs);
    sized(&mut buffers.reconstructions, batch, window_inputs);
    sized(&mut buffers.forecast_sq, batch, inputs);
    sized(&mut buffers.reconstruction_sq, batch, inputs);
    buffers.feature_errors.resize(batch * evidence.tails(), 0.0);

    for (b, state) in states.iter_mut().map(BorrowMut::borrow_mut).enumerate() {
        let scaled = buffers
            .inputs
            .row_mut(b)
            .into_slice()
            .expect("contiguous row");
        state.scaler.transform(
            raw.row(b).as_slice().expect("contiguous row"),
            input_clip,
            scaled,
        );
        state.window.push(scaled);
        if state.window.is_full() {
            state.window.copy_in_order(
                buffers
                    .windows
                    .row_mut(b)
                    .into_slice()
                    .expect("contiguous row"),
            );
        }
        buffers
            .states
            .row_mut(b)
            .as_slice_mut()
            .expect("contiguous row")
            .copy_from_slice(&state.recurrent);
    }
    // The forecast of this event comes from the state before it.
    model.forecast_into(buffers.states.view(), buffers.forecasts.view_mut());
    model.advance(
        buffers.inputs.view(),
        buffers.states.view_mut(),
        &mut buffers.scratch,
    );
    model.reconstruct_into(
        buffers.windows.view(),
        buffers.reconstructions.view_mut(),
        &mut buffers.scratch,
    );

    let mut errors = Vec::with_capacity(batch);
    for (b, state) in states.iter_mut().map(BorrowMut::borrow_mut).enumerate() {
        state
            .recurrent
            .copy_from_slice(buffers.states.row(b).as_slice().expect("contiguous row"));
        state.events += 1;
        if !state.window.is_full() {
            errors.push(None);
            continue;
        }
        let forecast_sq = buffers
            .forecast_sq
            .row_mut(b)
            .into_slice()
            .expect("contiguous row");
        for (((sq, &x), &f), &weight) in forecast_sq
            .iter_mut()
            .zip(row_of(&buffers.inputs, b))
            .zip(row_of(&buffers.forecasts, b))
            .zip(&evidence.weights)
        {
            *sq = weight * (x - f) * (x - f);
        }
        let per_input = buffers
            .reconstruction_sq
            .row_mut(b)
            .into_slice()
            .expect("contiguous row");
        per_input.fill(0.0);
        for (window, rebuilt) in row_of(&buffers.windows, b)
            .chunks_exact(inputs)
            .zip(row_of(&buffers.reconstructions, b).chunks_exact(inputs))
        {
            for ((acc, &w), &r) in per_input.iter_mut().zip(window).zip(rebuilt) {
                *acc += (w - r) * (w - r);
            }
        }
        let positions = model.window_len as f32;
        for (acc, &weight) in per_input.iter_mut().zip(&evidence.weights) {
            *acc *= weight / positions;
        }
        let forecast_sum: f32 = buffers.forecast_sq.row(b).sum();
        let reconstruction_sum: f32 = buffers.reconstruction_sq.row(b).sum();
        let measured = evidence.weights.iter().sum::<f32>().max(1.0);
        let tails = evidence.tails();
        let features = evidence.features.len();
        let by_feature = &mut buffers.feature_errors[b * tails..(b + 1) * tails];
        for (d, squares) in [&buffers.forecast_sq, &buffers.reconstruction_sq]
            .into_iter()
            .enumerate()
        {
            let squares = row_of(squares, b);
            for (f, range) in evidence.features.iter().enumerate() {
                let sum: f32 = squares[range.clone()].iter().sum();
                by_feature[d * features + f] = f64::from((sum / range.len() as f32).sqrt());
            }
        }
        errors.push(Some([
            f64::from((forecast_sum / measured).sqrt()),
            f64::from((reconstruction_sum / measured).sqrt()),
        ]));
    }
    errors
}

/// Row `b` of a row-major buffer.
fn row_of(m: &Array2<f32>, b: usize) -> &[f32] {
    let width = m.ncols();
    &m.as_slice().expect("row-major buffer")[b * width..(b + 1) * width]
}

/// Which model inputs are evidence, and how they group into features.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// 1 for each input whose error is evidence, 0 for calendar context.
    pub weights: Vec<f32>,
    /// Input ranges of the evidence features, in schema order.
    pub features: Vec<std::ops::Range<usize>>,
}

impl Evidence {
    pub fn of(schema: &Schema) -> Evidence {
        let mut features = Vec::new();
        let mut start = 0;
        for feature in &schema.features {
            if feature.is_evidence() {
                features.push(start..start + feature.width());
            }
            start += feature.width();
        }
        let weights = schema
            .measured_inputs()
            .into_iter()
            .map(|m| if m { 1.0 } else { 0.0 })
            .collect();
        Evidence { weights, features }
    }

    /// Error tails a key keeps: one per detector and evidence feature.
    pub fn tails(&self) -> usize {
        2 * self.features.len()
    }
}

/// Events a key starting from a prior learns its scaling from before the
/// prior scores it; its window then fills, so its first score comes at
/// its event number `PRIOR_SCALER_EVENTS + window_len`.
pub const PRIOR_SCALER_EVENTS: u64 = 32;

/// Where keys get their models.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// One trained model for every key.
    Bundle(Arc<ScoringModel>),
    /// Each key learns its own from its first `warmup_events` events,
    /// with a learner from `learners`; with a `prior`, it is scored by the
    /// prior from its first events until then.
    Online {
        warmup_events: u64,
        learners: Arc<dyn LearnerFactory>,
        prior: Option<Arc<ScoringModel>>,
    },
}

/// A key's training that failed. The key keeps what it had: after a
/// failed refit it goes on scoring with its previous model; after a failed
/// first training it goes on learning and tries again later.
#[derive(Debug)]
pub struct LearnFailure {
    pub key: String,
    /// A refit of a key that already scores, rather than its first training.
    pub refit: bool,
    pub error: LearnError,
}

struct Scoring {
    model: Arc<ScoringModel>,
    /// Boxed: a batch moves each key's state out and back, and a pointer
    /// moves cheaper than the state.
    state: Box<KeyState>,
}

/// An event of a key that has a model, on its way through a batch.
struct Member {
    /// Position of the record in the batch (and of its row of inputs).
    index: usize,
    scoring: Scoring,
}

#[derive(Default)]
struct KeyEntry {
    inputs: KeyInputs,
    scoring: Option<Scoring>,
    learner: Option<OnlineLearner>,
    /// The key took an event since its last checkpoint.
    changed: bool,
}

/// What [`Pipeline::reload`] did to the keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Keys that kept their state under the new model.
    pub kept: usize,
    /// Keys whose state did not fit the new model: they start over.
    pub restarted: usize,
}

/// One stream's streaming path over the keys one worker owns.
pub struct Pipeline {
    config: Arc<StreamConfig>,
    source: ModelSource,
    keyed_inputs: KeyedInputs,
    input_owner: Vec<usize>,
    evidence: Evidence,
    keys: KeyStore<KeyEntry>,
    buffers: BatchBuffers,
    learn_failures: Vec<LearnFailure>,
}

impl Pipeline {
    pub fn new(config: Arc<StreamConfig>, source: ModelSource) -> Pipeline {
        let schema = &config.schema;
        Pipeline {
            keyed_inputs: schema.keyed_inputs(),
            input_owner: schema.input_owner(),
            evidence: Evidence::of(schema),
            config,
            source,
            keys: KeyStore::default(),
            buffers: BatchBuffers::default(),
            learn_failures: Vec::new(),
        }
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Number of keys with state.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Forgets keys idle for `ttl`, then the least recently seen beyond `max_keys`.
    pub fn evict(&mut self, ttl: Duration, max_keys: usize) -> Evicted {
        self.keys.evict(Instant::now(), ttl, max_keys)
    }

    /// Drops `key`'s state (its partition moved to another consumer);
    /// unlike eviction, its checkpoint stays for the new owner.
    pub fn forget(&mut self, key: &str) -> bool {
        self.keys.remove(key).is_some()
    }

    /// The model a key scores with, once it has one.
    pub fn key_model(&self, key: &str) -> Option<Arc<ScoringModel>> {
        self.keys
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, entry)| entry.scoring.as_ref().map(|s| Arc::clone(&s.model)))
    }

    /// The model every key of the stream shares: its bundle, or an online
    /// stream's prior.
    fn shared_model(&self) -> Option<&Arc<ScoringModel>> {
        match &self.source {
            ModelSource::Bundle(model) => Some(model),
            ModelSource::Online { prior, .. } => prior.as_ref(),
        }
    }

    /// Checkpoint records of the keys that took an event since their last
    /// one, by key, for the stream's model named `model_id`
    /// (`name@version` of its bundle, or of the online stream).
    pub fn checkpoint_changed(&mut self, model_id: &str) -> Vec<(String, Vec<u8>)> {
        let shared = self.shared_model().cloned();
        let mut records: Vec<(String, Vec<u8>)> = self
            .keys
            .iter_mut()
            .filter(|(_, entry)| entry.changed)
            .map(|(key, entry)| {
                entry.changed = false;
                let scoring = entry.scoring.as_ref().map(|s| {
                    let model = match &shared {
                        Some(shared) if Arc::ptr_eq(shared, &s.model) => KeyModel::Shared,
                        _ => KeyModel::Own(&s.model),
                    };
                    (model, s.state.as_ref())
                });
                let record = encode_key(model_id, &entry.inputs, scoring, entry.learner.as_ref());
                (key.clone(), record)
            })
            .collect();
        records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        records
    }

    /// Gives `key` what its checkpoint `record` holds, written for the
    /// stream's model named `model_id`. A record of another model, format
    /// or shape is refused and the key is left as it was.
    pub fn restore(
        &mut self,
        key: &str,
        record: &[u8],
        model_id: &str,
    ) -> Result<(), CheckpointError> {
        let shared = self.shared_model().cloned();
        let learners = match &self.source {
            ModelSource::Online { learners, .. } => Some(Arc::clone(learners)),
            ModelSource::Bundle(_) => None,
        };
        let restored = decode_key(
            record,
            model_id,
            shared.as_deref(),
            &self.config,
            learners.as_deref(),
        )?;
        let mut learner = restored.learner;
        let scoring = restored.scoring.map(|(own, state)| Scoring {
            model: match own {
                Some(own) => {
                    if let Some(learner) = learner.as_mut() {
                        learner.resume(&own);
                    }
                    Arc::new(own)
                }
                None => Arc::clone(shared.as_ref().expect("checked by decode_key")),
            },
            state: Box::new(state),
        });
        let entry = self.keys.get_or_insert_with(key, KeyEntry::default);
        *entry = KeyEntry {
            inputs: restored.inputs,
            scoring,
            learner,
            changed: false,
        };
        Ok(())
    }

    /// Scores with `source` under `config` from now on (a reloaded model).
    /// Each key keeps its state where it fits the new model (the same
    /// window, inputs, recurrent state and tails: it goes through its
    /// checkpoint record, so what a restore accepts is what a reload
    /// keeps); the others start over. Every kept key counts as changed, so
    /// that the next checkpoint names the new model.
    pub fn reload(&mut self, config: Arc<StreamConfig>, source: ModelSource) -> Reloaded {
        const MODEL_ID: &str = "reload";
        for (_, entry) in self.keys.iter_mut() {
            entry.changed = true;
        }
        let records = self.checkpoint_changed(MODEL_ID);
        *self = Pipeline::new(config, source);
        let mut reloaded = Reloaded::default();
        for (key, record) in records {
            if self.restore(&key, &record, MODEL_ID).is_ok() {
                reloaded.kept += 1;
                if let Some(entry) = self.keys.get_mut(&key) {
                    entry.changed = true;
                }
            } else {
                reloaded.restarted += 1;
            }
        }
        reloaded
    }

    /// The trainings that failed since the last call, oldest first.
    pub fn take_learn_failures(&mut self) -> Vec<LearnFailure> {
        std::mem::take(&mut self.learn_failures)
    }

    pub fn process(&mut self, record: &Record) -> Verdict {
        self.process_batch(std::slice::from_ref(record))
            .pop()
            .expect("one verdict per record")
    }

    /// Verdicts for `records`, in their order. A key whose training fails
    /// keeps its state and is reported by [`Pipeline::take_learn_failures`];
    /// no key is affected by another's failure.
    pub fn process_batch(&mut self, records: &[Record]) -> Vec<Verdict> {
        self.keys.set_now(Instant::now());
        let mut verdicts: Vec<Option<Verdict>> = vec![None; records.len()];
        // Every event's model inputs, keyed ones filled in, in batch order.
        let width = self.config.schema.input_width();
        let mut raw = Array2::zeros((records.len(), width));
        for wave in waves(records) {
            // Keys that score, grouped by the model they share.
            let mut groups: HashMap<usize, Vec<Member>> = HashMap::new();
            for index in wave {
                let record = &records[index];
                let entry = self.keys.get_or_insert_with(&record.key, KeyEntry::default);
                entry.changed = true;
                let row = raw.row_mut(index).into_slice().expect("contiguous");
                entry
                    .inputs
                    .fill(record.timestamp_ms, &record.inputs, &self.keyed_inputs, row);
                if entry.scoring.is_none()
                    && let ModelSource::Bundle(model) = &self.source
                {
                    let state = Box::new(model.new_key_state(&self.config, None));
                    entry.scoring = Some(Scoring {
                        model: Arc::clone(model),
                        state,
                    });
                }
                match entry.scoring.take() {
                    Some(scoring) => {
                        let group = Arc::as_ptr(&scoring.model) as usize;
                        groups
                            .entry(group)
                            .or_default()
                            .push(Member { index, scoring });
                    }
                    None => {
                        let row = raw.row(index);
                        let row = row.as_slice().expect("contiguous");
                        verdicts[index] = Some(self.learn_online(record, row));
                    }
                }
            }
            for (_, members) in groups {
                self.score_group(records, raw.view(), members, &mut verdicts);
            }
        }
        verdicts
            .into_iter()
            .map(|v| v.expect("every record judged"))
            .collect()
    }

    /// A key without a model (online: bundle keys start with one) learns
    /// from the event, its model trained once the warm-up is complete.
    fn learn_online(&mut self, record: &Record, raw: &[f32]) -> Verdict {
        let config = Arc::clone(&self.config);
        let ModelSource::Online {
            warmup_events,
            learners,
            prior,
        } = self.source.clone()
        else {
            unreachable!("bundle keys start with the bundle's model");
        };
        let entry = self
            .keys
            .get_mut(&record.key)
            .expect("entry created by process_batch");
        let learner = entry.learner.get_or_insert_with(|| {
            OnlineLearner::new(warmup_events, &config.online, learners.learner())
        });
        learner.observe(raw, true);
        if learner.warmup_complete() {
            match learner.learn(&config) {
                Ok((model, state)) => {
                    entry.scoring = Some(Scoring {
                        model: Arc::new(model),
                        state: Box::new(state),
                    });
                }
                Err(error) => self.learn_failures.push(LearnFailure {
                    key: record.key.clone(),
                    refit: false,
                    error,
                }),
            }
        } else if let Some(prior) = prior
            && learner.seen() == PRIOR_SCALER_EVENTS
        {
            // The prior scores in the key's own units: its first events
            // give the scaling, which keeps learning.
            let state = prior.prior_key_state(&config, &learner.scaler_stats());
            entry.scoring = Some(Scoring {
                model: prior,
                state: Box::new(state),
            });
        }
        Verdict::unscored(Status::Learning)
    }

    /// Scores the events of `members`, keys that share one model; `batch_raw`
    /// holds the whole batch's model inputs, a row per record.
    fn score_group(
        &mut self,
        records: &[Record],
        batch_raw: ArrayView2<f32>,
        members: Vec<Member>,
        verdicts: &mut [Option<Verdict>],
    ) {
        let config = Arc::clone(&self.config);
        let model = Arc::clone(&members[0].scoring.model);
        let inputs = model.kernels.inputs();
        let mut raw = Array2::zeros((members.len(), inputs));
        let mut states = Vec::with_capacity(members.len());
        let mut indices = Vec::with_capacity(members.len());
        for (b, member) in members.into_iter().enumerate() {
            raw.row_mut(b).assign(&batch_raw.row(member.index));
            states.push(member.scoring.state);
            indices.push(member.index);
        }
        let errors = advance_batch(
            &model.kernels,
            &mut states,
            raw.view(),
            &self.evidence,
            config.state.input_clip,
            &mut self.buffers,
        );

        for (b, (mut state, i)) in states.into_iter().zip(indices).enumerate() {
            let record = &records[i];
            let raw_row = raw.row(b);
            let raw_row = raw_row.as_slice().expect("contiguous");
            let (verdict, learned) = match errors[b] {
                None => (Verdict::unscored(Status::Warming), true),
                Some(errors) => {
                    let tails = self.evidence.tails();
                    let by_feature = &self.buffers.feature_errors[b * tails..(b + 1) * tails];
                    let detection = state.detection.detect(by_feature, &config.detect);
                    let is_anomaly = detection.judgement.is_anomaly;
                    let verdict = Verdict {
                        status: Status::Scored,
                        score: detection.score,
                        threshold: Some(detection.threshold),
                        is_anomaly,
                        flag: detection.judgement.flag,
                        errors: Some(errors),
                        top_features: if is_anomaly {
                            self.contributions(b)
                        } else {
                            Vec::new()
                        },
                    };
                    (verdict, detection.learned)
                }
            };
            if learned {
                state.scaler.observe(raw_row);
            }
            let entry = self
                .keys
                .get_mut(&record.key)
                .expect("scored keys have entries");
            let mut scoring = Scoring {
                model: Arc::clone(&model),
                state,
            };
            if let Some(learner) = entry.learner.as_mut() {
                learner.observe(raw_row, learned);
                if learner.learn_due(&config.online) {
                    let refit = learner.trained();
                    match learner.learn(&config) {
                        Ok((refit_model, refit_state)) => {
                            scoring = Scoring {
                                model: Arc::new(refit_model),
                                state: Box::new(refit_state),
                            };
                        }
                        Err(error) => self.learn_failures.push(LearnFailure {
                            key: record.key.clone(),
                            refit,
                            error,
                        }),
                    }
                }
            }
            entry.scoring = Some(scoring);
            verdicts[i] = Some(verdict);
        }
    }

    /// Per-feature shares of row `b`'s errors, largest first, at most
    /// `detect.top_features` of them. Each detector's per-input errors are
    /// normalised to sum to 1 before they are added, so both weigh the same.
    fn contributions(&self, b: usize) -> Vec<Contribution> {
        let schema = &self.config.schema;
        let mut per_feature = vec![0.0f64; schema.features.len()];
        for errors in [
            self.buffers.forecast_sq.row(b),
            self.buffers.reconstruction_sq.row(b),
        ] {
            let total: f32 = errors.sum();
            if total > 0.0 {
                for (&owner, &e) in self.input_owner.iter().zip(errors) {
                    per_feature[owner] += f64::from(e / total);
                }
            }
        }
        let total: f64 = per_feature.iter().sum();
        let mut ranked: Vec<Contribution> = per_feature
            .into_iter()
            .zip(&schema.features)
            .map(|(share, feature)| Contribution {
                feature: feature.name.clone(),
                share: if total > 0.0 { share / total } else { 0.0 },
            })
            .collect();
        ranked.sort_by(|a, b| b.share.total_cmp(&a.share));
        ranked.truncate(self.config.detect.top_features);
        ranked
    }
}

/// Splits record indices into waves in which each key appears at most once,
/// keeping each key's events in order.
fn waves(records: &[Record]) -> Vec<Vec<usize>> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let count = seen.entry(record.key.as_str()).or_default();
        if waves.len() <= *count {
            waves.push(Vec::new());
        }
        waves[*count].push(i);
        *count += 1;
    }
    waves
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ndarray::Array1;

    use super::*;
    use crate::detect::score::{ErrorTail, ScoreConfig};
    use crate::detect::threshold::Threshold;
    use crate::infer::activation::Activation;
    use crate::infer::dense::{Dense, DenseStack};
    use crate::infer::recurrent::{GruCell, RecurrentCell};
    use crate::learner::Learner;
    use crate::state::scaler::ScalerStats;

    fn record(key: &str) -> Record {
        Record {
            key: key.into(),
            timestamp_ms: 0,
            inputs: vec![0.0],
        }
    }

    /// Readings of keys `a` and `b` that wander, so that each key's scaler,
    /// window, tails and hygiene all move.
    fn wandering(from: usize, to: usize) -> Vec<Record> {
        (from..to)
            .flat_map(|t| {
                ["a", "b"].into_iter().map(move |key| Record {
                    key: key.into(),
                    timestamp_ms: t as i64 * 1000,
                    inputs: vec![
                        (t as f32 * 0.37).sin() * 3.0 + if key == "a" { 10.0 } else { -4.0 },
                    ],
                })
            })
            .collect()
    }

    #[test]
    fn a_restored_key_goes_on_exactly_as_if_never_stopped() {
        let config = Arc::new(StreamConfig::for_schema(Schema::identity("s", "t", &["x"])));
        let model = Arc::new(zero_model());
        let pipeline =
            || Pipeline::new(Arc::clone(&config), ModelSource::Bundle(Arc::clone(&model)));
        let mut running = pipeline();
        running.process_batch(&wandering(0, 300));
        let records = running.checkpoint_changed("zero@1");
        assert_eq!(
            records.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        // Nothing changed since: nothing to write.
        assert!(running.checkpoint_changed("zero@1").is_empty());

        let mut restored = pipeline();
        for (key, record) in &records {
            restored.restore(key, record, "zero@1").unwrap();
        }
        let later = wandering(300, 500);
        let expected = running.process_batch(&later);
        assert_eq!(restored.process_batch(&later), expected);
        // A key that starts afresh instead judges differently.
        assert_ne!(pipeline().process_batch(&later), expected);
        // A record for another model is refused and leaves the key alone.
        let mut other = pipeline();
        assert!(matches!(
            other.restore("a", &records[0].1, "zero@2"),
            Err(CheckpointError::OtherModel { .. })
        ));
        assert_eq!(other.key_count(), 0);
    }

    #[test]
    fn a_reloaded_model_keeps_the_state_that_fits_it() {
        let config = Arc::new(StreamConfig::for_schema(Schema::identity("s", "t", &["x"])));
        let old = Arc::new(zero_model());
        let mut running = Pipeline::new(Arc::clone(&config), ModelSource::Bundle(Arc::clone(&old)));
        running.process_batch(&wandering(0, 300));
        let mut reference =
            Pipeline::new(Arc::clone(&config), ModelSource::Bundle(Arc::clone(&old)));
        reference.process_batch(&wandering(0, 300));
        // Same shape, other weights: both keys keep what they adapted and
        // score with the new model.
        let mut retrained = zero_model();
        retrained.kernels.head.bias[0] = 0.5;
        let retrained = Arc::new(retrained);
        let reloaded = running.reload(
            Arc::clone(&config),
            ModelSource::Bundle(Arc::clone(&retrained)),
        );
        assert_eq!(
            reloaded,
            Reloaded {
                kept: 2,
                restarted: 0
            }
        );
        assert!(Arc::ptr_eq(&running.key_model("a").unwrap(), &retrained));
        assert_eq!(running.checkpoint_changed("zero@2").len(), 2);
        let later = wandering(300, 320);
        let after = running.process_batch(&later);
        assert!(after.iter().all(|v| v.status == Status::Scored));
        assert_ne!(after, reference.process_batch(&later));
        // A longer window: the state does not fit, the keys start over.
        let mut longer = zero_model();
        longer.kernels.window_len = 3;
        longer.kernels.autoencoder.layers[0].weight = Array2::zeros((3, 3));
        longer.kernels.autoencoder.layers[0].bias = Array1::zeros(3);
        let reloaded = running.reload(config, ModelSource::Bundle(Arc::new(longer)));
        assert_eq!(
            reloaded,
            Reloaded {
                kept: 0,
                restarted: 2
            }
        );
        assert_eq!(running.key_count(), 0);
    }

    #[test]
    fn a_restored_online_key_goes_on_without_a_second_warm_up() {
        let config: Arc<StreamConfig> = Arc::new(
            toml::from_str(
                r#"
                [schema]
                name = "pumps"
                features = [{ name = "x" }]
                [model]
                window_len = 2
                burn_in_steps = 0
                [online]
                warmup_events = 20
                refit_every_events = 50
                "#,
            )
            .unwrap(),
        );
        let online = || {
            Pipeline::new(
                Arc::clone(&config),
                ModelSource::Online {
                    warmup_events: 20,
                    learners: Arc::new(Learners {
                        handed_out: Mutex::new(0),
                        failing: 1000,
                    }),
                    prior: None,
                },
            )
        };
        let mut running = online();
        running.process_batch(&wandering(0, 120));
        let records = running.checkpoint_changed("pumps@online");
        let mut restored = online();
        for (key, record) in &records {
            restored.restore(key, record, "pumps@online").unwrap();
        }
        let later = wandering(120, 260);
        let expected = running.process_batch(&later);
        let verdicts = restored.process_batch(&later);
        assert!(verdicts.iter().all(|v| v.status != Status::Learning));
        assert!(verdicts.iter().any(|v| v.status == Status::Scored));
        assert_eq!(verdicts, expected);
        // Started afresh, the same keys would learn again first.
        assert_eq!(online().process_batch(&later)[0].status, Status::Learning);
        // A stream with a bundle refuses a key that learned online.
        let mut bundle = Pipeline::new(
            Arc::clone(&config),
            ModelSource::Bundle(Arc::new(zero_model())),
        );
        assert!(bundle.restore("a", &records[0].1, "pumps@online").is_err());
    }

    #[test]
    fn waves_keep_each_key_in_order() {
        let records: Vec<Record> = ["a", "b", "a", "a", "c", "b"]
            .into_iter()
            .map(record)
            .collect();
        assert_eq!(waves(&records), [vec![0, 1, 4], vec![2, 5], vec![3]]);
    }

    /// A model of zeros over one input, window 2: enough to be scored.
    fn zero_model() -> ScoringModel {
        let (inputs, hidden, window_len) = (1, 2, 2);
        let dense = |from: usize, to: usize| Dense {
            weight: Array2::zeros((from, to)),
            bias: Array1::zeros(to),
            activation: Activation::Identity,
        };
        let kernels = KernelModel {
            cell: RecurrentCell::Gru(GruCell {
                w_input: Array2::zeros((inputs, 3 * hidden)),
                w_hidden: Array2::zeros((hidden, 3 * hidden)),
                b_input: Array1::zeros(3 * hidden),
                b_hidden: Array1::zeros(3 * hidden),
            }),
            head: dense(hidden, inputs),
            autoencoder: DenseStack {
                layers: vec![dense(window_len * inputs, window_len * inputs)],
            },
            window_len,
            centred_inputs: vec![false; inputs],
        };
        let errors: Vec<f64> = (1..=200).map(|i| f64::from(i) / 100.0).collect();
        let tail = ErrorTail::fit(&errors, &ScoreConfig::default());
        ScoringModel {
            kernels,
            scaler: ScalerStats {
                mean: vec![0.0],
                std: vec![1.0],
                count: 100,
            },
            error_tails: vec![tail.clone(), tail],
            threshold: Threshold::Fixed { value: 0.999 },
        }
    }

    /// What the test learners train: the zero model and a fresh key state.
    fn zero_model_and_state(config: &StreamConfig) -> (ScoringModel, KeyState) {
        let model = zero_model();
        let state = model.new_key_state(config, None);
        (model, state)
    }

    /// Hands out learners in turn; the `failing`-th fails every refit.
    #[derive(Debug)]
    struct Learners {
        handed_out: Mutex<usize>,
        failing: usize,
    }

    struct ZeroLearner {
        trained: bool,
        fails_refits: bool,
    }

    impl Learner for ZeroLearner {
        fn learn(
            &mut self,
            _history: &crate::learner::Series,
            config: &StreamConfig,
            _max_epochs: usize,
        ) -> Result<(ScoringModel, KeyState), LearnError> {
            if self.trained && self.fails_refits {
                return Err(LearnError::TooShort {
                    needed: 2,
                    points: 0,
                    series: 1,
                });
            }
            self.trained = true;
            Ok(zero_model_and_state(config))
        }

        fn resume(&mut self, _model: &ScoringModel) {
            self.trained = true;
        }
    }

    impl LearnerFactory for Learners {
        fn learner(&self) -> Box<dyn Learner> {
            let mut handed_out = self.handed_out.lock().unwrap();
            *handed_out += 1;
            Box::new(ZeroLearner {
                trained: false,
                fails_refits: *handed_out == self.failing + 1,
            })
        }
    }

    /// Trains the zero model and tells how many of the history's events
    /// its first training was allowed to learn from.
    #[derive(Debug, Default)]
    struct Recording {
        usable: Arc<Mutex<Vec<(usize, usize)>>>,
    }

    struct RecordingLearner {
        usable: Arc<Mutex<Vec<(usize, usize)>>>,
    }

    impl Learner for RecordingLearner {
        fn learn(
            &mut self,
            history: &crate::learner::Series,
            config: &StreamConfig,
            _max_epochs: usize,
        ) -> Result<(ScoringModel, KeyState), LearnError> {
            let usable = history.usable.iter().filter(|u| **u).count();
            self.usable
                .lock()
                .unwrap()
                .push((usable, history.usable.len()));
            Ok(zero_model_and_state(config))
        }

        fn resume(&mut self, _model: &ScoringModel) {}
    }

    impl LearnerFactory for Recording {
        fn learner(&self) -> Box<dyn Learner> {
            Box::new(RecordingLearner {
                usable: Arc::clone(&self.usable),
            })
        }
    }

    #[test]
    fn a_key_is_scored_by_the_prior_until_its_own_model_is_trained() {
        let config: StreamConfig = toml::from_str(
            r#"
            [schema]
            name = "pumps"
            [[schema.features]]
            name = "pressure"
            [model]
            window_len = 2
            burn_in_steps = 0
            [online]
            refit_every_events = 0
            [detect.threshold]
            kind = "fixed"
            value = 0.0
            [detect.hygiene]
            cooldown_events = 0
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let learners = Recording::default();
        let usable = Arc::clone(&learners.usable);
        let prior = Arc::new(zero_model());
        let mut pipeline = Pipeline::new(
            Arc::new(config),
            ModelSource::Online {
                warmup_events: 40,
                learners: Arc::new(learners),
                prior: Some(Arc::clone(&prior)),
            },
        );
        let statuses: Vec<Status> = (0..45)
            .map(|i| {
                let verdict = pipeline.process(&Record {
                    inputs: vec![i as f32],
                    ..record("a")
                });
                // A threshold of 0 flags every scored event.
                assert_eq!(verdict.flag, verdict.status == Status::Scored, "event {i}");
                verdict.status
            })
            .collect();
        // 32 events learn the key's scaling, the prior's window of 2 is full
        // at the 34th, the prior scores until the warm-up of 40 ends, and the key's own
        // model goes on (from a fresh state here: this learner replays no
        // history, so its window fills again).
        let expected: Vec<Status> = (0..45)
            .map(|i| match i {
                0..32 => Status::Learning,
                32 | 40 => Status::Warming,
                _ => Status::Scored,
            })
            .collect();
        assert_eq!(statuses, expected);
        let own = pipeline.key_model("a").unwrap();
        assert!(
            !Arc::ptr_eq(&own, &prior),
            "still the prior after the warm-up"
        );
        // The first training learned from all 40 events, although the
        // prior flagged the last seven.
        assert_eq!(*usable.lock().unwrap(), [(40, 40)]);
    }

    #[test]
    fn a_failed_refit_keeps_that_key_and_every_other_key_scoring() {
        let config: StreamConfig = toml::from_str(
            r#"
            [schema]
            name = "pumps"
            key_field = "device"
            [[schema.features]]
            name = "pressure"
            [model]
            window_len = 2
            burn_in_steps = 0
            [online]
            warmup_events = 3
            refit_every_events = 4
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        let learners = Arc::new(Learners {
            handed_out: Mutex::new(0),
            failing: 1,
        });
        let mut pipeline = Pipeline::new(
            Arc::new(config),
            ModelSource::Online {
                warmup_events: 3,
                learners,
                prior: None,
            },
        );
        // Keys a, b, c meet their learners in that order: b's refits fail.
        let batch: Vec<Record> = ["a", "b", "c"].into_iter().map(record).collect();
        let mut refit_failures = 0;
        let mut b_scored_since_failure = 0;
        let mut failed_just_now = false;
        for round in 0..30 {
            let verdicts = pipeline.process_batch(&batch);
            assert_eq!(verdicts.len(), 3);
            if round >= 3 {
                for (key, verdict) in ["a", "b", "c"].iter().zip(&verdicts) {
                    assert_ne!(
                        verdict.status,
                        Status::Learning,
                        "round {round}: key {key} lost its model"
                    );
                }
            }
            if failed_just_now {
                // The key kept its state: its window is still full.
                assert_eq!(verdicts[1].status, Status::Scored, "round {round}");
                b_scored_since_failure += 1;
            }
            let failures = pipeline.take_learn_failures();
            failed_just_now = !failures.is_empty();
            for failure in failures {
                assert_eq!(failure.key, "b");
                assert!(failure.refit);
                refit_failures += 1;
            }
        }
        assert!(refit_failures >= 5, "{refit_failures} refit failures");
        assert!(b_scored_since_failure >= 5);
        assert_eq!(pipeline.key_count(), 3);
    }
}
