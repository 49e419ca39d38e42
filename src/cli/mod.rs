//! The command line: one file per subcommand. Raw flags are checked and
//! turned into library calls here; nothing below `cli` parses arguments.

pub mod demo;
pub mod eval;
pub mod image;
pub mod run;
pub mod score;
pub mod sentiment;
pub mod simulate;
pub mod train;

use std::path::Path;

use anyhow::Context;
use clap::{Parser, Subcommand};

use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::source::file::{ReadOptions, TimeOrder};

/// Streaming anomaly detection: neural models learn what normal looks like
/// in transaction and sensor streams and flag what leaves it.
#[derive(Debug, Parser)]
#[command(name = "tidewatch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log more (-v: debug, -vv: trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulated pumps with injected anomalies through the detector: flags
    /// as they happen, then precision and recall.
    Demo(demo::DemoArgs),
    /// The daemon: score Kafka streams, publish flags, serve metrics.
    Run(run::RunArgs),
    /// Learn a stream's normal behaviour from a file and write a model bundle.
    Train(train::TrainArgs),
    /// Write synthetic sensor or payment streams with labelled anomalies to
    /// Kafka or a file.
    Simulate(simulate::SimulateArgs),
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
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Run(args) => run::run(args),
        Command::Train(args) => train::run(args),
        Command::Simulate(args) => simulate::run(args),
        Command::Score(args) => score::run(args),
        Command::Eval(command) => eval::run(command),
        Command::Image(command) => image::run(command),
        Command::Sentiment(command) => sentiment::run(command),
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

/// Where a command's rows go: standard output for `-`, else the file
/// (its folder created). The flag says whether it is standard output.
pub fn output_writer(path: &Path) -> anyhow::Result<(Box<dyn std::io::Write>, bool)> {
    if path.as_os_str() == "-" {
        return Ok((
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            true,
        ));
    }
    create_parent(path)?;
    let file = std::fs::File::create(path)
        .with_context(|| format!("{}: cannot create", path.display()))?;
    Ok((Box::new(std::io::BufWriter::new(file)), false))
}
