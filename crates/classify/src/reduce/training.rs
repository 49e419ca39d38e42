//! `reduce train`: fit an autoencoder with a k-unit code on rows, with a
//! seeded validation share for early stopping, and write the model
//! directory.

use burn::tensor::{Device, Tensor};

use crate::reduce::config::ReduceConfig;
use crate::reduce::data::Rows;
use crate::reduce::model::Autoencoder;
use crate::split::random_holdout;
use crate::tabular::training::{fit_rows, row_batch};
use tidewatch_learn::fit::{Diverged, Progress, TrainingSummary, init_seeded, training_device};

/// Mean squared reconstruction error of the rows at `indices`.
fn reconstruction_loss(
    model: &Autoencoder,
    rows: &Rows,
    indices: &[usize],
    device: &Device,
) -> Tensor<1> {
    let x = row_batch(&rows.values, rows.width, indices, device);
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
    let (train, validation) = random_holdout(rows.len(), t.validation_fraction, t.seed);
    let device = training_device();
    let model = init_seeded(t.seed, &device, |d| {
        Autoencoder::init(&config.model, rows.width, code, d)
    });
    let trained = fit_rows(
        model,
        train,
        &validation,
        t,
        t.seed ^ 0x00ae_c0de,
        progress,
        &format!("autoencoder k={code}"),
        |model: &Autoencoder, batch: &[usize], device: &Device| {
            reconstruction_loss(model, rows, batch, device)
        },
    )?;
    Ok((trained.model, trained.summary))
}

/// Each row's code and reconstruction, row-major.
pub fn encode_rows(model: &Autoencoder, rows: &Rows) -> (Vec<f32>, Vec<f32>) {
    let device = Device::flex();
    let indices: Vec<usize> = (0..rows.len()).collect();
    let (mut codes, mut reconstructions) = (Vec::new(), Vec::new());
    for batch in indices.chunks(1024) {
        let code = model.encode(row_batch(&rows.values, rows.width, batch, &device));
        codes.extend(code.clone().into_data().iter::<f32>());
        reconstructions.extend(model.decode(code).into_data().iter::<f32>());
    }
    (codes, reconstructions)
}
