//! The demo judges what it scored, never the machine's speed: with no time
//! to show flags it drains and reports what a long run reports; with no
//! time to drain either, it judges only the anomalies whose events it
//! scored. On librdkafka's mock cluster, so no broker is needed.

use std::time::Duration;

use tidewatch::jobs::demo::{DemoOptions, StreamSummary, run_demo};

fn small(duration_secs: u64, drain_secs: u64) -> DemoOptions {
    DemoOptions {
        duration: Duration::from_secs(duration_secs),
        drain: Duration::from_secs(drain_secs),
        devices: 2,
        accounts: 10,
        http_listen: "127.0.0.1:0".to_owned(),
        ..DemoOptions::default()
    }
}

#[test]
fn the_demo_drains_before_it_judges() {
    let long = run_demo(&small(600, 0), |_| {}).unwrap();
    let drained = run_demo(&small(0, 600), |_| {}).unwrap();
    assert_eq!(drained, long);
    for summary in drained.values() {
        assert_eq!(summary.scored, summary.events, "{summary:?}");
        assert_eq!(summary.unjudged, 0, "{summary:?}");
        assert!(
            summary.injected > 0 && summary.recall() > 0.5,
            "{summary:?}"
        );
    }
}

#[test]
fn without_time_to_drain_it_judges_only_what_it_scored() {
    let summaries = run_demo(&small(0, 0), |_| {}).unwrap();
    // Two anomalies per pump, one per account.
    let truths = [("pump", 4), ("payments", 10)];
    for (stream, injected) in truths {
        let summary: &StreamSummary = &summaries[stream];
        assert!(summary.scored <= summary.events, "{summary:?}");
        assert_eq!(summary.injected + summary.unjudged, injected, "{summary:?}");
        assert!(summary.detected <= summary.injected, "{summary:?}");
    }
}
