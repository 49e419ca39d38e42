//! `tidewatch score`: replay a file through the streaming path.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use tidewatch::jobs::score::{Models, score_file, write_scores_csv};
use tidewatch_learn::bundle;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::source::file::infer_schema;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("models").required(true).args(["model", "online"])))]
pub struct ScoreArgs {
    /// CSV (`,` `;` or tab) or JSON Lines file to replay, in time order.
    #[arg(long)]
    pub input: PathBuf,
    /// Score with this trained bundle (from `tidewatch train`).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Learn online: each key trains on its first events (15% of the file,
    /// at most 750, unless the config says otherwise), then is scored and
    /// keeps refitting on its recent normal events.
    #[arg(long)]
    pub online: bool,
    /// Stream config for --online. Without it the CSV header's `timestamp`
    /// column is the event time and every other column a feature.
    #[arg(long, conflicts_with = "model")]
    pub config: Option<PathBuf>,
    /// Write one CSV row of scores per input row here.
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub read: super::ReadArgs,
}

pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let mut output = super::Output::create(&args.output, &[&args.input])?;
    let (config, models) = match &args.model {
        Some(dir) => {
            let bundle = bundle::load(dir)?;
            (
                bundle.stream_config(),
                Models::Bundle(Arc::new(bundle.model)),
            )
        }
        None => {
            let config = match &args.config {
                Some(path) => super::load_config(path)?,
                None => StreamConfig::for_schema(infer_schema(&args.input, &[])?),
            };
            let models = Models::online(&config)?;
            (config, models)
        }
    };
    let scored = score_file(&args.input, Arc::new(config), &models, args.read.options())?;
    write_scores_csv(output.writer(), &scored)
        .with_context(|| format!("{}: cannot write", args.output.display()))?;
    output.finish()?;
    let flags = scored.rows.iter().filter(|r| r.verdict.flag).count();
    let anomalous = scored.rows.iter().filter(|r| r.verdict.is_anomaly).count();
    eprintln!(
        "scored {} rows ({anomalous} anomalous, {flags} flags) -> {}",
        scored.rows.len(),
        args.output.display()
    );
    if scored.skipped.total() > 0 {
        eprintln!("{}", scored.skipped);
    }
    Ok(())
}
