//! What can go wrong with a text model, whichever its kind.

use std::path::PathBuf;

use tidewatch_learn::fit::Diverged;
use tidewatch_learn::model_dir::ModelDirError;

use crate::text::data::TextDataError;
use crate::text::encoder::EncoderError;

#[derive(Debug, thiserror::Error)]
pub enum TextModelError {
    #[error(transparent)]
    Data(#[from] TextDataError),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(transparent)]
    Dir(#[from] ModelDirError),
    #[error(transparent)]
    Encoder(#[from] EncoderError),
    #[error("{0}")]
    Model(String),
    #[error(transparent)]
    Diverged(#[from] Diverged),
}
