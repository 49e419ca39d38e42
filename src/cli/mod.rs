//! The command line: one file per subcommand. Raw flags are checked and
//! turned into library calls here; nothing below `cli` parses arguments.

pub mod corpus;
pub mod demo;
pub mod eval;
pub mod image;
pub mod reduce;
pub mod run;
pub mod score;
pub mod sentiment;
pub mod simulate;
pub mod tabular;
pub mod train;
pub mod validate;

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::source::file::{ReadOptions, TimeOrder};

/// Streaming anomaly detection: neural models learn what normal looks like
/// in transaction and sensor streams and flag what leaves it.
#[derive(Debug, Parser)]
#[command(name = "tidewatch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log more (-v: debug, -vv: trace); TIDEWATCH_LOG (or RUST_LOG), a
    /// filter such as `info,tidewatch_runtime=debug`, overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines as text, or as one JSON object a line (timestamp, level,
    /// target, message and fields) for a log pipeline.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulated pumps with injected anomalies through the detector: flags
    /// as they happen, then precision and recall.
    Demo(demo::DemoArgs),
    /// The daemon: score Kafka streams, publish flags, serve metrics; keys'
    /// state kept on each stream's changelog (`state_topic`). SIGTERM or
    /// SIGINT drains and stops; SIGHUP reloads the streams' bundles.
    Run(run::RunArgs),
    /// Check a daemon config without running it: the config, every stream
    /// config and bundle, and that the brokers answer and have the topics.
    /// Exits 0 and prints what it would run, or 78 with every problem.
    Validate(validate::ValidateArgs),
    /// Learn a stream's normal behaviour from a file and write a model bundle.
    Train(train::TrainArgs),
    /// Write synthetic sensor or payment streams with labelled anomalies to
    /// Kafka or a file.
    Simulate(simulate::SimulateArgs),
    /// Write a generated development corpus of labelled series in NAB's
    /// layout, for `eval nab`.
    Corpus(corpus::CorpusArgs),
    /// Replay a file through the streaming path and write a score per row.
    Score(score::ScoreArgs),
    /// Score labelled benchmarks (NAB, SKAB) with their published metrics.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Offline image classification with a CNN: train, predict, eval.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Offline text classification (satisfied / neutral / dissatisfied, or
    /// any labels): train, predict, eval.
    #[command(subcommand)]
    Sentiment(sentiment::SentimentCommand),
    /// Offline networks over tables (CSV, JSON Lines): classify rows or
    /// predict a number; train, predict, eval, with K-fold figures.
    #[command(subcommand)]
    Tabular(tabular::TabularCommand),
    /// Offline dimensionality reduction: an autoencoder compresses rows or
    /// images to k numbers; train, transform, eval (against PCA).
    #[command(subcommand)]
    Reduce(reduce::ReduceCommand),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Train(args) => train::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Corpus(args) => corpus::run(args),
        Command::Score(args) => score::run(args),
        Command::Eval(command) => eval::run(command),
        Command::Image(command) => image::run(command),
        Command::Sentiment(command) => sentiment::run(command),
        Command::Tabular(command) => tabular::run(command),
        Command::Reduce(command) => reduce::run(command),
    }
}

/// How input files are read, shared by the commands that read them.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Skip rows that cannot be decoded (counted in the summary) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Accept timestamps that go backwards and take rows in file order (by
    /// default a key's time going backwards is bad input).
    #[arg(long)]
    pub file_order: bool,
}

impl ReadArgs {
    pub fn options(&self) -> ReadOptions {
        ReadOptions {
            time_order: if self.file_order {
                TimeOrder::FileOrder
            } else {
                TimeOrder::Strict
            },
            ..ReadOptions::skipping_bad_rows(self.skip_bad_rows)
        }
    }
}

/// Reads a stream config file.
pub fn load_config(path: &Path) -> anyhow::Result<StreamConfig> {
    Ok(StreamConfig::load(path)?)
}

/// The number of worker threads to use when the user gave none.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

pub fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create folder", parent.display()))?;
    }
    Ok(())
}

/// Where a command's rows go: standard output for `-`, else a temporary
/// file beside `path` (its folder created) that [`Output::finish`] renames
/// to `path` once complete, so that a failure never leaves half a file.
pub enum Output {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    File {
        path: PathBuf,
        temp: std::io::BufWriter<tempfile::NamedTempFile>,
    },
}

impl Output {
    /// Opens `path`, refusing it when it is one of the command's `inputs`
    /// (the same file under any name, or a file inside an input folder):
    /// writing there would destroy what is being read.
    pub fn create(path: &Path, inputs: &[&Path]) -> anyhow::Result<Output> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stdout(std::io::BufWriter::new(
                std::io::stdout().lock(),
            )));
        }
        for input in inputs {
            if is_within(path, input) {
                anyhow::bail!(
                    "{}: the output is the input {}; choose another output",
                    path.display(),
                    input.display()
                );
            }
        }
        create_parent(path)?;
        let temp = tempfile::Builder::new()
            .prefix(".tidewatch-")
            .tempfile_in(folder_of(path))
            .with_context(|| format!("{}: cannot create", path.display()))?;
        Ok(Output::File {
            path: path.to_owned(),
            temp: std::io::BufWriter::new(temp),
        })
    }

    pub fn is_stdout(&self) -> bool {
        matches!(self, Output::Stdout(_))
    }

    /// Whether rows go out as CSV: to a file named `.csv` (anything else,
    /// standard output included, takes JSON Lines).
    pub fn is_csv(&self) -> bool {
        match self {
            Output::Stdout(_) => false,
            Output::File { path, .. } => path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
        }
    }

    pub fn writer(&mut self) -> &mut dyn std::io::Write {
        match self {
            Output::Stdout(out) => out,
            Output::File { temp, .. } => temp,
        }
    }

    /// Flushes, and puts a file in its place.
    pub fn finish(self) -> anyhow::Result<()> {
        match self {
            Output::Stdout(mut out) => Ok(out.flush().context("standard output")?),
            Output::File { path, temp } => {
                let cannot_write = || format!("{}: cannot write", path.display());
                let temp = temp
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(cannot_write)?;
                temp.persist(&path)
                    .map_err(|e| e.error)
                    .with_context(cannot_write)?;
                Ok(())
            }
        }
    }
}

/// Whether `output` is `input`, or an existing file inside the folder
/// `input`, compared by their canonical paths.
fn is_within(output: &Path, input: &Path) -> bool {
    let (Some(output), Ok(input)) = (canonical(output), input.canonicalize()) else {
        return false;
    };
    output == input || (input.is_dir() && output.is_file() && output.starts_with(&input))
}

/// `path` absolute with links resolved; through its folder when the file
/// does not exist yet.
fn canonical(path: &Path) -> Option<PathBuf> {
    path.canonicalize()
        .ok()
        .or_else(|| Some(folder_of(path).canonicalize().ok()?.join(path.file_name()?)))
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}
