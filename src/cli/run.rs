//! `tidewatch run`: the daemon.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use tidewatch::models::LearnedModels;
use tidewatch_runtime::config::RunConfig;
use tidewatch_runtime::daemon;
use tidewatch_runtime::metrics::Metrics;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Daemon config (TOML): brokers, consumer group, librdkafka properties
    /// and the streams to score (see examples/run.toml).
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = RunConfig::load(&args.config)?;
    let handle = daemon::start(config, Arc::new(LearnedModels), Metrics::new())?;
    handle.shutdown_signal().on_signals()?;
    handle.reload_signal().on_sighup()?;
    tracing::info!(address = %handle.http_address(), "serving /metrics, /healthz and /readyz");
    Ok(handle.join()?)
}
