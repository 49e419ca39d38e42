//! Columns into network inputs, fitted on the training rows and stored in
//! the model directory, so that prediction encodes exactly as training did.
//!
//! - A numeric column: its value (log1p first when the column is skewed or
//!   the settings say so) standardised by the training mean and standard
//!   deviation; then, with `piecewise_bins`, a piecewise-linear code over
//!   the training quantiles; then, when training saw it missing, an
//!   indicator of missing. A missing value is imputed with the training
//!   median.
//! - A categorical column: one-hot over the training categories (the most
//!   frequent `max_categories`). A category never seen, like a missing one,
//!   is all zeros, and is counted so that the command can say so.
//! - The target: standardised (regression) or a class index
//!   (classification).
//!
//! Hardening: a non-numeric value in a numeric column (or one log1p cannot
//! take) is bad input: an error naming file, line and column, or a skipped
//! and counted row with `--skip-bad-rows`. A column the model needs and the
//! file lacks is an error naming it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::tabular::config::{ColumnKind, FeatureSettings, LogPolicy, TabularConfig};
use crate::tabular::table::{Table, TableError};

#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("{path}:{line}: column {column:?}: {message} (--skip-bad-rows skips such rows)")]
    BadCell {
        path: String,
        line: u64,
        column: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Unusable { path: String, message: String },
}

/// What a network learns: a number or one of a list of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    Regression,
    Classification,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericColumn {
    pub name: String,
    /// log1p before standardising.
    pub log: bool,
    /// Mean and standard deviation of the (transformed) training values.
    pub mean: f64,
    pub std: f64,
    /// The (transformed) training median, imputed for a missing value.
    pub fill: f64,
    /// Training saw the column missing: one more input says when it is.
    pub missing_indicator: bool,
    /// Ascending quantile edges of the standardised training values for
    /// the piecewise-linear code; empty for none.
    pub bin_edges: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoricalColumn {
    pub name: String,
    /// Sorted; one input each.
    pub categories: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnEncoder {
    Numeric(NumericColumn),
    Categorical(CategoricalColumn),
}

impl ColumnEncoder {
    pub fn name(&self) -> &str {
        match self {
            ColumnEncoder::Numeric(c) => &c.name,
            ColumnEncoder::Categorical(c) => &c.name,
        }
    }

    /// How many inputs the column becomes.
    pub fn width(&self) -> usize {
        match self {
            ColumnEncoder::Numeric(c) => {
                1 + c.bin_edges.len().saturating_sub(1) + usize::from(c.missing_indicator)
            }
            ColumnEncoder::Categorical(c) => c.categories.len(),
        }
    }
}

impl NumericColumn {
    /// The standardised value of a raw number, or why it cannot be one.
    fn standardise(&self, value: f64) -> Result<f64, String> {
        let value = if self.log {
            if value <= -1.0 {
                return Err(format!("{value} is at most -1, where log1p is undefined"));
            }
            value.ln_1p()
        } else {
            value
        };
        Ok((value - self.mean) / self.std)
    }

    fn encode(&self, cell: Option<&str>, out: &mut Vec<f32>) -> Result<(), String> {
        let (standard, missing) = match cell {
            None => ((self.fill - self.mean) / self.std, true),
            Some(text) => (self.standardise(parse_number(text)?)?, false),
        };
        out.push(standard as f32);
        for pair in self.bin_edges.windows(2) {
            let share = ((standard - pair[0]) / (pair[1] - pair[0])).clamp(0.0, 1.0);
            out.push(share as f32);
        }
        if self.missing_indicator {
            out.push(if missing { 1.0 } else { 0.0 });
        }
        Ok(())
    }
}

/// A finite number from a cell, or why it is not one.
pub fn parse_number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("{text:?} is not a finite number")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// Every feature column's encoder, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureEncoder {
    pub columns: Vec<ColumnEncoder>,
}

/// Rows encoded for a network.
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    /// Row-major `[rows, width]`.
    pub inputs: Vec<f32>,
    pub width: usize,
    /// The table index of each encoded row.
    pub rows: Vec<usize>,
    /// Bad rows skipped (with `skip_bad_rows`).
    pub skipped: usize,
    /// Per categorical column, how many cells held a category the model
    /// has not seen, and the first few of them.
    pub unseen: BTreeMap<String, (usize, Vec<String>)>,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.width..(i + 1) * self.width]
    }

    /// One line per column with unseen categories, for the command to print.
    pub fn unseen_notes(&self) -> Vec<String> {
        self.unseen
            .iter()
            .map(|(column, (count, examples))| {
                format!(
                    "{count} value(s) of column {column:?} were categories training never saw ({}); they were encoded as no category",
                    examples.join(", ")
                )
            })
            .collect()
    }
}

/// Fraction of a column's present values that must read as numbers for it
/// to be typed numeric; the rest are then bad input, not categories.
const NUMERIC_SHARE: f64 = 0.9;

impl FeatureEncoder {
    /// Types and fits every column of `table` but the `excluded` one (the
    /// target, a label) and the ignored ones, on its rows.
    pub fn fit(
        table: &Table,
        excluded: Option<&str>,
        config: &TabularConfig,
    ) -> Result<FeatureEncoder, FeatureError> {
        let mut columns = Vec::new();
        for (index, name) in table.columns.iter().enumerate() {
            if Some(name.as_str()) == excluded {
                continue;
            }
            let settings = config.columns.get(name).cloned().unwrap_or_default();
            let cells: Vec<&str> = table
                .rows
                .iter()
                .filter_map(|r| r.cells[index].as_deref())
                .collect();
            let numbers: Vec<f64> = cells.iter().filter_map(|c| parse_number(c).ok()).collect();
            let kind = match settings.kind {
                Some(kind) => kind,
                None if cells.is_empty() => ColumnKind::Ignore,
                None if numbers.len() as f64 >= NUMERIC_SHARE * cells.len() as f64 => {
                    ColumnKind::Numeric
                }
                None => ColumnKind::Categorical,
            };
            match kind {
                ColumnKind::Ignore => {}
                ColumnKind::Numeric => {
                    if numbers.is_empty() {
                        return Err(FeatureError::Unusable {
                            path: table.path.display().to_string(),
                            message: format!("column {name:?} is numeric but holds no number"),
                        });
                    }
                    let missing = cells.len() < table.rows.len();
                    columns.push(ColumnEncoder::Numeric(fit_numeric(
                        name,
                        &numbers,
                        missing,
                        settings.log,
                        &config.features,
                    )));
                }
                ColumnKind::Categorical => {
                    columns.push(ColumnEncoder::Categorical(fit_categorical(
                        name,
                        &cells,
                        config.features.max_categories,
                    )));
                }
            }
        }
        if columns.is_empty() {
            return Err(FeatureError::Unusable {
                path: table.path.display().to_string(),
                message: match excluded {
                    Some(excluded) => format!("no feature column besides {excluded:?}"),
                    None => "no feature column".to_owned(),
                },
            });
        }
        Ok(FeatureEncoder { columns })
    }

    pub fn width(&self) -> usize {
        self.columns.iter().map(ColumnEncoder::width).sum()
    }

    /// Encodes every row of `table`. A bad cell stops with its line and
    /// column, or skips the row when `skip_bad_rows`.
    pub fn encode(&self, table: &Table, skip_bad_rows: bool) -> Result<Encoded, FeatureError> {
        let indices: Vec<usize> = self
            .columns
            .iter()
            .map(|c| table.column(c.name()))
            .collect::<Result<_, _>>()?;
        let lookups: Vec<Option<HashMap<&str, usize>>> = self
            .columns
            .iter()
            .map(|c| match c {
                ColumnEncoder::Categorical(c) => Some(
                    c.categories
                        .iter()
                        .enumerate()
                        .map(|(i, name)| (name.as_str(), i))
                        .collect(),
                ),
                ColumnEncoder::Numeric(_) => None,
            })
            .collect();
        let width = self.width();
        let mut encoded = Encoded {
            width,
            ..Encoded::default()
        };
        let mut row_inputs = Vec::with_capacity(width);
        'rows: for (r, row) in table.rows.iter().enumerate() {
            row_inputs.clear();
            let mut unseen = Vec::new();
            for ((column, &index), lookup) in self.columns.iter().zip(&indices).zip(&lookups) {
                let cell = row.cells[index].as_deref();
                match column {
                    ColumnEncoder::Numeric(numeric) => {
                        if let Err(message) = numeric.encode(cell, &mut row_inputs) {
                            if skip_bad_rows {
                                encoded.skipped += 1;
                                continue 'rows;
                            }
                            return Err(FeatureError::BadCell {
                                path: table.path.display().to_string(),
                                line: row.line,
                                column: numeric.name.clone(),
                                message,
                            });
                        }
                    }
                    ColumnEncoder::Categorical(categorical) => {
                        let start = row_inputs.len();
                        row_inputs.resize(start + categorical.categories.len(), 0.0);
                        let Some(value) = cell.map(str::trim) else {
                            continue;
                        };
                        match lookup.as_ref().and_then(|l| l.get(value)) {
                            Some(&i) => row_inputs[start + i] = 1.0,
                            None => unseen.push((categorical.name.clone(), value.to_owned())),
                        }
                    }
                }
            }
            for (column, value) in unseen {
                let (count, examples) = encoded.unseen.entry(column).or_default();
                *count += 1;
                if examples.len() < 3 && !examples.contains(&value) {
                    examples.push(value);
                }
            }
            encoded.inputs.extend_from_slice(&row_inputs);
            encoded.rows.push(r);
        }
        Ok(encoded)
    }
}

fn fit_numeric(
    name: &str,
    values: &[f64],
    missing: bool,
    log: Option<bool>,
    settings: &FeatureSettings,
) -> NumericColumn {
    let log = log.unwrap_or_else(|| {
        settings.log == LogPolicy::Auto
            && values.iter().all(|&v| v >= 0.0)
            && skewness(values) > 2.0
    });
    // log1p is defined above -1: a column set to log with values at or
    // below it is refused row by row when encoded, and fitted on the rest.
    let mut transformed: Vec<f64> = values
        .iter()
        .filter(|&&v| !log || v > -1.0)
        .map(|&v| if log { v.ln_1p() } else { v })
        .collect();
    let n = transformed.len().max(1) as f64;
    let mean = transformed.iter().sum::<f64>() / n;
    let variance = transformed.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let std = if variance > 0.0 { variance.sqrt() } else { 1.0 };
    transformed.sort_by(f64::total_cmp);
    let quantile = |q: f64| transformed[((transformed.len() - 1) as f64 * q).round() as usize];
    let fill = if transformed.is_empty() {
        mean
    } else {
        quantile(0.5)
    };
    let mut bin_edges: Vec<f64> = Vec::new();
    if settings.piecewise_bins > 0 && !transformed.is_empty() {
        for i in 0..=settings.piecewise_bins {
            let edge = (quantile(i as f64 / settings.piecewise_bins as f64) - mean) / std;
            if bin_edges.last().is_none_or(|&last| edge > last + 1e-9) {
                bin_edges.push(edge);
            }
        }
        if bin_edges.len() < 2 {
            bin_edges.clear();
        }
    }
    NumericColumn {
        name: name.to_owned(),
        log,
        mean,
        std,
        fill,
        missing_indicator: missing,
        bin_edges,
    }
}

fn skewness(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let m2 = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let m3 = values.iter().map(|v| (v - mean).powi(3)).sum::<f64>() / n;
    if m2 > 0.0 { m3 / m2.powf(1.5) } else { 0.0 }
}

fn fit_categorical(name: &str, cells: &[&str], max_categories: usize) -> CategoricalColumn {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for cell in cells {
        *counts.entry(cell.trim()).or_default() += 1;
    }
    let mut by_count: Vec<(&str, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut categories: Vec<String> = by_count
        .into_iter()
        .take(max_categories)
        .map(|(c, _)| c.to_owned())
        .collect();
    categories.sort();
    CategoricalColumn {
        name: name.to_owned(),
        categories,
    }
}

/// The target column: standardised numbers or class indices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum TargetEncoder {
    Regression {
        column: String,
        mean: f64,
        std: f64,
        /// The training values' range: predictions stay inside it (a
        /// capped target, say, is never predicted above its cap).
        min: f64,
        max: f64,
    },
    Classification {
        column: String,
        classes: Vec<String>,
    },
}

/// The encoded target of each encoded row.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Standardised values.
    Values(Vec<f32>),
    Classes(Vec<usize>),
}

/// A target column with at most this many distinct integer values is
/// ambiguous: class numbers or counts.
const MAX_INTEGER_CLASSES: usize = 20;

impl TargetEncoder {
    /// Fits the target of `table`'s rows; the task is inferred from the
    /// values when not given, and refused as ambiguous when a column of a
    /// few distinct integers could be either.
    pub fn fit(
        table: &Table,
        column: &str,
        task: Option<Task>,
    ) -> Result<TargetEncoder, FeatureError> {
        let index = table.column(column)?;
        let unusable = |message: String| FeatureError::Unusable {
            path: table.path.display().to_string(),
            message,
        };
        let cells: Vec<&str> = table
            .rows
            .iter()
            .filter_map(|r| r.cells[index].as_deref().map(str::trim))
            .collect();
        let numbers: Vec<f64> = cells.iter().filter_map(|c| parse_number(c).ok()).collect();
        let mut distinct: Vec<&str> = cells.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let task = match task {
            Some(task) => task,
            None if numbers.len() < cells.len() => Task::Classification,
            None if numbers.iter().any(|v| v.fract() != 0.0)
                || distinct.len() > MAX_INTEGER_CLASSES =>
            {
                Task::Regression
            }
            None => {
                return Err(unusable(format!(
                    "target {column:?} holds {} distinct whole numbers: classes or quantities? Pass --task classification or --task regression",
                    distinct.len()
                )));
            }
        };
        match task {
            Task::Regression => {
                if numbers.is_empty() {
                    return Err(unusable(format!("target {column:?} holds no number")));
                }
                let n = numbers.len() as f64;
                let mean = numbers.iter().sum::<f64>() / n;
                let variance = numbers.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                Ok(TargetEncoder::Regression {
                    column: column.to_owned(),
                    mean,
                    std: if variance > 0.0 { variance.sqrt() } else { 1.0 },
                    min: numbers.iter().copied().fold(f64::INFINITY, f64::min),
                    max: numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                })
            }
            Task::Classification => {
                if distinct.len() < 2 {
                    return Err(unusable(format!(
                        "target {column:?} holds {} class(es); a classifier needs at least two",
                        distinct.len()
                    )));
                }
                Ok(TargetEncoder::Classification {
                    column: column.to_owned(),
                    classes: distinct.into_iter().map(str::to_owned).collect(),
                })
            }
        }
    }

    pub fn column(&self) -> &str {
        match self {
            TargetEncoder::Regression { column, .. }
            | TargetEncoder::Classification { column, .. } => column,
        }
    }

    pub fn task(&self) -> Task {
        match self {
            TargetEncoder::Regression { .. } => Task::Regression,
            TargetEncoder::Classification { .. } => Task::Classification,
        }
    }

    /// Network outputs: one value, or one logit per class.
    pub fn outputs(&self) -> usize {
        match self {
            TargetEncoder::Regression { .. } => 1,
            TargetEncoder::Classification { classes, .. } => classes.len(),
        }
    }

    /// A network's regression output in the target's units, within the
    /// training range.
    pub fn value(&self, output: f32) -> f64 {
        match self {
            TargetEncoder::Regression { min, max, .. } => {
                self.unstandardise(output).clamp(*min, *max)
            }
            TargetEncoder::Classification { .. } => f64::from(output),
        }
    }

    /// A standardised value in the target's units.
    pub fn unstandardise(&self, standardised: f32) -> f64 {
        match self {
            TargetEncoder::Regression { mean, std, .. } => f64::from(standardised) * std + mean,
            TargetEncoder::Classification { .. } => f64::from(standardised),
        }
    }

    /// The targets of the rows `encoded` kept. A missing or unreadable
    /// target, or a class the model does not know, stops with its line, or
    /// drops the row (from `encoded` too) when `skip_bad_rows`.
    pub fn encode(
        &self,
        table: &Table,
        encoded: &mut Encoded,
        skip_bad_rows: bool,
    ) -> Result<Targets, FeatureError> {
        let index = table.column(self.column())?;
        let mut keep = Vec::with_capacity(encoded.len());
        let (mut values, mut classes) = (Vec::new(), Vec::new());
        for (position, &r) in encoded.rows.iter().enumerate() {
            let row = &table.rows[r];
            let cell = row.cells[index].as_deref().map(str::trim);
            let problem = match (self, cell) {
                (_, None) => Some("no target value".to_owned()),
                (TargetEncoder::Regression { mean, std, .. }, Some(text)) => {
                    match parse_number(text) {
                        Ok(v) => {
                            values.push(((v - mean) / std) as f32);
                            None
                        }
                        Err(message) => Some(message),
                    }
                }
                (TargetEncoder::Classification { classes: known, .. }, Some(text)) => {
                    match known.binary_search_by(|c| c.as_str().cmp(text)) {
                        Ok(c) => {
                            classes.push(c);
                            None
                        }
                        Err(_) => Some(format!(
                            "class {text:?} is not one of the model's ({})",
                            known.join(", ")
                        )),
                    }
                }
            };
            match problem {
                None => keep.push(position),
                Some(_) if skip_bad_rows => encoded.skipped += 1,
                Some(message) => {
                    return Err(FeatureError::BadCell {
                        path: table.path.display().to_string(),
                        line: row.line,
                        column: self.column().to_owned(),
                        message,
                    });
                }
            }
        }
        if keep.len() < encoded.len() {
            let width = encoded.width;
            let mut inputs = Vec::with_capacity(keep.len() * width);
            for &position in &keep {
                inputs.extend_from_slice(encoded.row(position));
            }
            encoded.inputs = inputs;
            encoded.rows = keep.iter().map(|&p| encoded.rows[p]).collect();
        }
        Ok(match self {
            TargetEncoder::Regression { .. } => Targets::Values(values),
            TargetEncoder::Classification { .. } => Targets::Classes(classes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::table::Row;

    fn table(columns: &[&str], rows: &[&[&str]]) -> Table {
        Table {
            path: "t.csv".into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, cells)| Row {
                    line: i as u64 + 2,
                    cells: cells
                        .iter()
                        .map(|c| (!c.is_empty()).then(|| c.to_string()))
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn columns_are_typed_imputed_and_one_hot() {
        let t = table(
            &["x", "colour", "y"],
            &[
                &["1", "red", "0.5"],
                &["", "blue", "1.5"],
                &["3", "red", "2.5"],
            ],
        );
        let config = TabularConfig::default();
        let encoder = FeatureEncoder::fit(&t, Some("y"), &config).unwrap();
        let ColumnEncoder::Numeric(x) = &encoder.columns[0] else {
            panic!("x is numeric")
        };
        assert!(x.missing_indicator && !x.log);
        assert_eq!(x.fill, 3.0, "the median of 1 and 3 rounds up");
        let encoded = encoder.encode(&t, false).unwrap();
        assert_eq!(encoded.width, encoder.width());
        let last = encoded.width - 1;
        // One-hot of [blue, red], after the numeric inputs.
        assert_eq!(&encoded.row(0)[last - 1..], &[0.0, 1.0]);
        assert_eq!(&encoded.row(1)[last - 1..], &[1.0, 0.0]);
        let indicator = encoder.columns[0].width() - 1;
        assert_eq!(encoded.row(1)[indicator], 1.0);
        assert_eq!(encoded.row(0)[indicator], 0.0);
    }

    #[test]
    fn a_word_in_a_numeric_column_is_bad_input_or_skipped() {
        let rows: Vec<Vec<String>> = (0..20)
            .map(|i| vec![i.to_string(), (i * 2).to_string()])
            .collect();
        let mut refs: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        refs[4][0] = "lots";
        let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        let t = table(&["x", "y"], &slices);
        let encoder = FeatureEncoder::fit(&t, Some("y"), &TabularConfig::default()).unwrap();
        let error = encoder.encode(&t, false).unwrap_err().to_string();
        assert!(
            error.starts_with("t.csv:6: column \"x\": \"lots\" is not a number"),
            "{error}"
        );
        let encoded = encoder.encode(&t, true).unwrap();
        assert_eq!((encoded.len(), encoded.skipped), (19, 1));
    }

    #[test]
    fn the_task_is_inferred_or_asked_for() {
        let words = table(&["x", "y"], &[&["1", "a"], &["2", "b"]]);
        assert_eq!(
            TargetEncoder::fit(&words, "y", None).unwrap().task(),
            Task::Classification
        );
        let fractions = table(&["x", "y"], &[&["1", "0.5"], &["2", "3"]]);
        assert_eq!(
            TargetEncoder::fit(&fractions, "y", None).unwrap().task(),
            Task::Regression
        );
        let few_integers = table(&["x", "y"], &[&["1", "0"], &["2", "1"]]);
        let error = TargetEncoder::fit(&few_integers, "y", None)
            .unwrap_err()
            .to_string();
        assert!(error.contains("Pass --task"), "{error}");
    }

    #[test]
    fn skewed_counts_are_logged_and_coded_by_quantile() {
        let values: Vec<String> = (0..200).map(|i| (1.08f64.powi(i)).to_string()).collect();
        let rows: Vec<[&str; 2]> = values.iter().map(|v| [v.as_str(), "1.5"]).collect();
        let slices: Vec<&[&str]> = rows.iter().map(|r| r.as_slice()).collect();
        let t = table(&["count", "y"], &slices);
        let mut config = TabularConfig::default();
        config.features.piecewise_bins = 16;
        let encoder = FeatureEncoder::fit(&t, Some("y"), &config).unwrap();
        let ColumnEncoder::Numeric(count) = &encoder.columns[0] else {
            panic!("numeric")
        };
        assert!(count.log);
        assert_eq!(count.bin_edges.len(), 17);
        let encoded = encoder.encode(&t, false).unwrap();
        // The smallest value is at the bottom of every bin, the largest at
        // the top of every bin.
        assert!(encoded.row(0)[1..].iter().all(|&v| v == 0.0));
        assert!(encoded.row(199)[1..].iter().all(|&v| v == 1.0));
    }
}
