//! The offline tabular job: a multilayer perceptron over the columns of a
//! CSV or JSON Lines table, for classification or regression.
//!
//! - [`table`]: the file's rows as text cells, missing values marked.
//! - [`config`]: column overrides, feature, network and training settings.
//! - [`features`]: columns typed and fitted into network inputs, and the
//!   target into standardised values or class indices; the hardening rules.
//! - [`model`]: the network; [`training`]: the loop that writes the model
//!   directory ([`artifact`]), the contract with [`inference`] (predict and
//!   evaluate); [`cross_validation`]: K-fold figures.

pub mod artifact;
pub mod config;
pub mod cross_validation;
pub mod features;
pub mod inference;
pub mod model;
pub mod table;
pub mod training;
