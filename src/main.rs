//! `tidewatch`: parse the command line, set up logging, run, and turn an
//! error into one line on stderr and a non-zero exit code.

mod cli;

use std::io::IsTerminal;

use clap::Parser;

/// The daemon's threads hand events and settled offsets to each other, so
/// memory is often freed on another thread than the one that allocated it;
/// glibc's malloc serialises those frees on the allocating arena's lock,
/// mimalloc does not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.verbose, cli.log_format);
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if error.is::<cli::validate::ConfigProblems>() => {
            let problems = error
                .downcast::<cli::validate::ConfigProblems>()
                .expect("checked");
            for problem in &problems.0 {
                eprintln!("tidewatch: {problem}");
            }
            // EX_CONFIG, sysexits.h: a configuration error.
            std::process::ExitCode::from(78)
        }
        Err(error) => {
            eprintln!("tidewatch: {}", one_line(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The level filter: `TIDEWATCH_LOG`, else `RUST_LOG`, else what `-v` asks.
fn init_tracing(verbose: u8, format: cli::LogFormat) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = ["TIDEWATCH_LOG", "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
        .map_or_else(
            || tracing_subscriber::EnvFilter::new(default),
            tracing_subscriber::EnvFilter::new,
        );
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        cli::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// The error and its causes, joined on one line.
fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}
