//! `tidewatch score`: replay a file through the streaming path.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use tidewatch::config::StreamConfig;
use tidewatch::jobs::score::{Models, score_file, write_scores_csv};
use tidewatch::source::file::{ReadOptions, TimeOrder, infer_schema};

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// CSV (`,` `;` or tab) or JSON Lines file to replay, in time order.
    #[arg(long)]
    pub input: PathBuf,
    /// Learn online: each key trains on its first events (15% of the file,
    /// at most 750, unless the config says otherwise), then is scored.
    #[arg(long)]
    pub online: bool,
    /// Stream config (schema and settings). Without it, in online mode, the
    /// CSV header's `timestamp` column is the event time and every other
    /// column a feature.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Write one CSV row of scores per input row here.
    #[arg(long)]
    pub output: PathBuf,
    /// Skip rows that cannot be decoded (counted in the summary) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Accept timestamps that go backwards and score rows in file order
    /// (by default a key's time going backwards is bad input).
    #[arg(long)]
    pub file_order: bool,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.online,
        "score needs --online (scoring with a trained --model comes with `train`)"
    );
    let config = match &args.config {
        Some(path) => super::load_config(path)?,
        None => StreamConfig::for_schema(infer_schema(&args.input, &[])?),
    };
    let read = ReadOptions {
        time_order: if args.file_order {
            TimeOrder::FileOrder
        } else {
            TimeOrder::Strict
        },
        ..ReadOptions::skipping_bad_rows(args.skip_bad_rows)
    };
    let scored = score_file(&args.input, Arc::new(config), &Models::Online, read)?;
    super::create_parent(&args.output)?;
    write_scores_csv(&args.output, &scored)?;
    let flags = scored.rows.iter().filter(|r| r.verdict.flag).count();
    let anomalous = scored.rows.iter().filter(|r| r.verdict.is_anomaly).count();
    eprintln!(
        "scored {} rows ({} anomalous, {flags} flags) -> {}",
        scored.rows.len(),
        anomalous,
        args.output.display()
    );
    if scored.skipped.total() > 0 {
        eprintln!("{}", scored.skipped);
    }
    Ok(())
}
