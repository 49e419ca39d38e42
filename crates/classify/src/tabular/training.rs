//! `tabular train`: read the table, type and fit the columns' encoders on
//! the training rows, hold out a validation share for early stopping,
//! train the network with AdamW and write the model directory.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::Instant;

use burn::optim::AdamWConfig;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::split::stratified_holdout;
use crate::tabular::artifact::{self, ArtifactError, FORMAT_VERSION, KIND, TabularManifest};
use crate::tabular::config::{TabularConfig, TabularTrainingConfig};
use crate::tabular::features::{
    Encoded, FeatureEncoder, FeatureError, TargetEncoder, Targets, Task,
};
use crate::tabular::model::{Ensemble, Mlp};
use crate::tabular::table::{Table, TableError};
use tidewatch_learn::fit::{
    Diverged, FitPlan, Progress, Stepper, TrainingSummary, cross_entropy, fit_with, init_seeded,
    mean_loss, scalar, training_device,
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
            let mut order: Vec<usize> = (0..rows).collect();
            order.shuffle(&mut StdRng::seed_from_u64(t.seed));
            let held = ((rows as f64 * t.validation_fraction).round() as usize).clamp(1, rows - 1);
            let (held, kept) = order.split_at(held);
            let (mut kept, mut held) = (kept.to_vec(), held.to_vec());
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
    let plan = FitPlan {
        optimizer: AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .init(),
        learning_rate: t.learning_rate,
        max_epochs: t.epochs,
        patience_epochs: t.patience_epochs,
        rng_seed: t.seed ^ 0x7ab1_e5ee_d000_0001,
    };
    let mut order = train_rows;
    let plateau = Plateau::new(t);
    let train_epoch = |mut model: Mlp, stepper: &mut Stepper, rng: &mut StdRng| {
        stepper.set_learning_rate(plateau.learning_rate());
        order.shuffle(rng);
        let mut total = 0.0;
        let mut counted = 0;
        for batch in order.chunks(t.batch_size) {
            // A batch of one cannot be batch-normalised; its row waits for
            // the next shuffle.
            if batch.len() < 2 {
                continue;
            }
            let loss = batch_loss(&model, prepared, batch, &device);
            let (stepped, value) = stepper.step(model, loss);
            model = stepped;
            total += value * batch.len() as f64;
            counted += batch.len();
        }
        (model, total / counted.max(1) as f64)
    };
    let inference = Device::flex();
    let validate = |model: &Mlp| {
        let loss = mean_loss(&validation_rows, t.batch_size * 8, |batch| {
            scalar(&batch_loss(model, prepared, batch, &inference))
        });
        plateau.observe(loss.unwrap_or(f64::NAN));
        loss
    };
    let trained = fit_with(
        model,
        plan,
        progress,
        &format!("network {}/{}", member + 1, config.ensemble),
        train_epoch,
        validate,
        |_, _| Ok::<(), TrainError>(()),
    )?;
    Ok((trained.model, trained.summary))
}

/// The learning rate, lowered by `plateau_factor` each time the
/// validation loss has not improved for `plateau_epochs` epochs.
pub struct Plateau {
    /// (rate, best loss, epochs since the best or the last lowering)
    state: Cell<(f64, f64, usize)>,
    epochs: usize,
    factor: f64,
}

impl Plateau {
    pub fn new(t: &TabularTrainingConfig) -> Plateau {
        Plateau {
            state: Cell::new((t.learning_rate, f64::INFINITY, 0)),
            epochs: t.plateau_epochs,
            factor: t.plateau_factor,
        }
    }

    pub fn learning_rate(&self) -> f64 {
        self.state.get().0
    }

    /// Hears an epoch's validation loss.
    pub fn observe(&self, loss: f64) {
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

/// The rows at `rows` as a `[rows, width]` input tensor.
pub fn input_batch(inputs: &Encoded, rows: &[usize], device: &Device) -> Tensor<2> {
    let mut values = Vec::with_capacity(rows.len() * inputs.width);
    for &r in rows {
        values.extend_from_slice(inputs.row(r));
    }
    Tensor::from_data(TensorData::new(values, [rows.len(), inputs.width]), device)
}

/// Mean squared error of standardised values, or cross-entropy of classes.
fn batch_loss(model: &Mlp, prepared: &Prepared, rows: &[usize], device: &Device) -> Tensor<1> {
    let output = model.forward(input_batch(&prepared.inputs, rows, device));
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
