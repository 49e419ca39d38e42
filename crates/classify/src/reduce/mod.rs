//! The offline dimensionality-reduction job: an autoencoder whose k-unit
//! bottleneck compresses numeric rows or images, measured against PCA's
//! first k components.
//!
//! - [`config`]: the network and training settings (the tabular network's).
//! - [`data`]: a table's encoded rows or flattened images, and how to read
//!   them again ([`data::RowSource`], stored in the model directory).
//! - [`model`]: the autoencoder; [`training`]: fitting it, and codes and
//!   reconstructions of rows; [`artifact`]: the model directory;
//!   [`jobs`]: train, transform and evaluate against PCA.

pub mod artifact;
pub mod config;
pub mod data;
pub mod jobs;
pub mod model;
pub mod training;
