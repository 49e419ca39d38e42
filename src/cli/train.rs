//! `tidewatch train`: learn a stream's normal behaviour from a file and
//! write a model bundle.

use std::path::PathBuf;

use clap::Args;

use tidewatch::jobs::train::train_file;
use tidewatch_learn::fit::Progress;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training data: CSV (`,` `;` or tab) or JSON Lines, in time order per key.
    #[arg(long)]
    pub input: PathBuf,
    /// Stream config (TOML): the `[schema]` and, optionally, `[model]`,
    /// `[training]`, `[detect]` and `[state]` settings.
    #[arg(long)]
    pub schema: PathBuf,
    /// Bundle directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub read: super::ReadArgs,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let config = super::load_config(&args.schema)?;
    let progress = if args.quiet {
        Progress::Quiet
    } else {
        Progress::Bar
    };
    let report = train_file(
        &args.input,
        &config,
        args.read.options(),
        &args.out,
        progress,
    )?;
    let m = &report.manifest;
    let s = &m.summary;
    eprintln!(
        "trained {} {} on {} rows ({} keys): forecaster best epoch {}/{} (validation loss {:.4}), \
         autoencoder best epoch {}/{} (validation loss {:.4}), threshold {:.4}",
        m.model_name,
        m.model_version,
        report.rows,
        report.keys,
        s.forecaster.best_epoch,
        s.forecaster.epochs_run,
        s.forecaster.best_validation_loss,
        s.autoencoder.best_epoch,
        s.autoencoder.epochs_run,
        s.autoencoder.best_validation_loss,
        m.threshold.value(),
    );
    if report.skipped.total() > 0 {
        eprintln!("{}", report.skipped);
    }
    eprintln!("bundle written to {}", args.out.display());
    Ok(())
}
