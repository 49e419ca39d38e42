//! `reduce train`: fit an autoencoder with a k-unit code on rows, with a
//! seeded validation share for early stopping, and write the model
//! directory.

use burn::optim::AdamWConfig;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::reduce::config::ReduceConfig;
use crate::reduce::data::Rows;
use crate::reduce::model::Autoencoder;
use crate::tabular::training::Plateau;
use tidewatch_learn::fit::{
    Diverged, FitPlan, Progress, Stepper, TrainingSummary, fit_with, init_seeded, mean_loss,
    scalar, training_device,
};

/// The rows at `indices` as a `[rows, width]` tensor.
pub fn row_batch(rows: &Rows, indices: &[usize], device: &Device) -> Tensor<2> {
    let mut values = Vec::with_capacity(indices.len() * rows.width);
    for &i in indices {
        values.extend_from_slice(rows.row(i));
    }
    Tensor::from_data(TensorData::new(values, [indices.len(), rows.width]), device)
}

/// Mean squared reconstruction error of the rows at `indices`.
fn reconstruction_loss(
    model: &Autoencoder,
    rows: &Rows,
    indices: &[usize],
    device: &Device,
) -> Tensor<1> {
    let x = row_batch(rows, indices, device);
    (model.reconstruct(x.clone()) - x).powi_scalar(2).mean()
}

/// Trains an autoencoder with a `code`-unit bottleneck on `rows`.
pub fn fit_autoencoder(
    rows: &Rows,
    code: usize,
    config: &ReduceConfig,
    progress: Progress,
) -> Result<(Autoencoder, TrainingSummary), Diverged> {
    let t = &config.training;
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.shuffle(&mut StdRng::seed_from_u64(t.seed));
    let held = ((rows.len() as f64 * t.validation_fraction).round() as usize)
        .clamp(1, rows.len().saturating_sub(1).max(1));
    let (validation, train) = order.split_at(held);
    let mut train = train.to_vec();
    let device = training_device();
    let model = init_seeded(t.seed, &device, |d| {
        Autoencoder::init(&config.model, rows.width, code, d)
    });
    let plan = FitPlan {
        optimizer: AdamWConfig::new()
            .with_weight_decay(t.weight_decay as f32)
            .init(),
        learning_rate: t.learning_rate,
        max_epochs: t.epochs,
        patience_epochs: t.patience_epochs,
        rng_seed: t.seed ^ 0x00ae_c0de,
    };
    let plateau = Plateau::new(t);
    let train_epoch = |mut model: Autoencoder, stepper: &mut Stepper, rng: &mut StdRng| {
        stepper.set_learning_rate(plateau.learning_rate());
        train.shuffle(rng);
        let (mut total, mut counted) = (0.0, 0);
        for batch in train.chunks(t.batch_size) {
            if batch.len() < 2 {
                continue;
            }
            let loss = reconstruction_loss(&model, rows, batch, &device);
            let (stepped, value) = stepper.step(model, loss);
            model = stepped;
            total += value * batch.len() as f64;
            counted += batch.len();
        }
        (model, total / counted.max(1) as f64)
    };
    let inference = Device::flex();
    let validate = |model: &Autoencoder| {
        let loss = mean_loss(validation, t.batch_size * 8, |batch| {
            scalar(&reconstruction_loss(model, rows, batch, &inference))
        });
        plateau.observe(loss.unwrap_or(f64::NAN));
        loss
    };
    let label = format!("autoencoder k={code}");
    let trained = fit_with(
        model,
        plan,
        progress,
        &label,
        train_epoch,
        validate,
        |_, _| Ok::<(), Diverged>(()),
    )?;
    Ok((trained.model, trained.summary))
}

/// Each row's code and reconstruction, row-major.
pub fn encode_rows(model: &Autoencoder, rows: &Rows) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex();
    let indices: Vec<usize> = (0..rows.len()).collect();
    let (mut codes, mut reconstructions) = (Vec::new(), Vec::new());
    for batch in indices.chunks(1024) {
        let code = model.encode(row_batch(rows, batch, &device));
        codes.extend(code.clone().into_data().iter::<f32>());
        reconstructions.extend(model.decode(code).into_data().iter::<f32>());
    }
    (codes, reconstructions)
}
