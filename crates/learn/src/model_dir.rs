//! A model directory, the contract between training and serving: a
//! `manifest.json` that says what the model is, and weight files whose
//! SHA-256 the manifest vouches for. Stream bundles, image models and text
//! models are all one; each says which kind and format version it is.
//!
//! Weights are written before the manifest, so an interrupted save leaves
//! a directory that fails to load, never a mismatched one that loads. The
//! format version is read before the strict parse, so a model from another
//! version is refused as such, not as a field it does not know.
//!
//! Nothing in a manifest is trusted: each kind checks its own for
//! consistency ([`CheckedManifest`]: lengths that agree, values in range),
//! and the manifest carries the SHA-256 of its own content, so an edit that
//! is consistent but not what training wrote is refused too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::checksum::{WeightFileError, read_verified, sha256_hex, verify};

const MANIFEST: &str = "manifest.json";
/// The manifest's field that holds the SHA-256 of the rest of it.
const MANIFEST_CHECKSUM: &str = "manifest_sha256";

/// A manifest that can say what is inconsistent in itself.
pub trait CheckedManifest: Serialize + DeserializeOwned {
    /// The first inconsistency found, naming the field and its valid range.
    fn check(&self) -> Result<(), String>;
}

/// SHA-256 of a manifest's JSON content (without its checksum field).
fn content_digest(value: &serde_json::Value) -> String {
    sha256_hex(&serde_json::to_vec(value).expect("a JSON value serialises"))
}

#[derive(Debug, thiserror::Error)]
pub enum ModelDirError {
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: not a tidewatch {kind} manifest: {message}")]
    Manifest {
        path: PathBuf,
        kind: &'static str,
        message: String,
    },
    #[error(
        "{path}: {kind} format version {found}; this tidewatch reads version {expected}: retrain it with this tidewatch"
    )]
    UnknownVersion {
        path: PathBuf,
        kind: &'static str,
        found: u64,
        expected: u32,
    },
    #[error(transparent)]
    WeightFile(#[from] WeightFileError),
}

/// One kind of model directory at one path.
#[derive(Debug, Clone, Copy)]
pub struct ModelDir<'a> {
    dir: &'a Path,
    /// What the directory holds, as messages name it ("bundle", "image model").
    kind: &'static str,
    format_version: u32,
}

impl<'a> ModelDir<'a> {
    pub fn new(dir: &'a Path, kind: &'static str, format_version: u32) -> ModelDir<'a> {
        ModelDir {
            dir,
            kind,
            format_version,
        }
    }

    fn io_error(path: &Path, error: impl std::fmt::Display) -> ModelDirError {
        ModelDirError::Io {
            path: path.to_owned(),
            message: error.to_string(),
        }
    }

    /// The path of `file` in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A manifest error about `file` (the manifest itself when `None`).
    pub fn invalid(&self, file: Option<&str>, message: impl Into<String>) -> ModelDirError {
        ModelDirError::Manifest {
            path: self.dir.join(file.unwrap_or(MANIFEST)),
            kind: self.kind,
            message: message.into(),
        }
    }

    /// Writes the weight files (creating the directory) and returns their
    /// checksums by file name, for the manifest.
    pub fn write_weights<'f>(
        &self,
        files: impl IntoIterator<Item = (&'f str, &'f [u8])>,
    ) -> Result<BTreeMap<String, String>, ModelDirError> {
        std::fs::create_dir_all(self.dir).map_err(|e| Self::io_error(self.dir, e))?;
        let mut checksums = BTreeMap::new();
        for (name, bytes) in files {
            let path = self.dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| Self::io_error(&path, e))?;
            checksums.insert(name.to_owned(), sha256_hex(bytes));
        }
        Ok(checksums)
    }

    /// Writes the manifest, last.
    /// Writes the manifest with the checksum of its content. The content is
    /// taken as it reads back (numbers included), so that reading it again
    /// finds the same digest.
    pub fn write_manifest(&self, manifest: &impl CheckedManifest) -> Result<(), ModelDirError> {
        let path = self.dir.join(MANIFEST);
        let text = serde_json::to_string(manifest).map_err(|e| Self::io_error(&path, e))?;
        let mut value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Self::io_error(&path, e))?;
        let digest = content_digest(&value);
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert(MANIFEST_CHECKSUM.to_owned(), digest.into());
        }
        let text = serde_json::to_string_pretty(&value).map_err(|e| Self::io_error(&path, e))?;
        std::fs::write(&path, text + "\n").map_err(|e| Self::io_error(&path, e))
    }

    /// Reads the manifest: its `format_version` first, then the strict
    /// parse, its own consistency check, and last its checksum (so that a
    /// hand edit with an inconsistency is refused by what is wrong).
    pub fn read_manifest<M: CheckedManifest>(&self) -> Result<M, ModelDirError> {
        let path = self.dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| Self::io_error(&path, e))?;
        self.parse_manifest(&text)
    }

    /// Parses and checks the text of this directory's manifest, as
    /// [`ModelDir::read_manifest`] does (for a manifest built into the binary).
    pub fn parse_manifest<M: CheckedManifest>(&self, text: &str) -> Result<M, ModelDirError> {
        let path = self.dir.join(MANIFEST);
        let mut value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| self.invalid(None, e.to_string()))?;
        match value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(self.format_version) => {}
            Some(found) => {
                return Err(ModelDirError::UnknownVersion {
                    path,
                    kind: self.kind,
                    found,
                    expected: self.format_version,
                });
            }
            None => return Err(self.invalid(None, "no format_version")),
        }
        let checksum = value
            .as_object_mut()
            .and_then(|fields| fields.remove(MANIFEST_CHECKSUM));
        let manifest: M =
            serde_json::from_value(value.clone()).map_err(|e| self.invalid(None, e.to_string()))?;
        manifest.check().map_err(|e| self.invalid(None, e))?;
        match checksum {
            Some(serde_json::Value::String(checksum)) if checksum == content_digest(&value) => {
                Ok(manifest)
            }
            Some(_) => Err(self.invalid(
                None,
                format!(
                    "{MANIFEST_CHECKSUM} does not match its content: edited after training \
                     (change settings in the config and retrain instead)"
                ),
            )),
            None => Err(self.invalid(
                None,
                format!(
                    "no {MANIFEST_CHECKSUM} (written before tidewatch checked manifests; retrain)"
                ),
            )),
        }
    }

    /// Refuses a manifest whose `kind` field is not `expected` (models of
    /// several kinds share a format).
    pub fn check_kind(&self, found: &str, expected: &str) -> Result<(), ModelDirError> {
        if found == expected {
            return Ok(());
        }
        Err(self.invalid(None, format!("kind {found:?}, expected {expected:?}")))
    }

    /// A weight file's bytes, if the manifest's `checksums` vouch for them.
    pub fn read_weights(
        &self,
        checksums: &BTreeMap<String, String>,
        name: &str,
    ) -> Result<Vec<u8>, ModelDirError> {
        let expected = checksums
            .get(name)
            .ok_or_else(|| self.invalid(None, format!("no checksum for {name}")))?;
        Ok(read_verified(&self.dir.join(name), expected)?)
    }

    /// Refuses `bytes` of the weight file `name` unless the manifest's
    /// `checksums` vouch for them (for weights built into the binary).
    pub fn verify_weights(
        &self,
        checksums: &BTreeMap<String, String>,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), ModelDirError> {
        let expected = checksums
            .get(name)
            .ok_or_else(|| self.invalid(None, format!("no checksum for {name}")))?;
        Ok(verify(&self.dir.join(name), bytes, expected)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Manifest {
        format_version: u32,
        scale: f64,
        weights: BTreeMap<String, String>,
    }

    impl CheckedManifest for Manifest {
        fn check(&self) -> Result<(), String> {
            if self.scale > 0.0 {
                Ok(())
            } else {
                Err(format!("scale must be in (0, inf), got {}", self.scale))
            }
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let model_dir = ModelDir::new(dir.path(), "test model", 2);
        let weights = model_dir
            .write_weights([("w.bin", &b"weights"[..])])
            .unwrap();
        let manifest = Manifest {
            format_version: 2,
            scale: 0.1,
            weights,
        };
        model_dir.write_manifest(&manifest).unwrap();
        let read: Manifest = model_dir.read_manifest().unwrap();
        assert_eq!(read, manifest);
        assert_eq!(
            model_dir.read_weights(&read.weights, "w.bin").unwrap(),
            b"weights"
        );

        std::fs::write(dir.path().join("w.bin"), b"changed").unwrap();
        let error = model_dir.read_weights(&read.weights, "w.bin").unwrap_err();
        assert!(error.to_string().contains("checksum mismatch"), "{error}");
        let error = model_dir
            .read_weights(&read.weights, "other.bin")
            .unwrap_err();
        assert!(
            error.to_string().ends_with("no checksum for other.bin"),
            "{error}"
        );

        // An edit is refused: by what is wrong when it is inconsistent, by
        // the checksum when it is not.
        let manifest_path = dir.path().join("manifest.json");
        let written = std::fs::read_to_string(&manifest_path).unwrap();
        for (edit, refusal) in [
            ("\"scale\": -0.1", "scale must be in (0, inf), got -0.1"),
            (
                "\"scale\": 0.2",
                "manifest_sha256 does not match its content",
            ),
        ] {
            std::fs::write(&manifest_path, written.replace("\"scale\": 0.1", edit)).unwrap();
            let error = model_dir
                .read_manifest::<Manifest>()
                .unwrap_err()
                .to_string();
            assert!(error.contains(refusal), "{error}");
        }

        // A newer format with fields this build does not know is refused by
        // its version, not by the unknown field.
        std::fs::write(
            dir.path().join("manifest.json"),
            r#"{"format_version": 3, "weights": {}, "new_field": 1}"#,
        )
        .unwrap();
        let error = model_dir
            .read_manifest::<Manifest>()
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with(
                "test model format version 3; this tidewatch reads version 2: retrain it with this tidewatch"
            ),
            "{error}"
        );
    }
}
