//! `tidewatch sentiment`: train, run and evaluate text classifiers
//! (satisfied / neutral / dissatisfied, or any labels the file carries).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use tidewatch_classify::text::baseline::BaselineConfig;
use tidewatch_classify::text::data::{ReadSpec, read_files};
use tidewatch_classify::text::jobs::{evaluate, predict, split};
use tidewatch_classify::text::model::{KindConfig, ModelKind, TextClassifier, train};
use tidewatch_classify::text::pretrained::PretrainedConfig;
use tidewatch_classify::text::rnn::RnnConfig;
use tidewatch_learn::fit::Progress;
use tidewatch_stream::config::CellKind;

#[derive(Debug, Subcommand)]
pub enum SentimentCommand {
    /// Train a classifier on labelled texts and write the model directory.
    Train(TrainArgs),
    /// Label and class probabilities for every row of a file.
    Predict(PredictArgs),
    /// Accuracy, macro-F1, per-class precision / recall and the confusion
    /// matrix on labelled texts.
    Eval(EvalArgs),
    /// Split labelled files into `train.tsv` and `test.tsv` by a seeded
    /// shuffle that keeps each label's share.
    Split(SplitArgs),
}

/// How rows are read.
#[derive(Debug, Args)]
pub struct ColumnArgs {
    /// CSV column or JSON field holding the text.
    #[arg(long, default_value = "text")]
    pub text_column: String,
    /// CSV column or JSON field holding the label.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Skip rows with an empty text or a missing label (counted) instead of
    /// stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

impl ColumnArgs {
    fn spec(&self, labels_required: bool) -> ReadSpec {
        ReadSpec {
            text_field: self.text_column.clone(),
            label_field: self.label_column.clone(),
            labels_required,
            skip_bad_rows: self.skip_bad_rows,
        }
    }
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled texts: CSV with a header, TSV `text<TAB>label` without one,
    /// or JSON Lines (by extension); several files are read as one.
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// Model kind.
    #[arg(long, value_enum, default_value_t = ModelKind::Baseline)]
    pub kind: ModelKind,
    /// Sentence-encoder directory for `--kind pretrained`, in the
    /// sentence-transformers layout (config.json, model.safetensors,
    /// tokenizer.json), e.g. all-MiniLM-L6-v2; the README says where to get one.
    #[arg(long)]
    pub encoder: Option<PathBuf>,
    /// Recurrent cell of `--kind rnn` [default: gru].
    #[arg(long, value_parser = cell_kind())]
    pub cell: Option<CellKind>,
    /// Upper bound on training epochs of `--kind rnn`; training stops
    /// earlier when the validation loss stops improving [default: 25].
    #[arg(long)]
    pub max_epochs: Option<usize>,
    /// `--kind pretrained`: epochs of training the encoder together with
    /// the dense layer after it (slow on a CPU) [default: 0, the encoder
    /// stays frozen].
    #[arg(long)]
    pub fine_tune_epochs: Option<usize>,
    /// Seed of weight initialisation, validation split and shuffling
    /// [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// TOML file with the kind's settings in a `[baseline]`, `[rnn]` or
    /// `[pretrained]` table (every field optional; the manifest of a trained
    /// model lists them all); the flags above override it.
    #[arg(long)]
    pub settings: Option<PathBuf>,
    /// Model directory to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

/// The `--settings` file: one optional table per kind.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KindSettings {
    baseline: Option<BaselineConfig>,
    rnn: Option<RnnConfig>,
    pretrained: Option<PretrainedConfig>,
}

impl TrainArgs {
    /// The kind and its settings the file and flags ask for.
    fn kind_config(&self) -> anyhow::Result<KindConfig> {
        let file: KindSettings = match &self.settings {
            Some(path) => toml::from_str(
                &tidewatch_stream::config::env::read_config(path)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
            .with_context(|| format!("{}: invalid settings", path.display()))?,
            None => KindSettings::default(),
        };
        let (rnn, pretrained) = (&[ModelKind::Rnn][..], &[ModelKind::Pretrained][..]);
        for (flag, given, kinds) in [
            ("--encoder", self.encoder.is_some(), pretrained),
            ("--cell", self.cell.is_some(), rnn),
            ("--max-epochs", self.max_epochs.is_some(), rnn),
            (
                "--fine-tune-epochs",
                self.fine_tune_epochs.is_some(),
                pretrained,
            ),
            (
                "--seed",
                self.seed.is_some(),
                &[ModelKind::Rnn, ModelKind::Pretrained][..],
            ),
        ] {
            anyhow::ensure!(
                !given || kinds.contains(&self.kind),
                "{flag} does not apply to --kind {}",
                self.kind
                    .to_possible_value()
                    .expect("named kind")
                    .get_name()
            );
        }
        let config = match self.kind {
            ModelKind::Baseline => KindConfig::Baseline(file.baseline.unwrap_or_default()),
            ModelKind::Rnn => {
                let mut config = file.rnn.unwrap_or_default();
                config.cell = self.cell.unwrap_or(config.cell);
                config.seed = self.seed.unwrap_or(config.seed);
                config.max_epochs = self.max_epochs.unwrap_or(config.max_epochs);
                KindConfig::Rnn(config)
            }
            ModelKind::Pretrained => {
                let mut config = file.pretrained.unwrap_or_default();
                if let Some(encoder) = &self.encoder {
                    config.encoder_dir = encoder.clone();
                }
                anyhow::ensure!(
                    !config.encoder_dir.as_os_str().is_empty(),
                    "--kind pretrained needs --encoder DIR (a sentence-transformers directory; see the README)"
                );
                config.seed = self.seed.unwrap_or(config.seed);
                config.fine_tune_epochs = self.fine_tune_epochs.unwrap_or(config.fine_tune_epochs);
                KindConfig::Pretrained(config)
            }
        };
        config.validate().map_err(|e| match &self.settings {
            Some(path) => anyhow::anyhow!("{}: {e}", path.display()),
            None => anyhow::anyhow!("{e}"),
        })?;
        Ok(config)
    }
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Texts to label, in any of the training formats (labels not needed).
    #[arg(long)]
    pub input: PathBuf,
    /// `.csv` for CSV, anything else JSON Lines; `-` for standard output.
    #[arg(long)]
    pub output: PathBuf,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[arg(long)]
    pub model: PathBuf,
    /// Labelled texts.
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

#[derive(Debug, Args)]
pub struct SplitArgs {
    /// Labelled files, read as one.
    #[arg(long, required = true, num_args = 1..)]
    pub input: Vec<PathBuf>,
    /// Folder for `train.tsv` and `test.tsv`.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub columns: ColumnArgs,
}

pub fn run(command: SentimentCommand) -> anyhow::Result<()> {
    match command {
        SentimentCommand::Train(args) => {
            let config = args.kind_config()?;
            let set = read_files(&args.data, &args.columns.spec(true))?;
            let classifier = train(&set, &args.data[0], &config, Progress::Bar)?;
            classifier.save(&args.out)?;
            let s = &classifier.manifest.summary;
            eprintln!(
                "trained {:?} on {} texts{} ({} labels: {}), training accuracy {:.4} in {:.1} s; model written to {}",
                args.kind,
                s.examples,
                skipped(s.skipped_rows),
                classifier.manifest.labels.len(),
                classifier.manifest.labels.join(", "),
                s.train_accuracy,
                s.seconds,
                args.out.display()
            );
            Ok(())
        }
        SentimentCommand::Predict(args) => {
            let mut output = super::Output::create(&args.output, &[&args.input])?;
            let classifier = TextClassifier::load(&args.model)?;
            let csv = output.is_csv();
            let (rows, skipped_rows) = predict(
                &classifier,
                &args.input,
                &args.columns.spec(false),
                csv,
                &mut output.writer(),
            )?;
            output.finish()?;
            eprintln!("{rows} texts labelled{}", skipped(skipped_rows));
            Ok(())
        }
        SentimentCommand::Eval(args) => {
            let classifier = TextClassifier::load(&args.model)?;
            let evaluation = evaluate(&classifier, &args.data, &args.columns.spec(true))?;
            print!("{}", evaluation.table());
            Ok(())
        }
        SentimentCommand::Split(args) => {
            anyhow::ensure!(
                args.test_fraction > 0.0 && args.test_fraction < 1.0,
                "--test-fraction must be between 0 and 1"
            );
            let set = read_files(&args.input, &args.columns.spec(true))?;
            let (train, test) = split(&set, &args.out, args.test_fraction, args.seed)
                .with_context(|| format!("{}: cannot write", args.out.display()))?;
            eprintln!(
                "{train} training and {test} test rows written to {}",
                args.out.display()
            );
            Ok(())
        }
    }
}

fn skipped(count: usize) -> String {
    if count > 0 {
        format!(", {count} bad rows skipped")
    } else {
        String::new()
    }
}

/// `--cell`: one of [`CellKind::NAMES`], listed in `--help` and in the error.
fn cell_kind() -> impl clap::builder::TypedValueParser<Value = CellKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(CellKind::NAMES)
        .try_map(|name| name.parse::<CellKind>())
}
