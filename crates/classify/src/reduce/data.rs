//! What `reduce` compresses: the numeric rows of a table (its columns
//! encoded as `tabular` encodes them, without the piecewise code: the value
//! standardised, categories one-hot, missing values imputed), or images
//! flattened to pixels in [0, 1]. A label column or the images' class
//! folders colour the scatter picture and are never an input.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::tabular::config::{FeatureSettings, TabularConfig};
use crate::tabular::features::{FeatureEncoder, FeatureError};
use crate::tabular::table::{Table, TableError};
use crate::vision::data::{DataError, ImageSet};
use crate::vision::training::decode_set;

#[derive(Debug, thiserror::Error)]
pub enum ReduceDataError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Feature(#[from] FeatureError),
    #[error(transparent)]
    Images(#[from] DataError),
}

/// How rows are read, stored in the model directory so that `transform`
/// reads new rows the same way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum RowSource {
    Table {
        features: FeatureEncoder,
        /// The column that labels rows (not an input).
        label: Option<String>,
    },
    Images {
        size_px: u32,
        /// 1 (grey) or 3 (RGB).
        channels: usize,
    },
}

/// Rows ready for the autoencoder and PCA.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Row-major `[rows, width]`.
    pub values: Vec<f32>,
    pub width: usize,
    /// What names each row in the output: its line, or its image.
    pub names: Vec<String>,
    /// Each row's label index into `label_names`, when labelled.
    pub labels: Option<Vec<usize>>,
    pub label_names: Vec<String>,
    pub skipped: usize,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl RowSource {
    /// Fits how a table's rows are encoded.
    pub fn fit_table(table: &Table, label: Option<&str>) -> Result<RowSource, ReduceDataError> {
        if let Some(label) = label {
            table.column(label)?;
        }
        let config = TabularConfig {
            features: FeatureSettings {
                piecewise_bins: 0,
                ..FeatureSettings::default()
            },
            ..TabularConfig::default()
        };
        Ok(RowSource::Table {
            features: FeatureEncoder::fit(table, label, &config)?,
            label: label.map(str::to_owned),
        })
    }

    /// Reads `path` as this source says. `label_names` fixes the label
    /// indices (a test set read in a training set's labels); labels not in
    /// it are added.
    pub fn read(
        &self,
        path: &Path,
        label_names: &[String],
        skip_bad_rows: bool,
    ) -> Result<Rows, ReduceDataError> {
        match self {
            RowSource::Table { features, label } => {
                let table = Table::read(path)?;
                let encoded = features.encode(&table, skip_bad_rows)?;
                let mut rows = Rows {
                    width: encoded.width,
                    names: encoded
                        .rows
                        .iter()
                        .map(|&r| table.rows[r].line.to_string())
                        .collect(),
                    skipped: encoded.skipped,
                    label_names: label_names.to_vec(),
                    ..Rows::default()
                };
                // A file without the label column is read unlabelled.
                if let Some(column) = label.as_ref().and_then(|l| table.column(l).ok()) {
                    let mut labels = Vec::with_capacity(encoded.len());
                    for &r in &encoded.rows {
                        let name = table.rows[r].cells[column].clone().unwrap_or_default();
                        labels.push(index_of(&mut rows.label_names, name));
                    }
                    rows.labels = Some(labels);
                }
                rows.values = encoded.inputs;
                Ok(rows)
            }
            RowSource::Images { size_px, channels } => {
                Ok(read_images(path, *size_px, *channels, label_names, skip_bad_rows)?.1)
            }
        }
    }

    /// Reads training images, their channels (grey, or RGB when any image
    /// has colour) decided by what the images hold.
    pub fn fit_images(
        path: &Path,
        size_px: u32,
        skip_bad_rows: bool,
    ) -> Result<(RowSource, Rows), ReduceDataError> {
        let (channels, rows) = read_images(path, size_px, 0, &[], skip_bad_rows)?;
        Ok((RowSource::Images { size_px, channels }, rows))
    }
}

/// Images flattened to rows, and their channels (`channels` 0 picks them
/// from the images).
fn read_images(
    path: &Path,
    size_px: u32,
    channels: usize,
    label_names: &[String],
    skip_bad_rows: bool,
) -> Result<(usize, Rows), ReduceDataError> {
    let set = ImageSet::labelled(path)?;
    let (decoded, channels) = decode_set(&set, size_px, channels, !skip_bad_rows)?;
    let mut label_names = label_names.to_vec();
    let labels = decoded
        .labels
        .iter()
        .map(|&l| index_of(&mut label_names, set.classes[l].clone()))
        .collect();
    let rows = Rows {
        width: channels * (size_px as usize).pow(2),
        values: decoded.pixels.concat(),
        names: decoded.names,
        labels: Some(labels),
        label_names,
        skipped: decoded.skipped,
    };
    Ok((channels, rows))
}

/// `name`'s index in `names`, added at the end when new.
fn index_of(names: &mut Vec<String>, name: String) -> usize {
    match names.iter().position(|n| *n == name) {
        Some(i) => i,
        None => {
            names.push(name);
            names.len() - 1
        }
    }
}
