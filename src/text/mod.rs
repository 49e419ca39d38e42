//! The offline text job: classify comments (satisfied / neutral /
//! dissatisfied, or whatever labels the training file carries).
//!
//! - [`data`]: CSV, TSV and JSON Lines readers with line-numbered errors.
//! - [`baseline`]: TF-IDF and logistic regression with linfa.
//! - [`model`]: the model directory and the interface every kind serves;
//!   [`jobs`]: train, predict, evaluate and the seeded split.
//! - [`reviews`]: generated reviews for tests and benches.

pub mod baseline;
pub mod data;
pub mod jobs;
pub mod model;
pub mod reviews;
