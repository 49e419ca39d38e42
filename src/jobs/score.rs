//! Replays a file through the streaming path and collects a verdict per row.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::models::online_models;
use tidewatch_learn::bundle::BundleError;
use tidewatch_runtime::models::OnlineModels;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::learner::LearnError;
use tidewatch_stream::model::ScoringModel;
use tidewatch_stream::pipeline::{LearnFailure, ModelSource, Pipeline, Status, Verdict};
use tidewatch_stream::source::file::{
    FileSource, InputError, ReadOptions, SkippedRows, count_rows, csv_field,
};

/// Where the replayed keys get their models.
#[derive(Debug, Clone)]
pub enum Models {
    Bundle(Arc<ScoringModel>),
    /// Each key learns online (from the prior until then, if there is
    /// one); the warm-up derives from the file's length unless the config
    /// fixes it.
    Online(OnlineModels),
}

impl Models {
    /// Online learning as `config` sets it up, its prior read and checked
    /// once for every file scored with it.
    pub fn online(config: &StreamConfig) -> Result<Models, BundleError> {
        Ok(Models::Online(online_models(config)?))
    }
}

/// One input row's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredRow {
    /// 1-based line in the input file.
    pub line: u64,
    pub key: String,
    pub timestamp_ms: i64,
    pub verdict: Verdict,
}

#[derive(Debug)]
pub struct ScoredFile {
    pub rows: Vec<ScoredRow>,
    pub skipped: SkippedRows,
    /// Warm-up length used in online mode.
    pub warmup_events: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("learning online: {0}")]
    Learn(#[from] LearnError),
    #[error("online.prior: {0}")]
    Prior(#[from] BundleError),
}

/// Scores every row of `path`, in order, with no look-ahead: each verdict
/// depends only on the rows before it (and, in online mode, on the file's
/// length, which fixes the warm-up the way NAB's probationary period does).
pub fn score_file(
    path: &Path,
    config: Arc<StreamConfig>,
    models: &Models,
    read: ReadOptions,
) -> Result<ScoredFile, ScoreError> {
    let (source, warmup_events) = match models {
        Models::Bundle(model) => (ModelSource::Bundle(Arc::clone(model)), None),
        Models::Online(online) => {
            let rows = match config.online.warmup_events {
                Some(_) => None,
                None => Some(count_rows(path)?),
            };
            let warmup_events = config.online.warmup_for(rows);
            let source = ModelSource::Online {
                warmup_events,
                learners: Arc::clone(&online.learners),
                prior: online.prior.clone(),
            };
            (source, Some(warmup_events))
        }
    };
    let mut pipeline = Pipeline::new(Arc::clone(&config), source);
    let mut input = FileSource::open(path, config.schema.clone(), read)?;
    let mut rows = Vec::new();
    for row in input.by_ref() {
        let row = row?;
        let verdict = pipeline.process(&row.record);
        for LearnFailure { key, refit, error } in pipeline.take_learn_failures() {
            if !refit {
                // A replayed file has nothing to learn from but itself: a
                // key that cannot learn from its warm-up never will.
                return Err(ScoreError::Learn(error));
            }
            tracing::warn!(key, line = row.line, %error, "a refit failed; the key keeps its previous model");
        }
        rows.push(ScoredRow {
            line: row.line,
            key: row.record.key,
            timestamp_ms: row.record.timestamp_ms,
            verdict,
        });
    }
    Ok(ScoredFile {
        rows,
        skipped: input.skipped().clone(),
        warmup_events,
    })
}

/// Writes one CSV row per scored row: where it came from, the score and
/// judgement, and each detector's error.
pub fn write_scores_csv(out: &mut dyn Write, scored: &ScoredFile) -> std::io::Result<()> {
    writeln!(
        out,
        "line,key,timestamp,status,score,threshold,is_anomaly,flag,forecast_error,reconstruction_error,top_features"
    )?;
    for row in &scored.rows {
        let v = &row.verdict;
        let status = match v.status {
            Status::Learning => "learning",
            Status::Warming => "warming",
            Status::Scored => "scored",
        };
        let [forecast, reconstruction] = v
            .errors
            .map(|e| e.map(|x| format!("{x:.6}")))
            .unwrap_or_else(|| [String::new(), String::new()]);
        let threshold = v.threshold.map(|t| format!("{t:.6}")).unwrap_or_default();
        let top: Vec<String> = v
            .top_features
            .iter()
            .map(|c| format!("{}={:.2}", c.feature, c.share))
            .collect();
        writeln!(
            out,
            "{},{},{},{status},{:.6},{threshold},{},{},{forecast},{reconstruction},{}",
            row.line,
            csv_field(&row.key),
            format_timestamp(row.timestamp_ms),
            v.score,
            u8::from(v.is_anomaly),
            u8::from(v.flag),
            csv_field(&top.join(" ")),
        )?;
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS[.fff]` in UTC, the layout NAB and SKAB use.
pub fn format_timestamp(timestamp_ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(timestamp_ms) {
        Some(t) if timestamp_ms % 1000 == 0 => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => timestamp_ms.to_string(),
    }
}
