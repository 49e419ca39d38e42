//! `/metrics` as Prometheus sees it: `promtool check metrics` finds no
//! problem, and a real Prometheus server (Debian's `prometheus` package,
//! installed by scripts/test.sh) scrapes the daemon and answers queries on
//! its series.

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use tidewatch::models::LearnedModels;
use tidewatch::simulate::simulate_readings;
use tidewatch_runtime::config::RunConfig;
use tidewatch_runtime::daemon::{self, DaemonHandle};
use tidewatch_runtime::metrics::Metrics;

use support::{
    FLAG_EVERY_EVENT_STREAM, PrometheusServer, flush, http_get, produce_readings, producer,
    prometheus_binary, run_config, send, wait_for,
};

/// A daemon on a mock cluster that has scored, flagged and dead-lettered
/// some events, so that every metric family has samples.
fn busy_daemon<C: rdkafka::ClientContext>(
    cluster: &MockCluster<'_, C>,
    dir: &std::path::Path,
) -> DaemonHandle {
    let brokers = cluster.bootstrap_servers();
    for (topic, partitions) in [("readings", 2), ("flags", 1), ("dead-letters", 1)] {
        cluster.create_topic(topic, partitions, 1).unwrap();
    }
    let (readings, _) = simulate_readings(2, 300, 200, 3);
    produce_readings(&brokers, "readings", &readings, Duration::ZERO);
    let input = producer(&brokers);
    send(&input, "readings", "pump-1", b"not json");
    flush(&input);

    std::fs::write(dir.join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    std::fs::write(
        dir.join("run.toml"),
        run_config(&brokers, "metrics", None, "workers = 1"),
    )
    .unwrap();
    let metrics = Metrics::new();
    let handle = daemon::start(
        RunConfig::load(&dir.join("run.toml")).unwrap(),
        Arc::new(LearnedModels),
        metrics.clone(),
    )
    .unwrap();
    wait_for(Duration::from_secs(120), "the events to be scored", || {
        metrics.scored_total() >= readings.len() as u64
    });
    handle
}

#[test]
fn promtool_accepts_the_metrics_and_prometheus_scrapes_them() {
    let promtool = prometheus_binary("promtool");
    let prometheus = prometheus_binary("prometheus");
    let cluster = MockCluster::new(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let handle = busy_daemon(&cluster, dir.path());
    let target = handle.http_address().to_string();

    let (status, body) = http_get(&target, "/metrics");
    assert_eq!(status, 200);
    for family in [
        "tidewatch_events_consumed_total",
        "tidewatch_events_scored_total",
        "tidewatch_events_dead_lettered_total",
        "tidewatch_flags_produced_total",
        "tidewatch_consume_to_flag_seconds_bucket",
        "tidewatch_batch_size_events_bucket",
        "tidewatch_anomaly_score_bucket",
        "tidewatch_threshold",
        "tidewatch_active_keys",
        "tidewatch_model_info",
        "tidewatch_build_info",
    ] {
        assert!(body.contains(family), "{family} missing from /metrics");
    }
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && report.trim().is_empty(),
        "promtool: {report}"
    );

    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: tidewatch\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let server = PrometheusServer::start(&prometheus, &config, dir.path());
    let query = |q: &str| server.query(q);
    wait_for(
        Duration::from_secs(90),
        "Prometheus to scrape the daemon",
        || {
            query(r#"up{job="tidewatch"}"#).contains(r#""value":["#)
                && query(r#"up{job="tidewatch"}"#).contains(r#""1"]"#)
        },
    );
    let scored = query(r#"tidewatch_events_scored_total{stream="pump"}"#);
    assert!(scored.contains(r#""stream":"pump""#), "{scored}");
    let dead = query("sum by (reason) (tidewatch_events_dead_lettered_total)");
    assert!(dead.contains(r#""reason":"not_json""#), "{dead}");
    let latency = query(
        "histogram_quantile(0.99, sum by (le) (rate(tidewatch_consume_to_flag_seconds_bucket[1m])))",
    );
    assert!(latency.contains(r#""status":"success""#), "{latency}");

    handle.shutdown();
    handle.join().unwrap();
}
