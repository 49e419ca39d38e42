//! `tidewatch corpus`: the generated development corpus, written in NAB's
//! layout so that `eval nab` scores it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use tidewatch::corpus::{generate, write, write_combined};

#[derive(Debug, Args)]
pub struct CorpusArgs {
    /// Folder to write `data/<family>/*.csv` and
    /// `labels/combined_windows.json` into (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Series to generate, the six families in turn.
    #[arg(long, default_value_t = 240)]
    pub series: usize,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write every series into this one CSV (`series,timestamp,value`),
    /// for `tidewatch train` to learn a prior from (see `models/prior`).
    #[arg(long)]
    pub combined: Option<PathBuf>,
}

pub fn run(args: CorpusArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.series > 0, "--series must be at least 1");
    let corpus = generate(args.series, args.seed);
    write(&args.out, &corpus).with_context(|| format!("{}: cannot write", args.out.display()))?;
    if let Some(path) = &args.combined {
        write_combined(path, &corpus)
            .with_context(|| format!("{}: cannot write", path.display()))?;
    }
    let points: usize = corpus.iter().map(|s| s.values.len()).sum();
    let anomalies: usize = corpus.iter().map(|s| s.anomalies.len()).sum();
    println!(
        "{} series, {points} points, {anomalies} labelled anomalies -> {} (score it: tidewatch eval nab --data {}/data --labels {}/labels/combined_windows.json)",
        corpus.len(),
        args.out.display(),
        args.out.display(),
        args.out.display()
    );
    Ok(())
}
