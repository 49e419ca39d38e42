//! A burn module's parameters to and from bytes (burn's burnpack record),
//! for the model directories of both classifiers.

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;

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
