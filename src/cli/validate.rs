//! `tidewatch validate`: check a daemon config before deploying it.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use tidewatch::models::LearnedModels;
use tidewatch_runtime::validate::validate;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Daemon config (TOML), as for `tidewatch run`.
    #[arg(long)]
    pub config: PathBuf,
    /// Check the files only: do not ask the brokers whether they answer
    /// and have the topics.
    #[arg(long)]
    pub no_environment: bool,
}

/// Every problem a config has, for an exit status of its own.
#[derive(Debug)]
pub struct ConfigProblems(pub Vec<String>);

impl std::fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} problems: {}", self.0.len(), self.0.join("; "))
    }
}

impl std::error::Error for ConfigProblems {}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let models = Arc::new(LearnedModels);
    match validate(&args.config, models.as_ref(), !args.no_environment) {
        Ok(report) => {
            print!("{report}");
            println!("ok");
            Ok(())
        }
        Err(problems) => Err(ConfigProblems(problems).into()),
    }
}
