//! End-to-end daemon throughput on a real broker, for two model sizes:
//!
//! - `sensor`: the shipped `examples/sensor.toml` stream (2 sensors,
//!   window 16, LSTM 16, autoencoder 32-16-4-16-32), 1,000 pumps;
//! - `peer8`: the shapes of the scoring bench and of the Python peer in
//!   `../shared/peer` (8 features, window 64, LSTM 64, autoencoder
//!   512-128-32-128-512), 10,000 devices with normal readings.
//!
//! Each runs on a Nisshi broker of its own with the events pre-loaded, one
//! scoring worker and a bundle trained on a little clean data. Reports
//! events/s from the first event consumed to the last offset committed
//! (offsets are committed only after scoring and, for flagged events, the
//! broker's acknowledgement of the flag), events/s from the first consumed
//! to the last scored, and the p99 consume-to-flag latency from the
//! daemon's own histogram.
//!
//! Run: `cargo bench --bench throughput` (1,000,000 events each; set
//! `TIDEWATCH_BENCH_EVENTS` for another count, `TIDEWATCH_BENCH_SHAPES`
//! to `sensor` or `peer8` for one of them). Under `cargo test` each runs
//! once with 20,000 events, as a check that it works.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tidewatch::jobs::demo::sensor_config;
use tidewatch::jobs::train::train_file;
use tidewatch::models::LearnedModels;
use tidewatch::simulate::simulate_readings;
use tidewatch_learn::fit::Progress;
use tidewatch_runtime::config::RunConfig;
use tidewatch_runtime::daemon;
use tidewatch_runtime::metrics::Metrics;
use tidewatch_stream::config::StreamConfig;
use tidewatch_stream::source::file::ReadOptions;

use support::{GroupOffsets, Nisshi, flush, producer, run_config, send};

/// The `tidewatch` binary's allocator, so the daemon runs here as it ships.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 3;

/// A stream, the clean rows its bundle learns from, and the events to score.
struct Workload {
    name: &'static str,
    stream: StreamConfig,
    /// JSON Lines.
    training: String,
    /// (key, JSON payload), in the order they are produced.
    events: Vec<(String, Vec<u8>)>,
}

fn main() {
    let measuring = std::env::args().any(|a| a == "--bench");
    let events: usize = match std::env::var("TIDEWATCH_BENCH_EVENTS") {
        Ok(n) => n.parse().expect("TIDEWATCH_BENCH_EVENTS is a count"),
        Err(_) if measuring => 1_000_000,
        Err(_) => 20_000,
    };
    let shapes = std::env::var("TIDEWATCH_BENCH_SHAPES").unwrap_or_else(|_| "sensor,peer8".into());
    for shape in shapes.split(',') {
        let workload = match shape.trim() {
            "sensor" => sensor(events),
            "peer8" => peer8(events),
            other => panic!("unknown TIDEWATCH_BENCH_SHAPES entry {other:?}: sensor or peer8"),
        };
        measure(&workload);
    }
}

/// The shipped sensor stream: 1,000 pumps, a bundle trained on 8 of them.
fn sensor(events: usize) -> Workload {
    const DEVICES: usize = 1000;
    let (training, _) = simulate_readings(8, 1200, 1200, 99);
    let per_device = events / DEVICES;
    let (readings, _) = simulate_readings(DEVICES, per_device, per_device / 2, 7);
    Workload {
        name: "sensor",
        stream: sensor_config(),
        training: training
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect(),
        events: readings
            .iter()
            .map(|r| (r.device.clone(), serde_json::to_vec(r).unwrap()))
            .collect(),
    }
}

/// The Python peer's shapes and data (`../shared/peer/peer8.toml`,
/// `load8.py`, `train8.py`): 8 standard-normal features, 10,000 devices
/// in turn, a bundle trained on 4 devices' 1,500 readings.
fn peer8(events: usize) -> Workload {
    const DEVICES: usize = 10_000;
    let stream: StreamConfig = toml::from_str(
        r#"
        [schema]
        name = "peer8"
        key_field = "device_id"
        timestamp_field = "ts"
        features = [ { name = "f0" }, { name = "f1" }, { name = "f2" }, { name = "f3" },
                     { name = "f4" }, { name = "f5" }, { name = "f6" }, { name = "f7" } ]
        [model]
        window_len = 64
        forecaster = { cell = "lstm", hidden_size = 64 }
        autoencoder = { hidden_widths = [128, 32] }
        [training]
        max_epochs = 2
        "#,
    )
    .expect("the peer's stream config parses");
    let mut rng = StdRng::seed_from_u64(0);
    let mut row = |device: usize, step: usize| -> (String, Vec<u8>) {
        let key = format!("dev-{device:05}");
        let mut record = serde_json::json!({
            "device_id": key,
            "ts": 1_764_230_400_000_i64 + step as i64 * 1000,
        });
        for f in 0..8 {
            // Box-Muller: a standard normal value from two uniform ones.
            let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
            let value = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            record[format!("f{f}")] = serde_json::json!(value as f32);
        }
        (key, serde_json::to_vec(&record).unwrap())
    };
    let training: String = (0..4)
        .flat_map(|device| (0..1500).map(move |step| (device, step)))
        .map(|(device, step)| String::from_utf8(row(device, step).1).unwrap() + "\n")
        .collect();
    let events = (0..events).map(|i| row(i % DEVICES, i / DEVICES)).collect();
    Workload {
        name: "peer8",
        stream,
        training,
        events,
    }
}

fn measure(workload: &Workload) {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    train_bundle(workload, dir.path(), &bundle);

    let broker = Nisshi::start();
    for (topic, partitions) in [("readings", PARTITIONS), ("flags", 1), ("dead-letters", 1)] {
        broker.create_topic(topic, partitions);
    }
    let brokers = broker.brokers();
    let count = workload.events.len();
    let loading = Instant::now();
    let events = producer(&brokers);
    for (key, payload) in &workload.events {
        send(&events, "readings", key, payload);
    }
    flush(&events);
    eprintln!(
        "{}: loaded {count} events in {:.1} s",
        workload.name,
        loading.elapsed().as_secs_f64()
    );
    let reading_back = Instant::now();
    let next_offsets = next_offsets(&brokers, count);
    eprintln!(
        "{}: a bare consumer reads them back at {:.0} events/s",
        workload.name,
        count as f64 / reading_back.elapsed().as_secs_f64()
    );

    std::fs::write(
        dir.path().join("run.toml"),
        run_config(
            &brokers,
            "throughput",
            Some("bundle"),
            "workers = 1\nmax_keys = 100000",
        ),
    )
    .unwrap();
    let metrics = Metrics::new();
    let handle = daemon::start(
        RunConfig::load(&dir.path().join("run.toml")).unwrap(),
        std::sync::Arc::new(LearnedModels),
        metrics.clone(),
    )
    .unwrap();
    let group = GroupOffsets::new(&brokers, "throughput");
    // Polled in a tight loop: the clock starts at the first event consumed.
    let consumed = || metric_sum(&metrics, "tidewatch_events_consumed_total");
    let waiting = Instant::now();
    while consumed() < 1.0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(120),
            "no event consumed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let started = Instant::now();
    let mut scored_at = None;
    while group.committed("readings", PARTITIONS) != next_offsets {
        assert!(
            started.elapsed() < Duration::from_secs(1200),
            "offsets not committed"
        );
        if scored_at.is_none() && metrics.scored_total() >= count as u64 {
            scored_at = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let committed_at = started.elapsed();
    let scored_at = scored_at.unwrap_or(committed_at);
    let p99 = histogram_quantile(&metrics.render(), "tidewatch_consume_to_flag_seconds", 0.99);
    let flags = metric_sum(&metrics, "tidewatch_flags_produced_total");
    let mean_batch = metric_sum(&metrics, "tidewatch_batch_size_events_sum")
        / metric_sum(&metrics, "tidewatch_batch_size_events_count");
    handle.shutdown();
    handle.join().unwrap();

    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "{} | events {count} | consumed->committed {:.0} events/s ({:.2} s) | consumed->scored {:.0} events/s | mean batch {mean_batch:.0} | flags {flags} | p99 consume->flag {}",
        workload.name,
        rate(committed_at),
        committed_at.as_secs_f64(),
        rate(scored_at),
        p99.map_or("n/a".to_owned(), |s| format!("{:.1} ms", s * 1000.0)),
    );
}

/// Trains the workload's bundle into `bundle`, its stream config beside it.
fn train_bundle(workload: &Workload, dir: &Path, bundle: &Path) {
    let training = dir.join("train.jsonl");
    std::fs::write(&training, &workload.training).unwrap();
    train_file(
        &training,
        &workload.stream,
        ReadOptions::skipping_bad_rows(false),
        bundle,
        Progress::Quiet,
    )
    .unwrap();
    std::fs::write(
        dir.join("stream.toml"),
        toml::to_string(&workload.stream).unwrap(),
    )
    .unwrap();
}

/// One past the last offset of each partition, from reading the topic back
/// (Nisshi's high watermarks lag).
fn next_offsets(brokers: &str, count: usize) -> Vec<i64> {
    let read = support::read_topic(
        brokers,
        "readings",
        PARTITIONS,
        count,
        Duration::from_secs(600),
    );
    assert_eq!(read.len(), count, "events read back");
    support::next_offsets(read.iter().map(|m| (m.partition, m.offset)), PARTITIONS)
}

/// The sum of every sample of a metric family in the text exposition.
fn metric_sum(metrics: &Metrics, name: &str) -> f64 {
    samples(&metrics.render(), name).fold(0.0, |sum, (_, value)| sum + value)
}

/// `(labels, value)` of the samples named exactly `name`.
fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        Some((labels, value.trim().parse().ok()?))
    })
}

/// The `q` quantile of a histogram, interpolated within its bucket as
/// Prometheus' `histogram_quantile` does.
fn histogram_quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let bucket_name = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = samples(text, &bucket_name)
        .filter_map(|(labels, count)| {
            let le = labels.split(',').find_map(|l| l.strip_prefix("le=\""))?;
            let le = le.trim_end_matches('"');
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(bound, count) in &buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(previous.0);
            }
            let share = (rank - previous.1) / (count - previous.1).max(f64::MIN_POSITIVE);
            return Some(previous.0 + (bound - previous.0) * share);
        }
        previous = (bound, count);
    }
    None
}
