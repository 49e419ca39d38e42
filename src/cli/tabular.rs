//! `tidewatch tabular`: train, run and evaluate a multilayer perceptron
//! over the columns of a CSV or JSON Lines table, for classification or
//! regression.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use tidewatch_classify::plot::{Scatter, save_scatter};
use tidewatch_classify::tabular::config::TabularConfig;
use tidewatch_classify::tabular::cross_validation::cross_validate;
use tidewatch_classify::tabular::features::Task;
use tidewatch_classify::tabular::inference::{
    TabularEvaluation, TabularModel, evaluate, write_predictions,
};
use tidewatch_classify::tabular::table::Table;
use tidewatch_classify::tabular::training::{TrainRequest, train};
use tidewatch_classify::vision::picture::save_confusion_picture;
use tidewatch_learn::fit::Progress;

#[derive(Debug, Subcommand)]
pub enum TabularCommand {
    /// Train a network on a table's rows to predict one column, and write
    /// the model directory; `--cv K` reports K-fold cross-validated figures
    /// first.
    Train(TrainArgs),
    /// Predict the target of each row: its line, an optional id, the
    /// prediction and a class's probability (CSV or JSON Lines).
    Predict(PredictArgs),
    /// RMSE, MAE and R² with a predicted-against-actual picture
    /// (regression), or accuracy, per-class F1 and the confusion matrix
    /// (classification), of a model on a labelled table.
    Eval(EvalArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    Classification,
    Regression,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Training rows: CSV with a header, or JSON Lines (`.gz` too).
    #[arg(long)]
    pub data: PathBuf,
    /// The column to predict; every other column is a feature unless the
    /// config says `kind = "ignore"`.
    #[arg(long)]
    pub target: String,
    /// What the target is; inferred from its values when they say
    /// (words: classification; fractions or many values: regression).
    #[arg(long, value_enum)]
    pub task: Option<TaskArg>,
    /// Model directory to write (created if needed). Optional with `--cv`.
    #[arg(long, required_unless_present = "cv")]
    pub out: Option<PathBuf>,
    /// Column, feature, network and training settings (TOML); see the README.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// K-fold cross-validation first: K networks, each trained without one
    /// fold and scored on it.
    #[arg(long, value_name = "K")]
    pub cv: Option<usize>,
    /// Upper bound on epochs (overrides `training.epochs`).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed for the folds, the validation split, weights and shuffling.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Skip rows with a bad cell (counted) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model directory written by `tabular train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Rows to predict, with the model's feature columns (the target
    /// column may be absent).
    #[arg(long)]
    pub input: PathBuf,
    /// Where the predictions go: `.csv` for CSV, anything else JSON Lines;
    /// `-` for standard output (JSON Lines).
    #[arg(long)]
    pub output: PathBuf,
    /// A column copied into each prediction row to identify it.
    #[arg(long)]
    pub id: Option<String>,
    /// Skip rows with a bad cell (counted) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory written by `tabular train`.
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled rows: the model's feature columns and its target column.
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for `evaluation.json` and `scatter.png` (regression) or
    /// `confusion.png` (classification).
    #[arg(long, default_value = "tabular-eval")]
    pub out: PathBuf,
    /// Skip rows with a bad cell (counted) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

pub fn run(command: TabularCommand) -> anyhow::Result<()> {
    match command {
        TabularCommand::Train(args) => run_train(args),
        TabularCommand::Predict(args) => run_predict(args),
        TabularCommand::Eval(args) => run_eval(args),
    }
}

fn run_train(args: TrainArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => TabularConfig::load(path).map_err(anyhow::Error::msg)?,
        None => TabularConfig::default(),
    };
    if let Some(epochs) = args.epochs {
        config.training.epochs = epochs;
    }
    if let Some(seed) = args.seed {
        config.training.seed = seed;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let request = TrainRequest {
        data: args.data,
        target: args.target,
        task: args.task.map(|t| match t {
            TaskArg::Classification => Task::Classification,
            TaskArg::Regression => Task::Regression,
        }),
        config,
        skip_bad_rows: args.skip_bad_rows,
        progress: if args.quiet {
            Progress::Quiet
        } else {
            Progress::Bar
        },
    };
    if let Some(folds) = args.cv {
        let report = cross_validate(&request, folds, |fold| {
            if !args.quiet {
                eprintln!("{}", fold.line());
            }
        })?;
        print!("{}", report.table());
    }
    let Some(out) = args.out else {
        return Ok(());
    };
    let manifest = train(&request, &out)?;
    eprintln!(
        "{} task, {} feature columns ({} inputs), {} rows{}; {} network(s), best epochs {:?} (validation loss {:.4}) in {:.0} s; model written to {}",
        match manifest.target.task() {
            Task::Regression => "regression",
            Task::Classification => "classification",
        },
        manifest.features.columns.len(),
        manifest.features.width(),
        manifest.train_rows,
        if manifest.skipped_rows > 0 {
            format!(" ({} bad skipped)", manifest.skipped_rows)
        } else {
            String::new()
        },
        manifest.members.len(),
        manifest
            .members
            .iter()
            .map(|s| s.best_epoch)
            .collect::<Vec<_>>(),
        manifest
            .members
            .iter()
            .map(|s| s.best_validation_loss)
            .sum::<f64>()
            / manifest.members.len() as f64,
        manifest.seconds,
        out.display()
    );
    Ok(())
}

fn run_predict(args: PredictArgs) -> anyhow::Result<()> {
    let model = TabularModel::load(&args.model)?;
    let table = Table::read(&args.input)?;
    let id_column = args.id.as_deref().map(|c| table.column(c)).transpose()?;
    let (encoded, predictions) = model.predict(&table, args.skip_bad_rows)?;
    for note in encoded.unseen_notes() {
        eprintln!("note: {note}");
    }
    let mut output = super::Output::create(&args.output, &[&args.input])?;
    let csv = output.is_csv();
    write_predictions(
        &table,
        &encoded,
        &predictions,
        &model.manifest.target,
        id_column,
        csv,
        output.writer(),
    )
    .with_context(|| format!("{}: cannot write", args.output.display()))?;
    let to_stdout = output.is_stdout();
    output.finish()?;
    eprintln!(
        "{} rows predicted{}{}",
        predictions.len(),
        if encoded.skipped > 0 {
            format!(", {} bad skipped", encoded.skipped)
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
    let model = TabularModel::load(&args.model)?;
    let table = Table::read(&args.data)?;
    let (evaluation, encoded) = evaluate(&model, &table, args.skip_bad_rows)?;
    for note in encoded.unseen_notes() {
        eprintln!("note: {note}");
    }
    print!("{}", evaluation.table());
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create folder", args.out.display()))?;
    let json = args.out.join("evaluation.json");
    std::fs::write(
        &json,
        serde_json::to_string_pretty(&evaluation).expect("evaluation serialises") + "\n",
    )
    .with_context(|| format!("{}: cannot write", json.display()))?;
    let picture = match &evaluation {
        TabularEvaluation::Regression { pairs, .. } => {
            let path = args.out.join("scatter.png");
            // Actual along x, predicted up y.
            let points: Vec<(f64, f64)> = pairs.iter().map(|&(p, a)| (a, p)).collect();
            save_scatter(
                &Scatter {
                    points: &points,
                    groups: None,
                    diagonal: true,
                },
                &path,
            )
            .map_err(anyhow::Error::msg)?;
            path
        }
        TabularEvaluation::Classification(evaluation) => {
            let path = args.out.join("confusion.png");
            save_confusion_picture(&evaluation.confusion, &path).map_err(anyhow::Error::msg)?;
            path
        }
    };
    eprintln!("written {} and {}", json.display(), picture.display());
    Ok(())
}
