//! The Skoltech Anomaly Benchmark, outlier-detection protocol: each file's
//! first 400 rows are its training data, the rest its test data; one
//! confusion matrix is pooled over the test rows of every file, giving F1,
//! the false-alarm rate and the missed-alarm rate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::score::{Models, ScoreError, score_file};
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::source::decode::excerpt;
use tidewatch_stream::source::file::{FileFormat, InputError, ReadOptions, csv_reader};

/// Rows of each file used for training.
pub const TRAIN_ROWS: usize = 400;

/// The settings `eval skab` uses unless given others (`examples/skab.toml`).
pub fn default_config() -> StreamConfig {
    toml::from_str(include_str!("../../examples/skab.toml"))
        .expect("the shipped SKAB config parses")
}

/// Pooled confusion matrix over test rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Confusion {
    pub true_positives: u64,
    pub false_positives: u64,
    pub true_negatives: u64,
    pub false_negatives: u64,
}

impl Confusion {
    pub fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.true_positives += 1,
            (true, false) => self.false_positives += 1,
            (false, false) => self.true_negatives += 1,
            (false, true) => self.false_negatives += 1,
        }
    }

    pub fn merge(&mut self, other: &Confusion) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.true_negatives += other.true_negatives;
        self.false_negatives += other.false_negatives;
    }

    fn ratio(numerator: u64, denominator: u64) -> f64 {
        if denominator == 0 {
            0.0
        } else {
            numerator as f64 / denominator as f64
        }
    }

    pub fn precision(&self) -> f64 {
        Self::ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    pub fn recall(&self) -> f64 {
        Self::ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    /// False alarms among normal rows.
    pub fn false_alarm_rate(&self) -> f64 {
        Self::ratio(
            self.false_positives,
            self.false_positives + self.true_negatives,
        )
    }

    /// Missed anomalies among anomalous rows.
    pub fn missed_alarm_rate(&self) -> f64 {
        Self::ratio(
            self.false_negatives,
            self.false_negatives + self.true_positives,
        )
    }
}

/// One file's result.
#[derive(Debug, Clone, PartialEq)]
pub struct FileResult {
    /// Path relative to the data folder.
    pub name: String,
    pub confusion: Confusion,
}

#[derive(Debug, thiserror::Error)]
pub enum SkabError {
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// The labelled files under `data_dir` (those with an `anomaly` column),
/// sorted; the label-free file SKAB ships for training is left out.
pub fn labelled_files(data_dir: &Path) -> Result<Vec<PathBuf>, SkabError> {
    let files = super::csv_files(data_dir).map_err(|e| SkabError::File {
        path: data_dir.display().to_string(),
        message: e.to_string(),
    })?;
    let mut labelled = Vec::new();
    for file in files {
        if read_labels(&file)?.is_some() {
            labelled.push(file);
        }
    }
    if labelled.is_empty() {
        return Err(SkabError::File {
            path: data_dir.display().to_string(),
            message: "no CSV file with an `anomaly` column".into(),
        });
    }
    Ok(labelled)
}

/// The `anomaly` column, or `None` when the file has none.
fn read_labels(path: &Path) -> Result<Option<Vec<bool>>, SkabError> {
    let file_error = |message: String| SkabError::File {
        path: path.display().to_string(),
        message,
    };
    let FileFormat::Csv { delimiter } = FileFormat::detect(path)? else {
        return Ok(None);
    };
    let mut reader = csv_reader(delimiter)
        .from_path(path)
        .map_err(|e| file_error(e.to_string()))?;
    let Some(column) = reader
        .headers()
        .map_err(|e| file_error(e.to_string()))?
        .iter()
        .position(|h| h.trim() == "anomaly")
    else {
        return Ok(None);
    };
    let mut labels = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| file_error(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = record.get(column).unwrap_or_default();
        let value: f64 = cell.parse().map_err(|_| {
            file_error(format!(
                "line {line}: bad anomaly label {:?}",
                excerpt(cell)
            ))
        })?;
        labels.push(value > 0.5);
    }
    Ok(Some(labels))
}

/// Scores one file online with `models` (built for `config`; trained on
/// its first [`TRAIN_ROWS`] rows, whatever `config` says of the warm-up)
/// and counts its test rows.
pub fn evaluate_file(
    path: &Path,
    data_dir: &Path,
    config: &StreamConfig,
    models: &Models,
) -> Result<FileResult, SkabError> {
    let labels = read_labels(path)?.unwrap_or_default();
    if labels.len() <= TRAIN_ROWS {
        return Err(SkabError::File {
            path: path.display().to_string(),
            message: format!(
                "{} rows: SKAB's protocol trains on the first {TRAIN_ROWS} and tests on the rest",
                labels.len()
            ),
        });
    }
    let mut config = config.clone();
    config.online.warmup_events = Some(TRAIN_ROWS as u64);
    let scored = score_file(path, Arc::new(config), models, ReadOptions::default())?;
    let mut confusion = Confusion::default();
    for (row, &actual) in scored.rows.iter().zip(&labels).skip(TRAIN_ROWS) {
        confusion.add(row.verdict.is_anomaly, actual);
    }
    let name = path
        .strip_prefix(data_dir)
        .unwrap_or(path)
        .display()
        .to_string();
    Ok(FileResult { name, confusion })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_is_valid() {
        default_config().validate().unwrap();
    }

    #[test]
    fn pooled_rates() {
        let mut confusion = Confusion::default();
        for (p, a) in [
            (true, true),
            (true, true),
            (true, false),
            (false, true),
            (false, false),
            (false, false),
        ] {
            confusion.add(p, a);
        }
        assert!((confusion.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((confusion.recall() - 2.0 / 3.0).abs() < 1e-12);
        assert!((confusion.f1() - 2.0 / 3.0).abs() < 1e-12);
        assert!((confusion.false_alarm_rate() - 1.0 / 3.0).abs() < 1e-12);
        assert!((confusion.missed_alarm_rate() - 1.0 / 3.0).abs() < 1e-12);
    }
}
