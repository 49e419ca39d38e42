//! The offline image job: a convolutional classifier trained and run over
//! folders of images, in the layout of burn's guide example.
//!
//! - [`config`]: the network, training and augmentation settings (TOML).
//! - [`data`]: ImageFolder and IDX input, decoding, resizing,
//!   normalisation and batches; [`augment`]: training-time warps.
//! - [`model`]: the network; [`training`]: the loop that writes the model
//!   directory ([`artifact`]), the contract with [`inference`] (predict and
//!   evaluate) and [`picture`] (the confusion matrix as a PNG).
//! - [`digits`]: the scikit-learn digits CSV as an ImageFolder;
//!   [`shapes`]: generated shape images for tests and benches.

pub mod artifact;
pub mod augment;
pub mod config;
pub mod data;
pub mod digits;
pub mod inference;
pub mod model;
pub mod picture;
pub mod shapes;
pub mod training;
