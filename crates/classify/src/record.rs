//! A burn module's parameters to and from bytes (burn's burnpack record),
//! and as a checksummed weight file of a model directory: what every job's
//! model directory (image, text, tabular, reduce) stores its networks with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use tidewatch_learn::model_dir::{ModelDir, ModelDirError};

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Dir(#[from] ModelDirError),
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
}

/// Writes `module` as the weight file `file` of `model_dir` (creating the
/// directory); the checksums by file name, for the manifest.
pub fn write_module(
    model_dir: &ModelDir,
    file: &str,
    module: &impl Module,
) -> Result<BTreeMap<String, String>, ArtifactError> {
    let bytes = record_bytes(module).map_err(|message| ArtifactError::Weights {
        path: model_dir.file(file),
        message,
    })?;
    Ok(model_dir.write_weights([(file, bytes.as_slice())])?)
}

/// `untrained` with the parameters of the weight file `file`, if the
/// manifest's `checksums` vouch for it.
pub fn read_module<M: Module>(
    model_dir: &ModelDir,
    checksums: &BTreeMap<String, String>,
    file: &str,
    untrained: M,
) -> Result<M, ArtifactError> {
    let bytes = model_dir.read_weights(checksums, file)?;
    load_record(untrained, bytes).map_err(|message| ArtifactError::Weights {
        path: model_dir.file(file),
        message,
    })
}

/// A burn module's parameters as bytes (burn's burnpack record).
pub fn record_bytes(module: &impl Module) -> Result<Vec<u8>, String> {
    Ok(module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| e.to_string())?
        .to_vec())
}

/// `module` with the parameters of a record's bytes.
pub fn load_record<M: Module>(module: M, bytes: Vec<u8>) -> Result<M, String> {
    let record =
        ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| e.to_string())?;
    module.try_load_record(record).map_err(|e| e.to_string())
}
