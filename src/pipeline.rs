//! The streaming path, shared by `score`, online learning, calibration and
//! the daemon: record -> key state -> kernels -> detection -> [`Verdict`].
//!
//! Events are processed in micro-batches. Within a batch, events of distinct
//! keys that share a model go through the kernels together; a key's second
//! event in the same batch waits for its first (a "wave" later), so a batch
//! gives exactly the verdicts that one-by-one processing would.

use std::collections::HashMap;
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};

use crate::config::StreamConfig;
use crate::detect::score::ErrorTail;
use crate::detect::threshold::Threshold;
use crate::detect::{DetectionState, DetectorErrors};
use crate::infer::{KernelModel, Scratch};
use crate::learn::LearnError;
use crate::nn::training::Progress;
use crate::online::OnlineLearner;
use crate::source::Record;
use crate::state::scaler::{RunningScaler, ScalerStats};
use crate::state::store::{EventClock, KeyState, KeyStore};

/// What scoring needs from a trained model: kernels and calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringModel {
    pub kernels: KernelModel,
    /// Input statistics of the training data; new keys start from them.
    pub scaler: ScalerStats,
    /// Error tail per detector; new keys start from it.
    pub error_tails: [ErrorTail; 2],
    /// Threshold calibrated on the training data.
    pub threshold: Threshold,
}

impl ScoringModel {
    /// A fresh key's state, scaled from `scaler` (the model's own
    /// statistics when `None`).
    pub fn new_key_state(&self, config: &StreamConfig, scaler: Option<&ScalerStats>) -> KeyState {
        let running = RunningScaler::from_prior(
            scaler.unwrap_or(&self.scaler),
            config.state.scaler_prior_events,
            config.state.scaler_memory_events,
        );
        let detection = DetectionState::new(self.error_tails.clone(), self.threshold.clone());
        KeyState::new(
            running,
            self.kernels.window_len,
            self.kernels.inputs(),
            self.kernels.state_width(),
            detection,
        )
    }
}

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

/// What the pipeline made of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub key: String,
    pub timestamp_ms: i64,
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
    fn unscored(record: &Record, status: Status) -> Verdict {
        Verdict {
            key: record.key.clone(),
            timestamp_ms: record.timestamp_ms,
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
    scratch: Scratch,
}

fn sized(buffer: &mut Array2<f32>, rows: usize, cols: usize) {
    if buffer.dim() != (rows, cols) {
        *buffer = Array2::zeros((rows, cols));
    }
}

/// Advances each key by one event and returns the per-detector errors
/// (`None` while the key's window is filling). `raw` rows are the events'
/// inputs before scaling: [batch, inputs]. Errors are measured on the
/// inputs marked in `measured` only (calendar context is not evidence).
pub fn advance_batch(
    model: &KernelModel,
    states: &mut [KeyState],
    raw: ArrayView2<f32>,
    measured: &[bool],
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

    for (b, state) in states.iter_mut().enumerate() {
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
    for (b, state) in states.iter_mut().enumerate() {
        state
            .recurrent
            .copy_from_slice(buffers.states.row(b).as_slice().expect("contiguous row"));
        state.events += 1;
        if !state.window.is_full() {
            errors.push(None);
            continue;
        }
        let x = buffers.inputs.row(b);
        let mut forecast_sum = 0.0f32;
        for ((sq, &xi), &fi) in buffers
            .forecast_sq
            .row_mut(b)
            .iter_mut()
            .zip(x)
            .zip(buffers.forecasts.row(b))
        {
            *sq = (xi - fi) * (xi - fi);
            forecast_sum += *sq;
        }
        let window = buffers.windows.row(b);
        let rebuilt = buffers.reconstructions.row(b);
        let mut per_input = buffers.reconstruction_sq.row_mut(b);
        per_input.fill(0.0);
        for (w, r) in window
            .exact_chunks(inputs)
            .into_iter()
            .zip(rebuilt.exact_chunks(inputs))
        {
            for (((acc, &wi), &ri), &m) in per_input.iter_mut().zip(w).zip(r).zip(measured) {
                if m {
                    *acc += (wi - ri) * (wi - ri);
                }
            }
        }
        per_input.mapv_inplace(|v| v / model.window_len as f32);
        let reconstruction_sum: f32 = per_input.sum();
        let measured_count = measured.iter().filter(|m| **m).count().max(1) as f32;
        errors.push(Some([
            f64::from((forecast_sum / measured_count).sqrt()),
            f64::from((reconstruction_sum / measured_count).sqrt()),
        ]));
    }
    errors
}

/// Where keys get their models.
#[derive(Debug, Clone)]
pub enum ModelSource {
    /// One trained model for every key.
    Bundle(Arc<ScoringModel>),
    /// Each key learns its own from its first `warmup_events` events.
    Online { warmup_events: u64 },
}

struct Scoring {
    model: Arc<ScoringModel>,
    state: KeyState,
}

#[derive(Default)]
struct KeyEntry {
    clock: EventClock,
    scoring: Option<Scoring>,
    learner: Option<OnlineLearner>,
}

/// One stream's streaming path over the keys one worker owns.
pub struct Pipeline {
    config: Arc<StreamConfig>,
    source: ModelSource,
    since_previous_slots: Vec<usize>,
    input_owner: Vec<usize>,
    measured: Vec<bool>,
    keys: KeyStore<KeyEntry>,
    buffers: BatchBuffers,
    progress: Progress,
}

impl Pipeline {
    pub fn new(config: Arc<StreamConfig>, source: ModelSource) -> Pipeline {
        let schema = &config.schema;
        Pipeline {
            since_previous_slots: schema.since_previous_slots(),
            input_owner: schema.input_owner(),
            measured: schema.measured_inputs(),
            config,
            source,
            keys: KeyStore::default(),
            buffers: BatchBuffers::default(),
            progress: Progress::Quiet,
        }
    }

    pub fn config(&self) -> &StreamConfig {
        &self.config
    }

    /// Number of keys with state.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The model a key scores with, once it has one.
    pub fn key_model(&self, key: &str) -> Option<Arc<ScoringModel>> {
        self.keys
            .iter()
            .find(|(k, _)| *k == key)
            .and_then(|(_, entry)| entry.scoring.as_ref().map(|s| Arc::clone(&s.model)))
    }

    pub fn process(&mut self, record: &Record) -> Result<Verdict, LearnError> {
        Ok(self
            .process_batch(std::slice::from_ref(record))?
            .pop()
            .expect("one verdict per record"))
    }

    /// Verdicts for `records`, in their order.
    pub fn process_batch(&mut self, records: &[Record]) -> Result<Vec<Verdict>, LearnError> {
        let mut verdicts: Vec<Option<Verdict>> = vec![None; records.len()];
        for wave in waves(records) {
            // Keys that score, grouped by the model they share.
            let mut groups: HashMap<usize, Vec<(usize, Scoring, Vec<f32>)>> = HashMap::new();
            for i in wave {
                let record = &records[i];
                let raw = self.raw_inputs(record);
                let entry = self.keys.get_or_insert_with(&record.key, KeyEntry::default);
                match entry.scoring.take() {
                    Some(scoring) => {
                        let group = Arc::as_ptr(&scoring.model) as usize;
                        groups.entry(group).or_default().push((i, scoring, raw));
                    }
                    None => verdicts[i] = Some(self.learn_or_start(record, raw)?),
                }
            }
            for (_, members) in groups {
                self.score_group(records, members, &mut verdicts)?;
            }
        }
        Ok(verdicts
            .into_iter()
            .map(|v| v.expect("every record judged"))
            .collect())
    }

    /// The record's inputs with the per-key slots filled in.
    fn raw_inputs(&mut self, record: &Record) -> Vec<f32> {
        let mut raw = record.inputs.clone();
        let entry = self.keys.get_or_insert_with(&record.key, KeyEntry::default);
        let gap = entry.clock.log_seconds_since_previous(record.timestamp_ms);
        for &slot in &self.since_previous_slots {
            raw[slot] = gap;
        }
        raw
    }

    /// A key without a model: start it from the bundle, or learn from the
    /// event (online), training its model once the warm-up is complete.
    fn learn_or_start(&mut self, record: &Record, raw: Vec<f32>) -> Result<Verdict, LearnError> {
        let config = Arc::clone(&self.config);
        match self.source.clone() {
            ModelSource::Bundle(model) => {
                let state = model.new_key_state(&config, None);
                let group = vec![(0, Scoring { model, state }, raw)];
                let mut verdict = vec![None];
                self.score_group(std::slice::from_ref(record), group, &mut verdict)?;
                Ok(verdict.pop().flatten().expect("scored"))
            }
            ModelSource::Online { warmup_events } => {
                let entry = self
                    .keys
                    .get_mut(&record.key)
                    .expect("entry created by raw_inputs");
                let learner = entry
                    .learner
                    .get_or_insert_with(|| OnlineLearner::new(warmup_events, &config.online));
                learner.observe(&raw, true);
                if learner.warmup_complete() {
                    let (model, state) = learner.learn(&config, self.progress)?;
                    entry.scoring = Some(Scoring {
                        model: Arc::new(model),
                        state,
                    });
                }
                Ok(Verdict::unscored(record, Status::Learning))
            }
        }
    }

    fn score_group(
        &mut self,
        records: &[Record],
        members: Vec<(usize, Scoring, Vec<f32>)>,
        verdicts: &mut [Option<Verdict>],
    ) -> Result<(), LearnError> {
        let config = Arc::clone(&self.config);
        let model = Arc::clone(&members[0].1.model);
        let inputs = model.kernels.inputs();
        let mut raw = Array2::zeros((members.len(), inputs));
        let mut states = Vec::with_capacity(members.len());
        let mut indices = Vec::with_capacity(members.len());
        for (b, (i, scoring, row)) in members.into_iter().enumerate() {
            raw.row_mut(b)
                .as_slice_mut()
                .expect("contiguous")
                .copy_from_slice(&row);
            states.push(scoring.state);
            indices.push(i);
        }
        let errors = advance_batch(
            &model.kernels,
            &mut states,
            raw.view(),
            &self.measured,
            config.state.input_clip,
            &mut self.buffers,
        );

        for (b, (mut state, i)) in states.into_iter().zip(indices).enumerate() {
            let record = &records[i];
            let raw_row = raw.row(b);
            let raw_row = raw_row.as_slice().expect("contiguous");
            let (verdict, learned) = match errors[b] {
                None => (Verdict::unscored(record, Status::Warming), true),
                Some(errors) => {
                    let detection = state.detection.detect(&errors, &config.detect);
                    let is_anomaly = detection.judgement.is_anomaly;
                    let verdict = Verdict {
                        key: record.key.clone(),
                        timestamp_ms: record.timestamp_ms,
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
                if learner.refit_due(&config.online) {
                    let (refit_model, refit_state) = learner.learn(&config, self.progress)?;
                    scoring = Scoring {
                        model: Arc::new(refit_model),
                        state: refit_state,
                    };
                }
            }
            entry.scoring = Some(scoring);
            verdicts[i] = Some(verdict);
        }
        Ok(())
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
    use super::*;

    fn record(key: &str) -> Record {
        Record {
            key: key.into(),
            timestamp_ms: 0,
            inputs: vec![0.0],
        }
    }

    #[test]
    fn waves_keep_each_key_in_order() {
        let records: Vec<Record> = ["a", "b", "a", "a", "c", "b"]
            .into_iter()
            .map(record)
            .collect();
        assert_eq!(waves(&records), [vec![0, 1, 4], vec![2, 5], vec![3]]);
    }
}
