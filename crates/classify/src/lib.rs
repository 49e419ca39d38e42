//! tidewatch's offline neural toolbox, apart from the streaming path:
//! images (a CNN over folders of images), text (TF-IDF baseline, recurrent
//! network, pretrained sentence encoder), tables (a multilayer perceptron
//! for classification or regression) and dimensionality reduction (an
//! autoencoder against PCA). All train with the learning crate's fit loop
//! and write model directories of its one type.
//!
//! # Layout
//!
//! - [`vision`]: the image job, from image folders to a model directory
//!   and back to predictions.
//! - [`text`]: the sentiment job, from labelled text files to a model
//!   directory and back to predictions.
//! - [`tabular`]: the table job, from a CSV or JSON Lines table to a model
//!   directory and back to predictions, with K-fold figures.
//! - [`reduce`]: the autoencoder over a table's rows (encoded as
//!   [`tabular`] encodes them) or images (decoded as [`vision`] decodes
//!   them), to codes, measured against PCA.
//! - [`metrics`]: what the classifiers report: top-k, accuracy, per-class
//!   precision, recall and F1, the confusion matrix; [`plot`]: scatter
//!   pictures and the pixel font; [`record`]: a network's parameters to
//!   and from bytes, for every model directory; [`split`]: the one seeded,
//!   per-class hold-out the jobs split their data with.

pub mod metrics;
pub mod plot;
pub mod record;
pub mod reduce;
pub mod split;
pub mod tabular;
pub mod text;
pub mod vision;
