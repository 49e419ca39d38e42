//! The `rnn` kind: words to ids ([`Vocabulary`]), an embedding, a
//! bidirectional GRU or LSTM, mean and max pooling over the tokens, and a
//! dense layer to the labels; trained with Adam, a held-out validation
//! share and early stopping on its loss.

use burn::module::Module;
use burn::nn::{
    BiGru, BiGruConfig, BiLstm, BiLstmConfig, Dropout, DropoutConfig, Embedding, EmbeddingConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::split::stratified_holdout;
use crate::text::batches::{
    id_batch, in_length_batches, index_batches, masked_mean, mean_over_batches, run_epoch,
};
use crate::text::tokenize::Vocabulary;
use tidewatch_learn::fit::{
    Diverged, Progress, TrainingSummary, cross_entropy, fit, init_seeded, training_device,
};
use tidewatch_stream::config::CellKind;
use tidewatch_stream::config::TrainingConfig;

/// Settings of the `rnn` kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RnnConfig {
    /// Recurrent cell: `gru` or `lstm` (each run in both directions).
    #[serde(default = "default_cell")]
    pub cell: CellKind,
    /// Width of a word vector.
    #[serde(default = "default_embedding_size")]
    pub embedding_size: usize,
    /// Width of each direction's state.
    #[serde(default = "default_hidden_size")]
    pub hidden_size: usize,
    /// A word seen fewer times in training is the unknown token.
    #[serde(default = "default_min_count")]
    pub min_word_count: usize,
    /// Vocabulary bound, padding and unknown included.
    #[serde(default = "default_max_vocabulary")]
    pub max_vocabulary: usize,
    /// Longer texts are cut to their first this many tokens.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Dropout on the pooled features during training.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Upper bound on passes over the training texts.
    #[serde(default = "default_max_epochs")]
    pub max_epochs: usize,
    /// Stop after this many epochs without a better validation loss.
    #[serde(default = "default_patience_epochs")]
    pub patience_epochs: usize,
    /// Texts per optimiser step.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam learning rate.
    #[serde(default = "default_learning_rate")]
    pub learning_rate: f64,
    /// Share of each label's training texts held out for validation.
    #[serde(default = "default_validation_fraction")]
    pub validation_fraction: f64,
    /// Seed of initialisation, validation split and shuffling.
    #[serde(default = "default_seed")]
    pub seed: u64,
}

fn default_cell() -> CellKind {
    CellKind::Gru
}
fn default_embedding_size() -> usize {
    64
}
fn default_hidden_size() -> usize {
    64
}
fn default_min_count() -> usize {
    2
}
fn default_max_vocabulary() -> usize {
    20_000
}
fn default_max_tokens() -> usize {
    128
}
fn default_dropout() -> f64 {
    0.3
}
fn default_max_epochs() -> usize {
    25
}
fn default_patience_epochs() -> usize {
    3
}
fn default_batch_size() -> usize {
    32
}
fn default_learning_rate() -> f64 {
    2e-3
}
pub(crate) fn default_validation_fraction() -> f64 {
    0.1
}
pub(crate) fn default_seed() -> u64 {
    42
}

impl Default for RnnConfig {
    fn default() -> Self {
        RnnConfig {
            cell: default_cell(),
            embedding_size: default_embedding_size(),
            hidden_size: default_hidden_size(),
            min_word_count: default_min_count(),
            max_vocabulary: default_max_vocabulary(),
            max_tokens: default_max_tokens(),
            dropout: default_dropout(),
            max_epochs: default_max_epochs(),
            patience_epochs: default_patience_epochs(),
            batch_size: default_batch_size(),
            learning_rate: default_learning_rate(),
            validation_fraction: default_validation_fraction(),
            seed: default_seed(),
        }
    }
}

#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum BiRecurrent {
    Gru(BiGru),
    Lstm(BiLstm),
}

impl BiRecurrent {
    /// `[batch, tokens, input]` to `[batch, tokens, 2 * hidden]`.
    fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        match self {
            BiRecurrent::Gru(gru) => gru.forward(input, None).0,
            BiRecurrent::Lstm(lstm) => lstm.forward(input, None).0,
        }
    }
}

#[derive(Module, Debug)]
pub struct RnnNetwork {
    embedding: Embedding,
    recurrent: BiRecurrent,
    dropout: Dropout,
    output: Linear,
}

impl RnnConfig {
    /// The training loop's settings: every text in every epoch.
    pub fn training(&self) -> TrainingConfig {
        TrainingConfig {
            max_epochs: self.max_epochs,
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            patience_epochs: self.patience_epochs,
            validation_fraction: self.validation_fraction,
            max_samples_per_epoch: usize::MAX,
            seed: self.seed,
        }
    }

    pub fn init(&self, vocabulary: usize, classes: usize, device: &Device) -> RnnNetwork {
        let (input, hidden) = (self.embedding_size, self.hidden_size);
        RnnNetwork {
            embedding: EmbeddingConfig::new(vocabulary, input).init(device),
            recurrent: match self.cell {
                CellKind::Gru => {
                    BiRecurrent::Gru(BiGruConfig::new(input, hidden, true).init(device))
                }
                CellKind::Lstm => {
                    BiRecurrent::Lstm(BiLstmConfig::new(input, hidden, true).init(device))
                }
            },
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(4 * hidden, classes).init(device),
        }
    }
}

impl RnnNetwork {
    /// Token ids `[batch, tokens]` with their mask `[batch, tokens]` to
    /// logits `[batch, classes]`.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let states = self.recurrent.forward(self.embedding.forward(ids)); // [batch, tokens, 2h]
        let mean = masked_mean(states.clone(), mask.clone());
        // Padding pushed far below any state before the max.
        let penalty = (mask.unsqueeze_dim::<3>(2) - 1.0) * 1e4;
        let max = (states + penalty).max_dim(1).squeeze_dim(1);
        let pooled = Tensor::cat(vec![mean, max], 1); // [batch, 4h]
        self.output.forward(self.dropout.forward(pooled))
    }
}

/// A trained `rnn` model: its vocabulary and network.
#[derive(Debug, Clone)]
pub struct RnnModel {
    pub vocabulary: Vocabulary,
    pub network: RnnNetwork,
    pub max_tokens: usize,
}

/// Texts per forward pass when predicting.
const PREDICT_BATCH: usize = 64;

impl RnnModel {
    /// Fits on `texts` with class indices `targets` (each in `0..classes`).
    pub fn fit(
        texts: &[String],
        targets: &[usize],
        classes: usize,
        config: &RnnConfig,
        progress: Progress,
    ) -> Result<(RnnModel, TrainingSummary), Diverged> {
        let t = &config.training();
        let (train, validation) = stratified_holdout(targets, t.validation_fraction, t.seed);
        let vocabulary = Vocabulary::build(
            train.iter().map(|&i| texts[i].as_str()),
            config.min_word_count,
            config.max_vocabulary,
        );
        let encoded: Vec<Vec<u32>> = texts
            .iter()
            .map(|text| vocabulary.encode(text, config.max_tokens))
            .collect();
        let device = training_device();
        let network = init_seeded(t.seed, &device, |d| {
            config.init(vocabulary.len(), classes, d)
        });
        let loss = |network: &RnnNetwork, batch: &[usize]| {
            let sequences: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
            let labels: Vec<usize> = batch.iter().map(|&i| targets[i]).collect();
            batch_loss(network, &sequences, &labels)
        };
        let train_lengths: Vec<usize> = train.iter().map(|&i| encoded[i].len()).collect();
        let validation_lengths: Vec<usize> = validation.iter().map(|&i| encoded[i].len()).collect();
        let trained = fit(
            network,
            t,
            progress,
            "rnn",
            |network, stepper, rng| {
                let batches = index_batches(&train, &train_lengths, t.batch_size, Some(rng));
                run_epoch(network, &batches, stepper, loss)
            },
            |network| {
                let batches =
                    index_batches(&validation, &validation_lengths, t.batch_size * 4, None);
                mean_over_batches(&batches, |batch| loss(network, batch))
            },
        )?;
        let model = RnnModel {
            vocabulary,
            network: trained.model,
            max_tokens: config.max_tokens,
        };
        Ok((model, trained.summary))
    }

    /// Class probabilities `[texts, classes]`.
    pub fn probabilities(&self, texts: &[String]) -> Array2<f64> {
        let encoded: Vec<Vec<u32>> = texts
            .iter()
            .map(|text| self.vocabulary.encode(text, self.max_tokens))
            .collect();
        let classes = self.network.output.weight.dims()[1];
        let device = Device::flex();
        in_length_batches(&encoded, PREDICT_BATCH, classes, |sequences| {
            let (ids, mask) = id_batch(sequences, &device);
            softmax(self.network.forward(ids, mask), 1)
        })
        .mapv(f64::from)
    }
}

/// Mean cross-entropy of one batch of encoded texts of one padded length.
fn batch_loss(network: &RnnNetwork, sequences: &[&[u32]], labels: &[usize]) -> Tensor<1> {
    let device = network.output.weight.device();
    let (ids, mask) = id_batch(sequences, &device);
    cross_entropy(network.forward(ids, mask), labels)
}
