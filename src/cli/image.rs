//! `tidewatch image`: train, run and evaluate a convolutional image
//! classifier over folders of images (one sub-folder per class) or IDX files.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use tidewatch_classify::vision::config::ImageConfig;
use tidewatch_classify::vision::data::ImageSet;
use tidewatch_classify::vision::digits::write_digits;
use tidewatch_classify::vision::inference::{Classifier, PredictionFormat, evaluate, predict};
use tidewatch_classify::vision::picture::save_confusion_picture;
use tidewatch_classify::vision::training::{TrainRequest, describe, train};
use tidewatch_learn::fit::Progress;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Train a classifier on a folder of class folders (or an IDX images
    /// file) and write the model directory.
    Train(TrainArgs),
    /// Classify images: one row per image with the class, its probability
    /// and the top-k classes (CSV or JSON Lines).
    Predict(PredictArgs),
    /// Accuracy, per-class precision / recall / F1 and the confusion matrix
    /// of a model on labelled images.
    Eval(EvalArgs),
    /// Write the scikit-learn digits CSV as 8x8 PNGs in `train/` and `test/`
    /// class folders, split by a seeded shuffle.
    Digits(DigitsArgs),
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training images: one sub-folder per class holding PNG or JPEG files,
    /// or an `*-images-idx3-ubyte[.gz]` file with its labels file beside it.
    #[arg(long)]
    pub data: PathBuf,
    /// Validation images in the same layout; without it
    /// `training.validation_fraction` of the training images is held out.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Model directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Network, training and augmentation settings (TOML); see the README.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Input side in pixels (overrides `input.size_px`).
    #[arg(long)]
    pub size: Option<u32>,
    /// Upper bound on epochs (overrides `training.epochs`).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed for the split, weights, shuffling and augmentation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop at the first unreadable image instead of skipping it.
    #[arg(long)]
    pub strict: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model directory written by `image train`.
    #[arg(long)]
    pub model: PathBuf,
    /// An image, a folder searched recursively, or an IDX images file.
    #[arg(long)]
    pub input: PathBuf,
    /// Where the predictions go: `.csv` for CSV, anything else JSON Lines;
    /// `-` for standard output (JSON Lines).
    #[arg(long)]
    pub output: PathBuf,
    /// Classes listed per image, most probable first.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// Images per batch (only one batch is decoded at a time).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Stop at the first unreadable image instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory written by `image train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled images: class folders named as the model's classes, or an
    /// IDX images file with its labels file beside it.
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for `evaluation.json` and `confusion.png`.
    #[arg(long, default_value = "image-eval")]
    pub out: PathBuf,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Stop at the first unreadable image instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct DigitsArgs {
    /// The digits CSV, gzipped or not (`../shared/data/images/sklearn_digits/digits.csv.gz`).
    #[arg(long)]
    pub csv: PathBuf,
    /// Folder to write `train/` and `test/` into.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of each digit held out in `test/`.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

pub fn run(command: ImageCommand) -> anyhow::Result<()> {
    match command {
        ImageCommand::Train(args) => run_train(args),
        ImageCommand::Predict(args) => run_predict(args),
        ImageCommand::Eval(args) => run_eval(args),
        ImageCommand::Digits(args) => {
            anyhow::ensure!(
                (0.0..1.0).contains(&args.test_fraction) && args.test_fraction > 0.0,
                "--test-fraction must be between 0 and 1"
            );
            let split = write_digits(&args.csv, &args.out, args.test_fraction, args.seed)
                .map_err(anyhow::Error::msg)?;
            eprintln!(
                "{} training and {} test images written to {}",
                split.train,
                split.test,
                args.out.display()
            );
            Ok(())
        }
    }
}

fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => ImageConfig::load(path).map_err(anyhow::Error::msg)?,
        None => ImageConfig::default(),
    };
    if let Some(size) = args.size {
        config.input.size_px = size;
    }
    if let Some(epochs) = args.epochs {
        config.training.epochs = epochs;
    }
    if let Some(seed) = args.seed {
        config.training.seed = seed;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let manifest = train(&TrainRequest {
        data: args.data,
        validation: args.val,
        out: args.out.clone(),
        config,
        strict: args.strict,
        progress: if args.quiet {
            Progress::Quiet
        } else {
            Progress::Bar
        },
    })?;
    eprintln!("{}", describe(&args.out, &manifest));
    Ok(())
}

fn run_predict(args: PredictArgs) -> anyhow::Result<()> {
    let mut output = super::Output::create(&args.output, &[&args.input])?;
    let classifier = Classifier::load(&args.model)?;
    let set = ImageSet::unlabelled(&args.input)?;
    let format = if output.is_csv() {
        PredictionFormat::Csv
    } else {
        PredictionFormat::JsonLines
    };
    let summary = predict(
        &classifier,
        &set,
        args.batch_size,
        args.top_k,
        format,
        args.strict,
        &mut output.writer(),
    )?;
    let to_stdout = output.is_stdout();
    output.finish()?;
    eprintln!(
        "{} images classified{}{}",
        summary.predicted,
        if summary.skipped > 0 {
            format!(", {} unreadable skipped", summary.skipped)
        } else {
            String::new()
        },
        if to_stdout {
            String::new()
        } else {
            format!(", written to {}", args.output.display())
        }
    );
    Ok(())
}

fn run_eval(args: EvalArgs) -> anyhow::Result<()> {
    let classifier = Classifier::load(&args.model)?;
    let mut set = ImageSet::labelled(&args.data)?;
    let evaluation = evaluate(&classifier, &mut set, args.batch_size, args.strict)?;
    print!("{}", evaluation.table());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create folder", args.out.display()))?;
    let json = args.out.join("evaluation.json");
    std::fs::write(
        &json,
        serde_json::to_string_pretty(&evaluation).expect("evaluation serialises") + "\n",
    )
    .with_context(|| format!("{}: cannot write", json.display()))?;
    let picture = args.out.join("confusion.png");
    save_confusion_picture(&evaluation.confusion, &picture).map_err(anyhow::Error::msg)?;
    eprintln!("written {} and {}", json.display(), picture.display());
    Ok(())
}
