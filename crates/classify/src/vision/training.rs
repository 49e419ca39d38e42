//! `image train`: load and split the images, fit the normalisation, train
//! the network with augmentation, a learning-rate schedule and early
//! stopping, and write the best epoch to the model directory as it appears
//! (a checkpoint: an interrupted run leaves its best epoch so far).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Tensor};
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::split::stratified_holdout;
use crate::vision::artifact::{
    self, ArtifactError, EpochReport, FORMAT_VERSION, ImageManifest, KIND, TrainingReport,
};
use crate::vision::augment::augment;
use crate::vision::config::{
    AugmentConfig, ColourMode, ImageConfig, ImageTrainingConfig, OptimizerKind,
};
use crate::vision::data::{DataError, ImageSet, Normalisation, has_colour, image_batch, to_pixels};
use crate::vision::model::Cnn;
use tidewatch_learn::fit::{
    Diverged, EpochLoss, FitPlan, Progress, Stepper, cross_entropy, fit_with, init_seeded, scalar,
    training_device,
};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Diverged(#[from] Diverged),
}

/// What to train on and where the model goes.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    pub data: PathBuf,
    /// A separate validation set; otherwise `validation_fraction` of `data`.
    pub validation: Option<PathBuf>,
    pub out: PathBuf,
    pub config: ImageConfig,
    /// An unreadable image is an error instead of a warning.
    pub strict: bool,
    pub progress: Progress,
}

/// Labelled images decoded to `[channels, side, side]` pixels in [0, 1].
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub pixels: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
    /// Each decoded image's name (its file, or IDX file and index).
    pub names: Vec<String>,
    pub skipped: usize,
}

/// Decodes every image of `set`, resized to `side`. Unreadable images are
/// skipped with a warning naming the file (an error when `strict`).
/// `channels` 0 picks 3 when any image has colour, else 1.
pub fn decode_set(
    set: &ImageSet,
    side: u32,
    channels: usize,
    strict: bool,
) -> Result<(Decoded, usize), DataError> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let indices: Vec<usize> = (0..set.items.len()).collect();
    // parallel_map returns the first error in item order: a strict run
    // names the first unreadable file.
    let images = tidewatch_stream::parallel::parallel_map(&indices, threads, |&i| {
        Ok::<_, DataError>(set.decode_or_skip(i, strict)?.map(|image| {
            // Resized now so that only small images are held.
            let colour = has_colour(&image);
            (
                image.resize_exact(side, side, image::imageops::FilterType::Triangle),
                colour,
            )
        }))
    })?;
    let channels = match channels {
        0 if images.iter().flatten().any(|(_, colour)| *colour) => 3,
        0 => 1,
        n => n,
    };
    let mut decoded = Decoded::default();
    for (image, (item, label)) in images.into_iter().zip(&set.items) {
        match image {
            Some((image, _)) => {
                decoded.pixels.push(to_pixels(&image, side, channels));
                decoded.labels.push(label.unwrap_or(0));
                decoded.names.push(item.name());
            }
            None => decoded.skipped += 1,
        }
    }
    if decoded.pixels.is_empty() {
        return Err(DataError::NothingReadable(set.root.clone()));
    }
    // A labelled class with no readable image cannot be learned, and a
    // model that keeps its name would never predict it.
    if let Some(class) = (0..set.classes.len()).find(|c| {
        set.items.iter().any(|(_, label)| *label == Some(*c)) && !decoded.labels.contains(c)
    }) {
        return Err(DataError::ClassUnreadable {
            root: set.root.clone(),
            class: set.classes[class].clone(),
        });
    }
    Ok((decoded, channels))
}

/// Trains and writes the model directory; returns its manifest.
pub fn train(request: &TrainRequest) -> Result<ImageManifest, TrainError> {
    let started = Instant::now();
    let config = &request.config;
    config.validate().map_err(TrainError::Config)?;
    let side = config.input.size_px;
    let set = ImageSet::labelled(&request.data)?;
    let wanted_channels = match config.input.colour {
        ColourMode::Auto => 0,
        ColourMode::Grey => 1,
        ColourMode::Rgb => 3,
    };
    let (mut train_set, channels) = decode_set(&set, side, wanted_channels, request.strict)?;
    let mut skipped = train_set.skipped;
    let mut validation_set = match &request.validation {
        Some(path) => {
            let mut validation = ImageSet::labelled(path)?;
            validation.relabel(&set.classes)?;
            let (decoded, _) = decode_set(&validation, side, channels, request.strict)?;
            skipped += decoded.skipped;
            decoded
        }
        None => split_off(
            &mut train_set,
            config.training.validation_fraction,
            config.training.seed,
        ),
    };
    if train_set.pixels.is_empty() || validation_set.pixels.is_empty() {
        return Err(TrainError::Config(format!(
            "{}: too few images to hold out a validation set ({} readable)",
            request.data.display(),
            train_set.pixels.len() + validation_set.pixels.len()
        )));
    }
    let normalisation = Normalisation::fit(&train_set.pixels, channels);
    for image in train_set
        .pixels
        .iter_mut()
        .chain(&mut validation_set.pixels)
    {
        normalisation.apply(image);
    }

    let mut model_config = config.model.clone();
    model_config.conv_channels = Some(config.model.conv_channels(side));
    let mut manifest = ImageManifest {
        format_version: FORMAT_VERSION,
        kind: KIND.to_owned(),
        tidewatch_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: chrono::Utc::now().to_rfc3339(),
        classes: set.classes.clone(),
        size_px: side,
        channels,
        normalisation,
        model: model_config,
        training: config.training.clone(),
        augment: config.augment.clone(),
        summary: TrainingReport {
            train_images: train_set.pixels.len(),
            validation_images: validation_set.pixels.len(),
            skipped_images: skipped,
            epochs_run: 0,
            best_epoch: 0,
            best_validation_accuracy: 0.0,
            best_validation_loss: f64::INFINITY,
            history: Vec::new(),
            seconds: 0.0,
        },
        weights: Default::default(),
    };

    let device = training_device();
    let t = &config.training;
    let model = init_seeded(t.seed, &device, |d| {
        manifest.model.init(manifest.shape(), d)
    });
    let plan = FitPlan {
        optimizer: optimizer(t),
        learning_rate: t.learning_rate,
        max_epochs: t.epochs,
        patience_epochs: t.patience_epochs,
        rng_seed: t.seed ^ 0x5eed_1ab5,
    };
    let batches_per_epoch = train_set.pixels.len().div_ceil(t.batch_size);
    let total_steps = (t.epochs * batches_per_epoch).max(1);
    let mut order: Vec<usize> = (0..train_set.pixels.len()).collect();
    // Every validated epoch's report; the epoch under way, its bar and its
    // report until validation completes it.
    let history: RefCell<Vec<EpochReport>> = RefCell::new(Vec::new());
    let current: RefCell<Option<(ProgressBar, EpochReport)>> = RefCell::new(None);
    let shape = (channels, side as usize);
    let train_epoch = |mut model: Cnn, stepper: &mut Stepper, rng: &mut StdRng| {
        let number = history.borrow().len() + 1;
        order.shuffle(rng);
        let bar = request.progress.bar(
            batches_per_epoch,
            "epoch {prefix} [{bar:24}] {pos}/{len}  {msg}  ETA {eta}",
        );
        bar.set_prefix(format!("{number}/{}", t.epochs));
        let (mut loss_sum, mut correct) = (0.0, 0usize);
        let mut learning_rate = t.learning_rate;
        for (b, batch) in order.chunks(t.batch_size).enumerate() {
            learning_rate = t.schedule.rate(
                t.learning_rate,
                ((number - 1) * batches_per_epoch + b) as f64 / total_steps as f64,
            );
            stepper.set_learning_rate(learning_rate);
            let images: Vec<&[f32]> = batch
                .iter()
                .map(|&i| train_set.pixels[i].as_slice())
                .collect();
            let labels: Vec<usize> = batch.iter().map(|&i| train_set.labels[i]).collect();
            let (stepped, value, hits) = train_step(
                model,
                stepper,
                &images,
                &labels,
                &config.augment,
                shape,
                rng,
                &device,
            );
            model = stepped;
            loss_sum += value * batch.len() as f64;
            correct += hits;
            let seen = (b * t.batch_size + batch.len()) as f64;
            bar.set_position(b as u64 + 1);
            bar.set_message(format!(
                "loss {:.4}  accuracy {:.3}",
                loss_sum / seen,
                correct as f64 / seen
            ));
        }
        let n = train_set.pixels.len() as f64;
        let report = EpochReport {
            epoch: number,
            learning_rate,
            train_loss: loss_sum / n,
            train_accuracy: correct as f64 / n,
            validation_loss: f64::NAN,
            validation_accuracy: f64::NAN,
        };
        *current.borrow_mut() = Some((bar, report));
        (model, report.train_loss)
    };
    let validate = |model: &Cnn| {
        let (validation_loss, validation_accuracy) = evaluate_split(
            model,
            &validation_set,
            channels,
            side as usize,
            t.batch_size * 4,
        );
        let (bar, mut report) = current.take().expect("validation follows an epoch");
        report.validation_loss = validation_loss;
        report.validation_accuracy = validation_accuracy;
        bar.finish_with_message(format!(
            "loss {:.4}  accuracy {:.3}  validation loss {:.4}  validation accuracy {:.3}",
            report.train_loss, report.train_accuracy, validation_loss, validation_accuracy
        ));
        history.borrow_mut().push(report);
        // Loss rather than accuracy: on a few hundred validation images
        // accuracy moves in coarse steps and ties often.
        Some(validation_loss)
    };
    // Each new best epoch is written at once: an interrupted run leaves
    // its best model so far.
    let checkpoint = |best: &EpochLoss, model: &Cnn| {
        let history = history.borrow();
        let report = history.last().expect("validated");
        let summary = &mut manifest.summary;
        summary.history = history.clone();
        summary.epochs_run = best.epoch;
        summary.best_epoch = best.epoch;
        summary.best_validation_accuracy = report.validation_accuracy;
        summary.best_validation_loss = report.validation_loss;
        summary.seconds = started.elapsed().as_secs_f64();
        artifact::save(&request.out, &manifest, model)
            .map(|_| ())
            .map_err(TrainError::from)
    };
    let trained = fit_with(
        model,
        plan,
        Progress::Quiet,
        "cnn",
        train_epoch,
        validate,
        checkpoint,
    )?;
    // The best epoch again, now with the full history in its manifest.
    let summary = &mut manifest.summary;
    summary.history = history.into_inner();
    summary.epochs_run = trained.summary.epochs_run;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(artifact::save(&request.out, &manifest, &trained.model)?)
}

/// The optimiser the training settings name.
pub fn optimizer(training: &ImageTrainingConfig) -> ModuleOptimizer {
    match training.optimizer {
        OptimizerKind::Adam => AdamConfig::new().init(),
        OptimizerKind::Sgd => SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new()
                    .with_momentum(training.momentum)
                    .with_dampening(0.0),
            ))
            .init(),
    }
}

/// One optimiser step on a batch of normalised images `(channels, side)`:
/// augmentation, forward pass, cross-entropy, backward pass, update.
/// Returns the model, the batch's mean loss and how many it got right.
#[allow(clippy::too_many_arguments)]
pub fn train_step(
    model: Cnn,
    stepper: &mut Stepper,
    images: &[&[f32]],
    labels: &[usize],
    augmentation: &AugmentConfig,
    (channels, side): (usize, usize),
    rng: &mut StdRng,
    device: &Device,
) -> (Cnn, f64, usize) {
    let augmented: Vec<Vec<f32>> = images
        .iter()
        .map(|pixels| {
            if augmentation.is_off() {
                pixels.to_vec()
            } else {
                augment(pixels, channels, side, augmentation, rng)
            }
        })
        .collect();
    let (loss, hits) = batch_loss(&model, &augmented, labels, channels, side, device);
    let (model, value) = stepper.step(model, loss);
    (model, value, hits)
}

/// Moves a seeded `fraction` of each class's images out into a
/// validation set.
fn split_off(set: &mut Decoded, fraction: f64, seed: u64) -> Decoded {
    let (_, held) = stratified_holdout(&set.labels, fraction, seed);
    let mut held_out: Vec<bool> = vec![false; set.pixels.len()];
    for i in held {
        held_out[i] = true;
    }
    let mut validation = Decoded::default();
    let mut kept = Decoded {
        skipped: set.skipped,
        ..Decoded::default()
    };
    let names = std::mem::take(&mut set.names);
    for (((pixels, label), name), held) in set
        .pixels
        .drain(..)
        .zip(set.labels.drain(..))
        .zip(names)
        .zip(held_out)
    {
        let target = if held { &mut validation } else { &mut kept };
        target.pixels.push(pixels);
        target.labels.push(label);
        target.names.push(name);
    }
    *set = kept;
    validation
}

/// Mean cross-entropy of a batch and how many it classified right.
fn batch_loss(
    model: &Cnn,
    images: &[Vec<f32>],
    labels: &[usize],
    channels: usize,
    side: usize,
    device: &Device,
) -> (Tensor<1>, usize) {
    let refs: Vec<&[f32]> = images.iter().map(Vec::as_slice).collect();
    let logits = model.forward(image_batch(&refs, channels, side, device));
    let hits = correct(&logits, labels);
    (cross_entropy(logits, labels), hits)
}

fn correct(logits: &Tensor<2>, labels: &[usize]) -> usize {
    let predicted = logits
        .clone()
        .argmax(1)
        .to_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default();
    predicted
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p as usize == **l)
        .count()
}

/// Loss and accuracy of `model` (without autodiff) on a decoded set.
fn evaluate_split(
    model: &Cnn,
    set: &Decoded,
    channels: usize,
    side: usize,
    batch_size: usize,
) -> (f64, f64) {
    let device = Device::flex();
    let (mut loss_sum, mut hits) = (0.0, 0);
    for (images, labels) in set
        .pixels
        .chunks(batch_size)
        .zip(set.labels.chunks(batch_size))
    {
        let (loss, batch_hits) = batch_loss(model, images, labels, channels, side, &device);
        loss_sum += scalar(&loss) * images.len() as f64;
        hits += batch_hits;
    }
    let n = set.pixels.len().max(1) as f64;
    (loss_sum / n, hits as f64 / n)
}

/// One line on how a training run went and where its model is.
pub fn describe(out: &Path, manifest: &ImageManifest) -> String {
    let s = &manifest.summary;
    format!(
        "{} classes, {} training and {} validation images{}; best epoch {}/{} (validation accuracy {:.4}, loss {:.4}) in {:.0} s; model written to {}",
        manifest.classes.len(),
        s.train_images,
        s.validation_images,
        if s.skipped_images > 0 {
            format!(", {} unreadable skipped", s.skipped_images)
        } else {
            String::new()
        },
        s.best_epoch,
        s.epochs_run,
        s.best_validation_accuracy,
        s.best_validation_loss,
        s.seconds,
        out.display()
    )
}
