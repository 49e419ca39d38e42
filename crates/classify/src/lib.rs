//! tidewatch's offline classifier toolbox, apart from the streaming path:
//! images (a CNN over folders of images) and text (TF-IDF baseline,
//! recurrent network, pretrained sentence encoder). Both train with the
//! learning crate's fit loop.
//!
//! # Layout
//!
//! - [`vision`]: the image job, from image folders to a model directory
//!   and back to predictions.
//! - [`text`]: the sentiment job, from labelled text files to a model
//!   directory and back to predictions.
//! - [`metrics`]: what both report: top-k, accuracy, per-class precision,
//!   recall and F1, the confusion matrix; [`record`]: a network's
//!   parameters to and from bytes, for both model directories; [`split`]:
//!   the one seeded, per-class hold-out every job splits its data with.

pub mod metrics;
pub mod plot;
pub mod record;
pub mod reduce;
pub mod split;
pub mod tabular;
pub mod text;
pub mod vision;
