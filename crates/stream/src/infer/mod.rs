//! Hot-path inference: hand-written kernels over `ndarray` buffers, fed with
//! weights exported from the trained burn models ([`crate::nn::export`]).

pub mod activation;
pub mod dense;
pub mod linalg;
pub mod model;
pub mod recurrent;

pub use model::{KernelModel, Scratch};
