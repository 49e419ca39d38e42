//! The offline text job: classify comments (satisfied / neutral /
//! dissatisfied, or whatever labels the training file carries).
//!
//! - [`data`]: CSV, TSV and JSON Lines readers with line-numbered errors.
//! - The model kinds, one file each: [`baseline`] (TF-IDF and logistic
//!   regression with linfa), [`rnn`] (words, embedding, bidirectional
//!   GRU/LSTM; words from [`tokenize`]) and [`pretrained`] (a dense layer on
//!   a sentence encoder read from a directory, [`encoder`]); [`batches`]
//!   cuts texts into length batches for both neural kinds.
//! - [`model`]: the model directory and the interface every kind serves
//!   ([`error`]: what can go wrong with one);
//!   [`jobs`]: train, predict, evaluate and the seeded split.
//! - [`reviews`]: generated reviews for tests and benches.

pub mod baseline;
pub mod batches;
pub mod data;
pub mod encoder;
pub mod error;
pub mod jobs;
pub mod model;
pub mod pretrained;
pub mod reviews;
pub mod rnn;
pub mod sparse_logistic;
pub mod tokenize;
