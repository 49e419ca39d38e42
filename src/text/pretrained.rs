//! The `pretrained` kind: a sentence encoder read from a directory
//! ([`crate::text::encoder`]) and a dense layer on its sentence vectors.
//!
//! Training first fits the dense layer on the vectors of the frozen
//! encoder (each text encoded once); with `fine_tune_epochs` above zero it
//! then trains encoder and layer together at a small learning rate. The
//! model directory keeps its own copy of the encoder, so serving needs only
//! the model directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::nn::training::{
    Progress, TrainingConfig, TrainingSummary, cross_entropy, fit, init_seeded, training_device,
};
use crate::text::batches::{
    in_length_batches, index_batches, mean_batch_loss, mean_over_batches, run_epoch,
    stratified_holdout,
};
use crate::text::encoder::{
    Bert, ENCODE_BATCH, EncoderError, EncoderSettings, SentenceEncoder, sentence_vectors,
    tokenizer_from_bytes,
};
use crate::text::model::{load_record, record_bytes};
use crate::text::rnn::{default_seed, default_validation_fraction};

/// Settings of the `pretrained` kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainedConfig {
    /// The encoder directory the model was trained from (for the record; the
    /// model directory carries its own copy).
    #[serde(default)]
    pub encoder_dir: PathBuf,
    /// Upper bound on passes over the training texts' vectors when fitting
    /// the dense layer.
    #[serde(default = "default_head_max_epochs")]
    pub head_max_epochs: usize,
    /// Stop fitting the dense layer after this many epochs without a better
    /// validation loss.
    #[serde(default = "default_head_patience_epochs")]
    pub head_patience_epochs: usize,
    /// Adam learning rate of the dense layer.
    #[serde(default = "default_head_learning_rate")]
    pub head_learning_rate: f64,
    /// Texts per optimiser step of the dense layer.
    #[serde(default = "default_head_batch_size")]
    pub head_batch_size: usize,
    /// Share of each label's training texts held out for validation.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Seed of initialisation, validation split and shuffling.
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

fn default_head_max_epochs() -> usize {
    200
}
fn default_head_patience_epochs() -> usize {
    10
}
fn default_head_learning_rate() -> f64 {
    1e-2
}
fn default_head_batch_size() -> usize {
    32
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
            head_max_epochs: default_head_max_epochs(),
            head_patience_epochs: default_head_patience_epochs(),
            head_learning_rate: default_head_learning_rate(),
            head_batch_size: default_head_batch_size(),
            validation_fraction: default_validation_fraction(),
            seed: default_seed(),
            fine_tune_epochs: 0,
            fine_tune_learning_rate: default_fine_tune_learning_rate(),
            fine_tune_batch_size: default_fine_tune_batch_size(),
        }
    }
}

impl PretrainedConfig {
    /// The training loop's settings for the dense layer.
    fn head_training(&self) -> TrainingConfig {
        TrainingConfig {
            max_epochs: self.head_max_epochs,
            batch_size: self.head_batch_size,
            learning_rate: self.head_learning_rate,
            patience_epochs: self.head_patience_epochs,
            validation_fraction: self.validation_fraction,
            max_samples_per_epoch: usize::MAX,
            seed: self.seed,
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
    /// a summary per training stage (`head`, and `fine_tune` if run).
    pub fn fit(
        texts: &[String],
        targets: &[usize],
        classes: usize,
        config: &PretrainedConfig,
        progress: Progress,
    ) -> Result<(PretrainedModel, BTreeMap<String, TrainingSummary>), EncoderError> {
        let device = training_device();
        let encoder = SentenceEncoder::load(&config.encoder_dir, &device)?;
        let ids = encoder.token_ids(texts)?;
        let normalise = encoder.settings.normalise;

        let frozen = encoder.bert.valid();
        let bar = encode_bar(progress, texts.len());
        let vectors = in_length_batches(
            &ids,
            ENCODE_BATCH,
            encoder.settings.bert.hidden_size,
            |sequences| {
                bar.inc(sequences.len() as u64);
                sentence_vectors(&frozen, normalise, sequences)
            },
        );
        bar.finish_and_clear();
        drop(frozen);

        let t = &config.head_training();
        let (train, validation) = stratified_holdout(targets, t.validation_fraction, t.seed);
        let hidden = encoder.settings.bert.hidden_size;
        let head = init_seeded(t.seed, &device, |d| {
            LinearConfig::new(hidden, classes).init(d)
        });
        let head_loss = |head: &Linear, batch: &[usize]| {
            let rows: Vec<f32> = batch
                .iter()
                .flat_map(|&i| vectors.row(i).to_vec())
                .collect();
            let inputs = Tensor::<2>::from_data(
                TensorData::new(rows, [batch.len(), hidden]),
                &head.weight.device(),
            );
            let labels: Vec<usize> = batch.iter().map(|&i| targets[i]).collect();
            cross_entropy(head.forward(inputs), &labels)
        };
        let equal_lengths = vec![1; train.len()];
        let head = fit(
            head,
            t,
            progress,
            "head",
            |head, stepper, rng| {
                let batches = index_batches(&train, &equal_lengths, t.batch_size, Some(rng));
                run_epoch(head, &batches, stepper, head_loss)
            },
            |head| {
                mean_batch_loss(&validation, t.batch_size * 8, |batch| {
                    head_loss(head, batch)
                })
            },
        );
        let mut stages = BTreeMap::from([("head".to_owned(), head.summary)]);
        let mut network = PretrainedNetwork {
            bert: encoder.bert,
            head: head.model,
        };
        if config.fine_tune_epochs > 0 {
            let tune = TrainingConfig {
                max_epochs: config.fine_tune_epochs,
                patience_epochs: config.fine_tune_epochs,
                batch_size: config.fine_tune_batch_size,
                learning_rate: config.fine_tune_learning_rate,
                ..t.clone()
            };
            let network_loss = |network: &PretrainedNetwork, batch: &[usize]| {
                let sequences: Vec<&[u32]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
                let labels: Vec<usize> = batch.iter().map(|&i| targets[i]).collect();
                let vectors = sentence_vectors(&network.bert, normalise, &sequences);
                cross_entropy(network.head.forward(vectors), &labels)
            };
            let train_lengths: Vec<usize> = train.iter().map(|&i| ids[i].len()).collect();
            let validation_lengths: Vec<usize> = validation.iter().map(|&i| ids[i].len()).collect();
            // Back onto the training device: the head was returned without autodiff.
            let head = network.head.to_device(&device);
            let tuned = fit(
                PretrainedNetwork { head, ..network },
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
            );
            stages.insert("fine_tune".to_owned(), tuned.summary);
            network = tuned.model;
        } else {
            network.bert = network.bert.valid();
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
        let ids = texts
            .iter()
            .map(|text| {
                self.tokenizer
                    .encode(text.as_str(), true)
                    .map(|encoding| encoding.get_ids().to_vec())
                    .map_err(|e| EncoderError::Tokenizer(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
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

fn encode_bar(progress: Progress, texts: usize) -> ProgressBar {
    if progress == Progress::Quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(texts as u64);
    bar.set_style(
        ProgressStyle::with_template("encoding texts [{bar:24}] {pos}/{len}  ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}
