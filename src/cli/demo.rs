//! `tidewatch demo`: simulated pumps stream through the detector; each
//! flag is printed as it is raised, then precision and recall against the
//! injected anomalies.

use clap::Args;

use tidewatch::jobs::demo::{DemoFlag, DemoOptions, run_demo};
use tidewatch::jobs::score::format_timestamp;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated devices, streamed together.
    #[arg(long, default_value_t = DemoOptions::default().devices)]
    pub devices: usize,
    /// Readings per device (one a minute).
    #[arg(long, default_value_t = DemoOptions::default().points)]
    pub points: usize,
    /// Readings each device learns from before it is scored.
    #[arg(long, default_value_t = DemoOptions::default().warmup_events)]
    pub warmup_events: u64,
    /// Seed of the simulation.
    #[arg(long, default_value_t = DemoOptions::default().seed)]
    pub seed: u64,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let options = DemoOptions {
        devices: args.devices,
        points: args.points,
        warmup_events: args.warmup_events,
        seed: args.seed,
    };
    anyhow::ensure!(
        options.points as u64 > options.warmup_events + 200,
        "--points must exceed --warmup-events by at least 200"
    );
    println!(
        "simulating {} pumps x {} readings; each learns from its first {} readings, then is scored",
        options.devices, options.points, options.warmup_events
    );
    let summary = run_demo(&options, print_flag)?;
    println!(
        "\n{} events, {} flags: precision {:.2} ({} of {} flags on an injected anomaly), recall {:.2} ({} of {} anomalies flagged)",
        summary.events,
        summary.flags,
        summary.precision(),
        summary.true_flags,
        summary.flags,
        summary.recall(),
        summary.detected,
        summary.injected
    );
    Ok(())
}

fn print_flag(flag: &DemoFlag) {
    let top: Vec<String> = flag
        .verdict
        .top_features
        .iter()
        .map(|c| format!("{} {:.0}%", c.feature, 100.0 * c.share))
        .collect();
    let truth = match flag.caught {
        Some(anomaly) => format!("injected {:?} at row {}", anomaly.kind, anomaly.start),
        None => "no injected anomaly".to_owned(),
    };
    println!(
        "FLAG pump-{} {} score {:.3} (threshold {:.2}) top: {}  [{truth}]",
        flag.device + 1,
        format_timestamp(flag.timestamp_ms),
        flag.verdict.score,
        flag.verdict.threshold.unwrap_or(f64::NAN),
        top.join(", "),
    );
}
