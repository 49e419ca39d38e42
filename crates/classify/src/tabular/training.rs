//! `tabular train`: read the table, type and fit the columns' encoders on
//! the training rows, hold out a validation share for early stopping,
//! train the network with AdamW and write the model directory.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Instant;

use burn::module::Module;
use burn::optim::AdamWConfig;
use burn::tensor::{Device, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::split::{random_holdout, stratified_holdout};
use crate::tabular::artifact::{self, ArtifactError, FORMAT_VERSION, KIND, TabularManifest};
use crate::tabular::config::{TabularConfig, TabularTrainingConfig};
use crate::tabular::features::{
    Encoded, FeatureEncoder, FeatureError, TargetEncoder, Targets, Task,
};
use crate::tabular::model::{Ensemble, Mlp};
use crate::tabular::table::{Table, TableError};
use tidewatch_learn::fit::{
    Diverged, FitPlan, Progress, Stepper, Trained, TrainingSummary, cross_entropy, fit_with,
    init_seeded, mean_loss, scalar, training_device,
};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Feature(#[from] FeatureError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Diverged(#[from] Diverged),
}

/// What to train on and how.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub data: PathBuf,
    pub target: String,
    /// Inferred from the target column when `None`.
    pub task: Option<Task>,
    pub config: TabularConfig,
    pub skip_bad_rows: bool,
    pub progress: Progress,
}

/// Training rows encoded, with the encoders fitted on them.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub features: FeatureEncoder,
    pub target: TargetEncoder,
    pub inputs: Encoded,
    pub targets: Targets,
}

impl Prepared {
    /// Fits the encoders on `table` and encodes its rows.
    pub fn fit(table: &Table, request: &TrainRequest) -> Result<Prepared, TrainError> {
        let target = TargetEncoder::fit(table, &request.target, request.task)?;
        let features = FeatureEncoder::fit(table, Some(&request.target), &request.config)?;
        let mut inputs = features.encode(table, request.skip_bad_rows)?;
        let targets = target.encode(table, &mut inputs, request.skip_bad_rows)?;
        if inputs.len() < 4 {
            return Err(TrainError::Config(format!(
                "{}: {} usable row(s); training needs at least 4",
                table.path.display(),
                inputs.len()
            )));
        }
        Ok(Prepared {
            features,
            target,
            inputs,
            targets,
        })
    }
}

/// Reads the table, trains, and writes the model directory to `out`.
pub fn train(request: &TrainRequest, out: &std::path::Path) -> Result<TabularManifest, TrainError> {
    let started = Instant::now();
    request.config.validate().map_err(TrainError::Config)?;
    let table = Table::read(&request.data)?;
    let prepared = Prepared::fit(&table, request)?;
    let (model, summaries) = fit_ensemble(&prepared, &request.config, request.progress)?;
    let manifest = TabularManifest {
        format_version: FORMAT_VERSION,
        kind: KIND.to_owned(),
        tidewatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: chrono::Utc::now().to_rfc3339(),
        features: prepared.features.clone(),
        target: prepared.target.clone(),
        model: request.config.model.clone(),
        training: request.config.training.clone(),
        train_rows: prepared.inputs.len(),
        skipped_rows: prepared.inputs.skipped,
        members: summaries,
        seconds: started.elapsed().as_secs_f64(),
        weights: Default::default(),
    };
    Ok(artifact::save(out, &manifest, &model)?)
}

/// Trains `config.ensemble` networks on prepared rows, one after another.
pub fn fit_ensemble(
    prepared: &Prepared,
    config: &TabularConfig,
    progress: Progress,
) -> Result<(Ensemble, Vec<TrainingSummary>), TrainError> {
    let mut members = Vec::with_capacity(config.ensemble);
    let mut summaries = Vec::with_capacity(config.ensemble);
    for member in 0..config.ensemble {
        let (network, summary) = fit_network(prepared, config, member, progress)?;
        members.push(network);
        summaries.push(summary);
    }
    Ok((Ensemble::new(members), summaries))
}

/// Trains one network on prepared rows: a validation share (per class for
/// classification) is held out and the epoch with the lowest validation
/// loss is kept. The split, initial weights and shuffles are seeded by
/// the training seed and `member`.
fn fit_network(
    prepared: &Prepared,
    config: &TabularConfig,
    member: usize,
    progress: Progress,
) -> Result<(Mlp, TrainingSummary), TrainError> {
    let mut t = config.training.clone();
    t.seed = t.seed.wrapping_add(member as u64);
    let t = &t;
    let rows = prepared.inputs.len();
    let (train_rows, validation_rows) = match &prepared.targets {
        Targets::Classes(classes) => stratified_holdout(classes, t.validation_fraction, t.seed),
        Targets::Values(_) => {
            let (mut kept, mut held) = random_holdout(rows, t.validation_fraction, t.seed);
            kept.sort_unstable();
            held.sort_unstable();
            (kept, held)
        }
    };
    if train_rows.is_empty() || validation_rows.is_empty() {
        return Err(TrainError::Config(format!(
            "{rows} rows are too few to hold out a validation share of {}",
            t.validation_fraction
        )));
    }
    let device = training_device();
    let width = prepared.inputs.width;
    let model = init_seeded(t.seed, &device, |d| {
        config.model.init(width, prepared.target.outputs(), d)
    });
    let trained = fit_rows(
        model,
        train_rows,
        &validation_rows,
        t,
        t.seed ^ 0x7ab1_e5ee_d000_0001,
        progress,
        &format!("network {}/{}", member + 1, config.ensemble),
        |model: &Mlp, rows: &[usize], device: &Device| batch_loss(model, prepared, rows, device),
    )?;
    Ok((trained.model, trained.summary))
}

/// The fit both row jobs (`tabular`, `reduce`) share: AdamW with the
/// settings' weight decay, shuffled batches of `train_rows` (a last batch
/// of one row, which batch norm cannot take, waits for the next shuffle),
/// the validation loss in large batches, the plateau schedule and early
/// stopping. `loss` is a batch's mean loss on the given device; the model
/// was initialised on [`training_device`].
#[allow(clippy::too_many_arguments)]
pub fn fit_rows<M: Module + Clone>(
    model: M,
    mut train_rows: Vec<usize>,
    validation_rows: &[usize],
    t: &TabularTrainingConfig,
    rng_seed: u64,
    progress: Progress,
    label: &str,
    loss: impl Fn(&M, &[usize], &Device) -> Tensor<1>,
) -> Result<Trained<M>, Diverged> {
    let plan = FitPlan {
        optimizer: AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .init(),
        learning_rate: t.learning_rate,
        max_epochs: t.epochs,
        patience_epochs: t.patience_epochs,
        rng_seed,
    };
    let device = training_device();
    let plateau = Plateau::new(t);
    let train_epoch = |mut model: M, stepper: &mut Stepper, rng: &mut StdRng| {
        stepper.set_learning_rate(plateau.learning_rate());
        train_rows.shuffle(rng);
        let (mut total, mut counted) = (0.0, 0);
        for batch in train_rows.chunks(t.batch_size) {
            if batch.len() < 2 {
                continue;
            }
            let batch_loss = loss(&model, batch, &device);
            let (stepped, value) = stepper.step(model, batch_loss);
            model = stepped;
            total += value * batch.len() as f64;
            counted += batch.len();
        }
        (model, total / counted.max(1) as f64)
    };
    let inference = Device::flex();
    let validate = |model: &M| {
        let validation = mean_loss(validation_rows, t.batch_size * 8, |batch| {
            scalar(&loss(model, batch, &inference))
        });
        plateau.observe(validation.unwrap_or(f64::NAN));
        validation
    };
    fit_with(
        model,
        plan,
        progress,
        label,
        train_epoch,
        validate,
        |_, _| Ok::<(), Diverged>(()),
    )
}

/// The learning rate, lowered by `plateau_factor` each time the
/// validation loss has not improved for `plateau_epochs` epochs.
struct Plateau {
    /// (rate, best loss, epochs since the best or the last lowering)
    state: Cell<(f64, f64, usize)>,
    epochs: usize,
    factor: f64,
}

impl Plateau {
    fn new(t: &TabularTrainingConfig) -> Plateau {
        Plateau {
            state: Cell::new((t.learning_rate, f64::INFINITY, 0)),
            epochs: t.plateau_epochs,
            factor: t.plateau_factor,
        }
    }

    fn learning_rate(&self) -> f64 {
        self.state.get().0
    }

    /// Hears an epoch's validation loss.
    fn observe(&self, loss: f64) {
        let (mut rate, mut best, mut since) = self.state.get();
        if loss < best {
            (best, since) = (loss, 0);
        } else {
            since += 1;
            if self.epochs > 0 && since >= self.epochs {
                (rate, since) = (rate * self.factor, 0);
            }
        }
        self.state.set((rate, best, since));
    }
}

/// The rows at `rows` of a row-major `[_, width]` matrix as a
/// `[rows, width]` tensor.
pub fn row_batch(values: &[f32], width: usize, rows: &[usize], device: &Device) -> Tensor<2> {
    let mut batch = Vec::with_capacity(rows.len() * width);
    for &r in rows {
        batch.extend_from_slice(&values[r * width..(r + 1) * width]);
    }
    Tensor::from_data(TensorData::new(batch, [rows.len(), width]), device)
}

/// Mean squared error of standardised values, or cross-entropy of classes.
fn batch_loss(model: &Mlp, prepared: &Prepared, rows: &[usize], device: &Device) -> Tensor<1> {
    let inputs = &prepared.inputs;
    let output = model.forward(row_batch(&inputs.inputs, inputs.width, rows, device));
    match &prepared.targets {
        Targets::Values(values) => {
            let wanted: Vec<f32> = rows.iter().map(|&r| values[r]).collect();
            let wanted = Tensor::<1>::from_data(TensorData::new(wanted, [rows.len()]), device);
            let predicted = output.reshape([rows.len()]);
            (predicted - wanted).powi_scalar(2).mean()
        }
        Targets::Classes(classes) => {
            let labels: Vec<usize> = rows.iter().map(|&r| classes[r]).collect();
            cross_entropy(output, &labels)
        }
    }
}
