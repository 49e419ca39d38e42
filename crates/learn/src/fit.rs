//! The training loop every burn model of tidewatch uses (the stream's two
//! models, the image and text classifiers): an optimiser stepping epoch by
//! epoch, early stopping on validation loss with the best epoch kept and
//! announced (for checkpoints), seeded initialisation and draws, and a
//! progress bar.

use std::sync::Mutex;
use std::time::Instant;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tidewatch_stream::config::TrainingConfig;

/// One epoch's losses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochLoss {
    pub epoch: usize,
    pub train: f64,
    pub validation: f64,
}

/// Training's loss stopped being a finite number: the weights it reached
/// are not usable, and saving them would write a bundle that cannot load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{label}: training diverged at epoch {epoch} (loss {loss}); lower the learning rate")]
pub struct Diverged {
    pub label: String,
    pub epoch: usize,
    pub loss: f64,
}

/// A trained model (without autodiff) and how training went.
#[derive(Debug)]
pub struct Trained<M> {
    pub model: M,
    pub summary: TrainingSummary,
}

/// How a training run went, recorded in the bundle manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub best_validation_loss: f64,
    pub history: Vec<EpochLoss>,
    pub seconds: f64,
}

/// Whether to draw a progress bar (training from the command line) or stay
/// quiet (refits in the background of a stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Bar,
    Quiet,
}

impl Progress {
    /// A bar of `len` steps drawn with indicatif's `template`, or a hidden
    /// one when quiet: every progress display of tidewatch's jobs.
    pub fn bar(self, len: usize, template: &str) -> ProgressBar {
        if self == Progress::Quiet {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len as u64);
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar
    }
}

/// Serialises seeding and initialisation: the backend's generator is
/// process-wide, so two trainings initialising at once would interleave draws.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Touches every parameter so that it is drawn now. burn initialises
/// parameters lazily, on first use; left lazy, they would draw from the
/// process-wide generator whenever training first reads them, after the
/// lock is released, interleaved with any other training's draws.
struct Materialise;

impl ModuleVisitor for Materialise {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let _ = param.val();
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        let _ = param.val();
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        let _ = param.val();
    }
}

/// The device training runs on.
pub fn training_device() -> Device {
    Device::flex().autodiff()
}

/// Initialises a module from a seed, reproducibly even with other threads
/// training: every parameter is drawn before the lock is released.
pub fn init_seeded<M: Module>(seed: u64, device: &Device, init: impl FnOnce(&Device) -> M) -> M {
    let _guard = INIT_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    let module = init(device);
    module.visit(&mut Materialise);
    module
}

/// Applies one optimiser step per call.
pub struct Stepper {
    optimizer: ModuleOptimizer,
    learning_rate: f64,
}

impl Stepper {
    pub fn new(optimizer: ModuleOptimizer, learning_rate: f64) -> Stepper {
        Stepper {
            optimizer,
            learning_rate,
        }
    }

    /// The rate of the following steps (for learning-rate schedules).
    pub fn set_learning_rate(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    /// Backpropagates `loss` and updates `model`; returns the updated model
    /// and the loss value.
    pub fn step<M: Module>(&mut self, model: M, loss: Tensor<1>) -> (M, f64) {
        let value = scalar(&loss);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        (self.optimizer.step(self.learning_rate, model, grads), value)
    }
}

/// How a fit runs: the optimiser and its rate, how long, and the seed of
/// the generator its epochs draw from (shuffles, augmentation).
pub struct FitPlan {
    pub optimizer: ModuleOptimizer,
    pub learning_rate: f64,
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    pub patience_epochs: usize,
    pub rng_seed: u64,
}

impl FitPlan {
    /// Adam with the stream and text models' training settings.
    pub fn adam(config: &TrainingConfig) -> FitPlan {
        FitPlan {
            optimizer: AdamConfig::new().init(),
            learning_rate: config.learning_rate,
            max_epochs: config.max_epochs,
            patience_epochs: config.patience_epochs,
            rng_seed: config.seed ^ 0x9e37_79b9_7f4a_7c15,
        }
    }
}

/// Trains `model` epoch by epoch and keeps the epoch with the lowest
/// validation loss, stopping after `patience_epochs` without improvement.
/// `train_epoch` runs one epoch (on the autodiff device, stepping with the
/// given [`Stepper`] and drawing from the seeded generator) and returns the
/// model and its mean training loss; `validate` returns the validation loss
/// of the model without autodiff (the training loss is used when it
/// returns `None`); `improved` hears of each new best epoch with that
/// model (a checkpoint, say), and its error ends the fit, as does a loss
/// that is not finite ([`Diverged`]).
pub fn fit_with<M: Module + Clone, E: From<Diverged>>(
    mut model: M,
    plan: FitPlan,
    progress: Progress,
    label: &str,
    mut train_epoch: impl FnMut(M, &mut Stepper, &mut StdRng) -> (M, f64),
    mut validate: impl FnMut(&M) -> Option<f64>,
    mut improved: impl FnMut(&EpochLoss, &M) -> Result<(), E>,
) -> Result<Trained<M>, E> {
    let started = Instant::now();
    let mut stepper = Stepper::new(plan.optimizer, plan.learning_rate);
    let mut rng = StdRng::seed_from_u64(plan.rng_seed);
    let bar = progress.bar(
        plan.max_epochs,
        "{prefix:>12} epoch {pos}/{len} [{bar:24}] {msg}  ETA {eta}",
    );
    bar.set_prefix(label.to_owned());

    let mut best: Option<(M, EpochLoss)> = None;
    let mut history = Vec::new();
    let mut since_best = 0;
    for epoch in 1..=plan.max_epochs {
        let (trained, train_loss) = train_epoch(model, &mut stepper, &mut rng);
        model = trained;
        let valid = model.valid();
        let validation_loss = validate(&valid).unwrap_or(train_loss);
        if let Some(&loss) = [train_loss, validation_loss]
            .iter()
            .find(|loss| !loss.is_finite())
        {
            bar.finish_and_clear();
            return Err(Diverged {
                label: label.to_owned(),
                epoch,
                loss,
            }
            .into());
        }
        let report = EpochLoss {
            epoch,
            train: train_loss,
            validation: validation_loss,
        };
        history.push(report);
        bar.set_position(epoch as u64);
        bar.set_message(format!(
            "train {train_loss:.5}  validation {validation_loss:.5}"
        ));
        if best
            .as_ref()
            .is_none_or(|(_, b)| validation_loss < b.validation)
        {
            improved(&report, &valid)?;
            // The model without autodiff, not a clone of the training one:
            // a clone shares its running statistics (batch norm's), which
            // the following epochs would go on moving.
            best = Some((valid, report));
            since_best = 0;
        } else {
            since_best += 1;
            if since_best >= plan.patience_epochs {
                break;
            }
        }
    }
    bar.finish_and_clear();
    let (best_model, best_report) = best.unwrap_or((
        model.valid(),
        EpochLoss {
            epoch: 0,
            train: f64::NAN,
            validation: f64::NAN,
        },
    ));
    Ok(Trained {
        model: best_model,
        summary: TrainingSummary {
            epochs_run: history.len(),
            best_epoch: best_report.epoch,
            best_validation_loss: best_report.validation,
            history,
            seconds: started.elapsed().as_secs_f64(),
        },
    })
}

/// [`fit_with`] with Adam and `config`'s settings, and no checkpoints.
pub fn fit<M: Module + Clone>(
    model: M,
    config: &TrainingConfig,
    progress: Progress,
    label: &str,
    train_epoch: impl FnMut(M, &mut Stepper, &mut StdRng) -> (M, f64),
    validate: impl Fn(&M) -> Option<f64>,
) -> Result<Trained<M>, Diverged> {
    fit_with(
        model,
        FitPlan::adam(config),
        progress,
        label,
        train_epoch,
        validate,
        |_, _| Ok(()),
    )
}

/// Mean of `loss` over `samples` in batches of `batch_size`, weighted by
/// batch length.
pub fn mean_loss<S>(
    samples: &[S],
    batch_size: usize,
    mut loss: impl FnMut(&[S]) -> f64,
) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let total: f64 = samples
        .chunks(batch_size.max(1))
        .map(|batch| loss(batch) * batch.len() as f64)
        .sum();
    Some(total / samples.len() as f64)
}

/// One epoch over `samples` in shuffled batches: at most
/// `max_samples_per_epoch` of them, one optimiser step per batch.
pub fn shuffled_epoch<M: Module, S: Clone>(
    mut model: M,
    samples: &mut [S],
    config: &TrainingConfig,
    stepper: &mut Stepper,
    rng: &mut StdRng,
    loss: impl Fn(&M, &[S]) -> Tensor<1>,
) -> (M, f64) {
    samples.shuffle(rng);
    let epoch = &samples[..samples.len().min(config.max_samples_per_epoch)];
    let mut total = 0.0;
    for batch in epoch.chunks(config.batch_size.max(1)) {
        let batch_loss = loss(&model, batch);
        let (stepped, value) = stepper.step(model, batch_loss);
        model = stepped;
        total += value * batch.len() as f64;
    }
    (model, total / epoch.len().max(1) as f64)
}

/// Mean cross-entropy of logits `[batch, classes]` against class indices.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize]) -> Tensor<1> {
    let device = logits.device();
    let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    let targets = Tensor::from_data(TensorData::new(targets, [labels.len()]), &device);
    CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits, targets)
}

pub fn scalar(tensor: &Tensor<1>) -> f64 {
    tensor
        .to_data()
        .try_to_vec::<f32>()
        .map_or(f64::NAN, |v| f64::from(v[0]))
}
