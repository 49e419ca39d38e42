//! Offline batch jobs over files: replay scoring and benchmark evaluation.

pub mod nab;
pub mod score;
