//! The `pretrained` kind: a sentence encoder read from a directory
//! ([`crate::text::encoder`]) and a dense layer on its sentence vectors.
//!
//! Training first fits the dense layer as a multinomial logistic regression
//! ([`crate::text::sparse_logistic`]) on the vectors of the frozen encoder, each text encoded
//! once: a convex fit on every training text, with no seed or validation
//! share to vary. With `fine_tune_epochs` above zero it then trains encoder
//! and layer together at a small learning rate, with Adam, a held-out
//! validation share and the best epoch kept. The
//! model directory keeps its own copy of the encoder, so serving needs only
//! the model directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::record::{load_record, record_bytes};
use crate::split::stratified_holdout;
use crate::text::baseline::fit_logistic;
use crate::text::batches::{in_length_batches, index_batches, mean_over_batches, run_epoch};
use crate::text::encoder::{
    Bert, ENCODE_BATCH, EncoderError, EncoderSettings, SentenceEncoder, sentence_vectors,
    token_ids, tokenizer_from_bytes,
};
use crate::text::error::TextModelError;
use crate::text::rnn::{default_seed, default_validation_fraction};
use tidewatch_learn::fit::{Progress, TrainingSummary, cross_entropy, fit, training_device};
use tidewatch_stream::config::TrainingConfig;

/// Settings of the `pretrained` kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainedConfig {
    /// The encoder directory the model was trained from (for the record; the
    /// model directory carries its own copy).
    #[serde(default)]
    pub encoder_dir: PathBuf,
    /// L2 penalty of the logistic regression that fits the dense layer.
    #[serde(default = "default_head_l2_penalty")]
    pub head_l2_penalty: f64,
    /// Iteration bound of that regression.
    #[serde(default = "default_head_max_iterations")]
    pub head_max_iterations: u64,
    /// Share of each label's training texts held out for validation while
    /// fine-tuning.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Seed of the fine-tuning's validation split and shuffling.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Epochs of training encoder and layer together afterwards; 0 keeps
    /// the encoder frozen.
    #[serde(default)]
    pub fine_tune_epochs: usize,
    /// Adam learning rate while fine-tuning.
    #[serde(default = "default_fine_tune_learning_rate")]
    pub fine_tune_learning_rate: f64,
    /// Texts per step while fine-tuning.
    #[serde(default = "default_fine_tune_batch_size")]
    pub fine_tune_batch_size: usize,
}

fn default_head_l2_penalty() -> f64 {
    1.0
}
fn default_head_max_iterations() -> u64 {
    300
}
fn default_fine_tune_learning_rate() -> f64 {
    2e-5
}
fn default_fine_tune_batch_size() -> usize {
    16
}

impl Default for PretrainedConfig {
    fn default() -> PretrainedConfig {
        PretrainedConfig {
            encoder_dir: PathBuf::new(),
            head_l2_penalty: default_head_l2_penalty(),
            head_max_iterations: default_head_max_iterations(),
            validation_fraction: default_validation_fraction(),
            seed: default_seed(),
            fine_tune_epochs: 0,
            fine_tune_learning_rate: default_fine_tune_learning_rate(),
            fine_tune_batch_size: default_fine_tune_batch_size(),
        }
    }
}

#[derive(Module, Debug)]
pub struct PretrainedNetwork {
    bert: Bert,
    /// Sentence vector `[batch, hidden]` to logits `[batch, classes]`.
    head: Linear,
}

/// A trained `pretrained` model.
#[derive(Debug, Clone)]
pub struct PretrainedModel {
    pub encoder: EncoderSettings,
    pub tokenizer: Tokenizer,
    pub network: PretrainedNetwork,
}

/// File names in the model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
pub const NETWORK_FILE: &str = "pretrained.bpk";

impl PretrainedModel {
    /// Fits on `texts` with class indices `targets`; returns the model and
    /// the epoch history of fine-tuning (`fine_tune`), if it ran.
    pub fn fit(
        texts: &[String],
        targets: &[usize],
        classes: usize,
        config: &PretrainedConfig,
        progress: Progress,
    ) -> Result<(PretrainedModel, BTreeMap<String, TrainingSummary>), TextModelError> {
        let device = training_device();
        let encoder = SentenceEncoder::load(&config.encoder_dir, &device)?;
        let ids = token_ids(&encoder.tokenizer, texts)?;
        let normalise = encoder.settings.normalise;
        let bar = progress.bar(
            texts.len(),
            "encoding texts [{bar:24}] {pos}/{len}  ETA {eta}",
        );
        let vectors = encoder.encode_ids(&ids, |done| bar.inc(done as u64));
        bar.finish_and_clear();

        // Fine-tuning validates on a held-out share, which the head must
        // not have seen either; a frozen model's head sees every text.
        let (train, validation) = if config.fine_tune_epochs > 0 {
            stratified_holdout(targets, config.validation_fraction, config.seed)
        } else {
            ((0..texts.len()).collect(), Vec::new())
        };
        let head = fit_head(&vectors, targets, &train, classes, config, &device)
            .map_err(TextModelError::Model)?;
        let mut stages = BTreeMap::new();
        let mut network = PretrainedNetwork {
            bert: encoder.bert,
            head,
        };
        if config.fine_tune_epochs > 0 {
            let tune = TrainingConfig {
                max_epochs: config.fine_tune_epochs,
                patience_epochs: config.fine_tune_epochs,
                batch_size: config.fine_tune_batch_size,
                learning_rate: config.fine_tune_learning_rate,
                validation_fraction: config.validation_fraction,
                max_samples_per_epoch: usize::MAX,
                seed: config.seed,
            };
            let network_loss = |network: &PretrainedNetwork, batch: &[usize]| {
                let sequences: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
                let labels: Vec<usize> = batch.iter().map(|&i| targets[i]).collect();
                let vectors = sentence_vectors(&network.bert, normalise, &sequences);
                cross_entropy(network.head.forward(vectors), &labels)
            };
            let train_lengths: Vec<usize> = train.iter().map(|&i| ids[i].len()).collect();
            let validation_lengths: Vec<usize> = validation.iter().map(|&i| ids[i].len()).collect();
            let tuned = fit(
                network,
                &tune,
                progress,
                "fine-tune",
                |network, stepper, rng| {
                    let batches = index_batches(&train, &train_lengths, tune.batch_size, Some(rng));
                    run_epoch(network, &batches, stepper, network_loss)
                },
                |network| {
                    let batches =
                        index_batches(&validation, &validation_lengths, ENCODE_BATCH, None);
                    mean_over_batches(&batches, |batch| network_loss(network, batch))
                },
            )?;
            stages.insert("fine_tune".to_owned(), tuned.summary);
            network = tuned.model;
        } else {
            network = network.valid();
        }
        Ok((
            PretrainedModel {
                encoder: encoder.settings,
                tokenizer: encoder.tokenizer,
                network,
            },
            stages,
        ))
    }

    /// Class probabilities `[texts, classes]`.
    pub fn probabilities(&self, texts: &[String]) -> Result<Array2<f64>, EncoderError> {
        let ids = token_ids(&self.tokenizer, texts)?;
        let classes = self.network.head.weight.dims()[1];
        Ok(in_length_batches(&ids, ENCODE_BATCH, classes, |sequences| {
            let vectors = sentence_vectors(&self.network.bert, self.encoder.normalise, sequences);
            softmax(self.network.head.forward(vectors), 1)
        })
        .mapv(f64::from))
    }

    /// The files of the model directory: name and bytes.
    pub fn files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, String> {
        let tokenizer = self
            .tokenizer
            .to_string(false)
            .map_err(|e| e.to_string())?
            .into_bytes();
        Ok(vec![
            (TOKENIZER_FILE, tokenizer),
            (NETWORK_FILE, record_bytes(&self.network)?),
        ])
    }

    /// The model from its settings and the (verified) bytes of its files.
    pub fn from_files(
        encoder: EncoderSettings,
        classes: usize,
        tokenizer: &[u8],
        network_bytes: Vec<u8>,
    ) -> Result<PretrainedModel, String> {
        let device = Device::flex();
        let tokenizer =
            tokenizer_from_bytes(tokenizer, encoder.max_tokens).map_err(|e| e.to_string())?;
        let network = PretrainedNetwork {
            bert: Bert::init(&encoder.bert, &device),
            head: LinearConfig::new(encoder.bert.hidden_size, classes).init(&device),
        };
        Ok(PretrainedModel {
            encoder,
            tokenizer,
            network: load_record(network, network_bytes)?,
        })
    }
}

/// The dense layer, fitted as a logistic regression on the sentence
/// vectors `[texts, hidden]` of the `rows` given.
fn fit_head(
    vectors: &Array2<f32>,
    targets: &[usize],
    rows: &[usize],
    classes: usize,
    config: &PretrainedConfig,
    device: &Device,
) -> Result<Linear, String> {
    let features = vectors.select(Axis(0), rows).mapv(f64::from);
    let labels: Vec<usize> = rows.iter().map(|&i| targets[i]).collect();
    let (weights, intercepts) = fit_logistic(
        features,
        &labels,
        classes,
        config.head_l2_penalty,
        config.head_max_iterations,
    )?;
    let tensor = |values: Vec<f64>, shape: Vec<usize>| {
        TensorData::new(values.into_iter().map(|v| v as f32).collect(), shape)
    };
    let shape = weights.shape().to_vec();
    Ok(Linear {
        // linfa's [width, classes] is burn's [inputs, outputs].
        weight: Param::from_tensor(Tensor::from_data(
            tensor(weights.into_iter().collect(), shape),
            device,
        )),
        bias: Some(Param::from_tensor(Tensor::from_data(
            tensor(intercepts.to_vec(), vec![classes]),
            device,
        ))),
    })
}
