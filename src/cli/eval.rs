//! `tidewatch eval nab|skab`: benchmark scores with the published metrics.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use tidewatch::jobs::score::Models;
use tidewatch::jobs::{nab, skab};
use tidewatch_stream::parallel::parallel_map;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Numenta Anomaly Benchmark: normalised scores for the standard,
    /// low-false-positive and low-false-negative profiles, with one
    /// threshold swept over the whole corpus.
    Nab(NabArgs),
    /// Skoltech Anomaly Benchmark, outlier protocol: each file learns from
    /// its first 400 rows; F1, false-alarm and missed-alarm rates from one
    /// confusion matrix pooled over every file's remaining rows.
    Skab(SkabArgs),
}

#[derive(Debug, Args)]
pub struct SkabArgs {
    /// Folder of SKAB files (`;`-separated, with `anomaly` and
    /// `changepoint` columns), searched recursively.
    #[arg(long)]
    pub data: PathBuf,
    /// Stream config for the detector; the shipped `examples/skab.toml`
    /// otherwise. The warm-up is always the protocol's 400 rows.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Files scored at once.
    #[arg(long, default_value_t = super::default_threads())]
    pub threads: usize,
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
    /// `timestamp,value`); the shipped `examples/nab.toml` otherwise.
    #[arg(long, conflicts_with = "scores")]
    pub config: Option<PathBuf>,
    /// Series scored at once in online mode.
    #[arg(long, default_value_t = super::default_threads())]
    pub threads: usize,
    /// Also write the online scores in NAB's results layout to this folder.
    #[arg(long, conflicts_with = "scores")]
    pub write_scores: Option<PathBuf>,
    /// Score only the series of this category (a sub-folder of --data);
    /// repeat for several. Leave-one-category-out tuning scores two
    /// categories together and the third alone (scripts/nab-loco.sh).
    #[arg(long = "category", value_name = "CATEGORY")]
    pub categories: Vec<String>,
}

pub fn run(command: EvalCommand) -> anyhow::Result<()> {
    match command {
        EvalCommand::Nab(args) => run_nab(args),
        EvalCommand::Skab(args) => run_skab(args),
    }
}

fn run_nab(args: NabArgs) -> anyhow::Result<()> {
    let corpus = nab::load_corpus(&args.data, &args.labels)?;
    let corpus = nab::in_categories(corpus, &args.categories)?;
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
            let config = match &args.config {
                Some(path) => super::load_config(path)?,
                None => nab::default_config(),
            };
            let started = std::time::Instant::now();
            let scores = nab::online_scores(&corpus, &config, args.threads)?;
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

fn run_skab(args: SkabArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => super::load_config(path)?,
        None => skab::default_config(),
    };
    let models = Models::online(&config)?;
    let files = skab::labelled_files(&args.data)?;
    let started = std::time::Instant::now();
    let results = parallel_map(&files, args.threads, |file| {
        skab::evaluate_file(file, &args.data, &config, &models)
    })?;
    let mut total = skab::Confusion::default();
    println!("{:<24} {:>6} {:>8} {:>8}", "file", "F1", "FAR", "MAR");
    for result in &results {
        let c = &result.confusion;
        println!(
            "{:<24} {:>6.3} {:>7.1}% {:>7.1}%",
            result.name,
            c.f1(),
            100.0 * c.false_alarm_rate(),
            100.0 * c.missed_alarm_rate()
        );
        total.merge(c);
    }
    println!(
        "SKAB: {} files, {} test rows, {:.0} s\npooled                   F1 {:.3}  false alarms {:.1}%  missed alarms {:.1}%  (precision {:.3}, recall {:.3})",
        results.len(),
        total.true_positives + total.false_positives + total.true_negatives + total.false_negatives,
        started.elapsed().as_secs_f64(),
        total.f1(),
        100.0 * total.false_alarm_rate(),
        100.0 * total.missed_alarm_rate(),
        total.precision(),
        total.recall()
    );
    Ok(())
}
