//! Weight files and the SHA-256 their manifests vouch for: every model
//! directory (stream bundles, image and text models) writes the hash of
//! each weight file into its manifest and refuses a file that no longer
//! matches.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[derive(Debug, thiserror::Error)]
pub enum WeightFileError {
    #[error("{path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error(
        "{path}: checksum mismatch (manifest says {expected}, file has {found}): the model is corrupt or was modified"
    )]
    Mismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// The bytes of `path`, if their SHA-256 is `expected`.
pub fn read_verified(path: &Path, expected: &str) -> Result<Vec<u8>, WeightFileError> {
    let bytes = std::fs::read(path).map_err(|e| WeightFileError::Unreadable {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    verify(path, &bytes, expected)?;
    Ok(bytes)
}

/// Refuses `bytes` (of `path`) unless their SHA-256 is `expected`.
pub fn verify(path: &Path, bytes: &[u8], expected: &str) -> Result<(), WeightFileError> {
    let found = sha256_hex(bytes);
    if found != expected {
        return Err(WeightFileError::Mismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            found,
        });
    }
    Ok(())
}
