//! `tidewatch reduce`: compress numeric rows or images to k numbers with an
//! autoencoder, and measure it against PCA.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use tidewatch_classify::plot::{Scatter, save_scatter};
use tidewatch_classify::reduce::config::ReduceConfig;
use tidewatch_classify::reduce::jobs::{
    InputKind, ReduceRequest, evaluate, train, transform, write_codes,
};
use tidewatch_learn::fit::Progress;

#[derive(Debug, Subcommand)]
pub enum ReduceCommand {
    /// Train an autoencoder with a k-unit code on rows or images and write
    /// the model directory.
    Train(TrainArgs),
    /// Write each row's code: its line (or image), its label, code_1..code_k.
    Transform(TransformArgs),
    /// For each k, the autoencoder's reconstruction error next to PCA's
    /// (both fitted on the same training rows), and the 2-D codes as
    /// pictures coloured by label.
    Eval(EvalArgs),
}

/// Where rows come from, shared by `train` and `eval`.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Training rows: a CSV or JSON Lines table (every column but the label
    /// is an input), or with `--images` a folder of class folders.
    #[arg(long)]
    pub data: PathBuf,
    /// `--data` is images: one sub-folder per class of PNG or JPEG files
    /// (or an IDX images file); pixels in [0, 1] are the inputs.
    #[arg(long)]
    pub images: bool,
    /// Images are resized to this side in pixels.
    #[arg(long, default_value_t = 28)]
    pub size: u32,
    /// A table column that labels rows (not an input): the pictures'
    /// colours and a column of the codes.
    #[arg(long)]
    pub label: Option<String>,
    /// Network and training settings (TOML); see the README.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Seed for the validation split, weights and shuffling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Skip bad rows (counted) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

impl InputArgs {
    fn request(&self) -> anyhow::Result<ReduceRequest> {
        anyhow::ensure!(
            !(self.images && self.label.is_some()),
            "--label names a table column; images are labelled by their folders"
        );
        let mut config = match &self.config {
            Some(path) => ReduceConfig::load(path).map_err(anyhow::Error::msg)?,
            None => ReduceConfig::default(),
        };
        if let Some(seed) = self.seed {
            config.training.seed = seed;
        }
        Ok(ReduceRequest {
            data: self.data.clone(),
            input: if self.images {
                anyhow::ensure!(
                    (1..=1024).contains(&self.size),
                    "--size must be 1 to 1024 pixels"
                );
                InputKind::Images { size_px: self.size }
            } else {
                InputKind::Table {
                    label: self.label.clone(),
                }
            },
            config,
            skip_bad_rows: self.skip_bad_rows,
            progress: if self.quiet {
                Progress::Quiet
            } else {
                Progress::Bar
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Units in the code (the bottleneck).
    #[arg(long, short)]
    pub k: usize,
    /// Model directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct TransformArgs {
    /// Model directory written by `reduce train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Rows read as the model's training rows were (a table, or images).
    #[arg(long)]
    pub input: PathBuf,
    /// Where the codes go: `.csv` for CSV, anything else JSON Lines; `-`
    /// for standard output (JSON Lines).
    #[arg(long)]
    pub output: PathBuf,
    /// Skip bad rows (counted) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Rows to measure on, read as the training rows; without it the
    /// training rows themselves.
    #[arg(long)]
    pub test: Option<PathBuf>,
    /// Code sizes to compare, comma-separated.
    #[arg(long, short, value_delimiter = ',', default_value = "2,4,8")]
    pub k: Vec<usize>,
    /// Folder for `evaluation.json`, and with k = 2 `codes-autoencoder.png`
    /// and `codes-pca.png`.
    #[arg(long, default_value = "reduce-eval")]
    pub out: PathBuf,
}

pub fn run(command: ReduceCommand) -> anyhow::Result<()> {
    match command {
        ReduceCommand::Train(args) => {
            let request = args.input.request()?;
            let manifest = train(&request, args.k, &args.out)?;
            let s = &manifest.summary;
            eprintln!(
                "{} rows of {} inputs into a code of {}; best epoch {}/{} (validation MSE {:.5}, training MSE {:.5}) in {:.0} s; model written to {}",
                manifest.train_rows,
                manifest.width,
                manifest.code,
                s.best_epoch,
                s.epochs_run,
                s.best_validation_loss,
                manifest.train_reconstruction_mse,
                s.seconds,
                args.out.display()
            );
            Ok(())
        }
        ReduceCommand::Transform(args) => {
            let (manifest, rows, codes) = transform(&args.model, &args.input, args.skip_bad_rows)?;
            let mut output = super::Output::create(&args.output, &[&args.input])?;
            let csv = output.is_csv();
            write_codes(&rows, &codes, manifest.code, csv, output.writer())
                .with_context(|| format!("{}: cannot write", args.output.display()))?;
            output.finish()?;
            eprintln!(
                "{} rows encoded{}",
                rows.len(),
                if rows.skipped > 0 {
                    format!(", {} bad skipped", rows.skipped)
                } else {
                    String::new()
                }
            );
            Ok(())
        }
        ReduceCommand::Eval(args) => {
            let request = args.input.request()?;
            let quiet = args.input.quiet;
            let (evaluation, two_d) = evaluate(&request, args.test.as_deref(), &args.k, |c| {
                if !quiet {
                    eprintln!(
                        "k = {}: autoencoder {:.5}, PCA {:.5} ({:.0} s)",
                        c.code, c.autoencoder_mse, c.pca_mse, c.seconds
                    );
                }
            })?;
            print!("{}", evaluation.table());
            std::fs::create_dir_all(&args.out)
                .with_context(|| format!("{}: cannot create folder", args.out.display()))?;
            let json = args.out.join("evaluation.json");
            std::fs::write(
                &json,
                serde_json::to_string_pretty(&evaluation).expect("evaluation serialises") + "\n",
            )
            .with_context(|| format!("{}: cannot write", json.display()))?;
            let mut written = vec![json];
            if let Some(codes) = two_d {
                for (name, points) in [
                    ("codes-autoencoder.png", &codes.autoencoder),
                    ("codes-pca.png", &codes.pca),
                ] {
                    let path = args.out.join(name);
                    save_scatter(
                        &Scatter {
                            points,
                            groups: codes
                                .labels
                                .as_deref()
                                .map(|labels| (labels, codes.label_names.as_slice())),
                            diagonal: false,
                        },
                        &path,
                    )
                    .map_err(anyhow::Error::msg)?;
                    written.push(path);
                }
            }
            eprintln!(
                "written {}",
                written
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
    }
}
