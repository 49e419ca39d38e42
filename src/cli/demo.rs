//! `tidewatch demo`: simulated pumps and payments through the daemon, on an
//! embedded Kafka unless brokers are given; each flag is printed as it
//! arrives, then precision and recall per stream against the injected truth.

use std::time::Duration;

use clap::Args;

use tidewatch::jobs::demo::{DemoEvent, DemoOptions, run_demo};
use tidewatch::jobs::score::format_timestamp;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Kafka bootstrap servers; without them an in-process mock cluster
    /// (librdkafka's) serves as the broker.
    #[arg(long)]
    pub brokers: Option<String>,
    /// How long flags are shown as they arrive (the demo ends sooner once
    /// every event is scored). Past it, the demo drains: it waits for the
    /// rest of its events to be scored before it judges, so its figures do
    /// not depend on the machine's speed.
    #[arg(long, default_value_t = 60)]
    pub duration_secs: u64,
    /// Longest the drain waits; if it ends with events unscored, the
    /// summary says how many and judges only the scored ones.
    #[arg(long, default_value_t = DemoOptions::default().drain.as_secs())]
    pub drain_secs: u64,
    /// Simulated pumps (sensor stream).
    #[arg(long, default_value_t = DemoOptions::default().devices)]
    pub devices: usize,
    /// Simulated accounts (transaction stream).
    #[arg(long, default_value_t = DemoOptions::default().accounts)]
    pub accounts: usize,
    /// Seed of the simulation.
    #[arg(long, default_value_t = DemoOptions::default().seed)]
    pub seed: u64,
    /// Where /metrics is served during the demo.
    #[arg(long, default_value_t = DemoOptions::default().http_listen)]
    pub http_listen: String,
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let options = DemoOptions {
        brokers: args.brokers,
        duration: Duration::from_secs(args.duration_secs),
        drain: Duration::from_secs(args.drain_secs),
        devices: args.devices,
        accounts: args.accounts,
        seed: args.seed,
        http_listen: args.http_listen,
        ..DemoOptions::default()
    };
    let summaries = run_demo(&options, print_event)?;
    println!();
    for (stream, s) in &summaries {
        println!(
            "{stream:<9} {:>6} events, {:>3} flags: precision {:.2} ({} of {} on an injected anomaly), recall {:.2} ({} of {} anomalies flagged)",
            s.events,
            s.flags,
            s.precision(),
            s.true_flags,
            s.flags,
            s.recall(),
            s.detected,
            s.injected
        );
        if s.scored < s.events {
            println!(
                "{:<9} {} events not scored within the drain bound; {} injected anomalies among them not judged",
                "",
                s.events - s.scored,
                s.unjudged
            );
        }
    }
    Ok(())
}

fn print_event(event: DemoEvent) {
    match event {
        DemoEvent::Started {
            brokers,
            metrics_address,
            events,
        } => println!(
            "{events} simulated events on {brokers}; every key learns online from its first events, then is scored \
             (metrics: http://{metrics_address}/metrics)"
        ),
        DemoEvent::Progress { scored, events } => {
            println!("... {scored} of {events} events through the detector")
        }
        DemoEvent::Draining { scored, events } => println!(
            "... duration reached with {scored} of {events} events scored: draining the rest before judging"
        ),
        DemoEvent::Flag { flag, caught } => {
            let top: Vec<String> = flag
                .top_features
                .iter()
                .map(|f| format!("{} {:.0}%", f.feature, 100.0 * f.share))
                .collect();
            let truth = match caught {
                Some(t) => format!("injected {}", t.kind),
                None => "no injected anomaly".to_owned(),
            };
            println!(
                "FLAG {:<8} {:<9} {} score {:.3} top: {}  [{truth}]",
                flag.stream,
                flag.key,
                format_timestamp(flag.timestamp_ms),
                flag.score,
                top.join(", ")
            );
        }
    }
}
