//! `tidewatch eval nab|skab`: benchmark scores with the published metrics.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use tidewatch::jobs::nab;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Numenta Anomaly Benchmark: normalised scores for the standard,
    /// low-false-positive and low-false-negative profiles, with one
    /// threshold swept over the whole corpus.
    Nab(NabArgs),
}

#[derive(Debug, Args)]
pub struct NabArgs {
    /// Folder of NAB series (CSV `timestamp,value`, in category sub-folders).
    #[arg(long)]
    pub data: PathBuf,
    /// NAB windows file (`combined_windows.json`).
    #[arg(long)]
    pub labels: PathBuf,
    /// Read ready scores from this folder (mirroring --data; a detector
    /// prefix on file names is allowed) instead of scoring online.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Stream config for online scoring (its schema must read
    /// `timestamp,value`); defaults otherwise.
    #[arg(long, conflicts_with = "scores")]
    pub config: Option<PathBuf>,
    /// Series scored at once in online mode.
    #[arg(long, default_value_t = super::default_threads())]
    pub threads: usize,
    /// Also write the online scores in NAB's results layout to this folder.
    #[arg(long, conflicts_with = "scores")]
    pub write_scores: Option<PathBuf>,
}

pub fn run(command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::Nab(args) => run_nab(args),
    }
}

fn run_nab(args: NabArgs) -> anyhow::Result<()> {
    let corpus = nab::load_corpus(&args.data, &args.labels)?;
    let windows: usize = corpus.iter().map(|s| s.windows.len()).sum();
    let (scores, origin) = match &args.scores {
        Some(dir) => (
            corpus
                .iter()
                .map(|s| nab::read_scores(dir, s))
                .collect::<Result<Vec<_>, _>>()?,
            format!("scores from {}", dir.display()),
        ),
        None => {
            let config = args.config.as_deref().map(super::load_config).transpose()?;
            let started = std::time::Instant::now();
            let scores = nab::online_scores(&corpus, config.as_ref(), args.threads)?;
            let origin = format!("tidewatch online, {:.0} s", started.elapsed().as_secs_f64());
            if let Some(dir) = &args.write_scores {
                nab::write_scores(dir, "tidewatch", &corpus, &scores)?;
            }
            (scores, origin)
        }
    };
    println!("NAB: {} series, {windows} windows ({origin})", corpus.len());
    println!(
        "{:<20} {:>7} {:>10} {:>9} {:>16}",
        "profile", "score", "threshold", "detected", "false positives"
    );
    for profile in &nab::PROFILES {
        let result = nab::score_corpus(&corpus, &scores, profile);
        println!(
            "{:<20} {:>7.2} {:>10.4} {:>5}/{:<3} {:>16}",
            profile.name,
            result.normalized,
            result.threshold,
            result.detected_windows,
            result.windows,
            result.false_positives
        );
    }
    Ok(())
}
