//! tidewatch, the binary's library: the offline jobs and the wiring of the
//! member crates (`crates/*`) into one program.
//!
//! # Layout
//!
//! - [`models`]: the learning crate's bundles and online learners, handed
//!   to the runtime's daemon.
//! - [`simulate`]: synthetic series with labelled anomalies.
//! - [`corpus`]: a generated development corpus in NAB's layout.
//! - [`jobs`]: offline batch jobs: [`jobs::train`], [`jobs::score`],
//!   [`jobs::nab`] and [`jobs::skab`] benchmark scoring, [`jobs::demo`].
//!
//! The stages themselves live in the member crates, along the data flow:
//! `tidewatch-stream` (records, state, kernels, detection, the pipeline),
//! `tidewatch-learn` (burn models, training, bundles, online learners),
//! `tidewatch-runtime` (the Kafka daemon) and `tidewatch-classify` (the
//! image and text classifiers).

pub mod corpus;
pub mod jobs;
pub mod models;
pub mod simulate;
