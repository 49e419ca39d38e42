//! Every metric the daemon exports, declared in one place.
//!
//! Names follow `tidewatch_<noun>_<unit>`, counters end in `_total`, and
//! labels stay low-cardinality (`stream`, `topic`, `partition`, `reason`).
//! The methods here are the daemon's internal events: each one counts and,
//! where an operator would want to read about it, logs.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// One stream's numbers, as the status page shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamNumbers {
    pub scored_total: u64,
    pub active_keys: i64,
    /// Summed over the input topic's partitions.
    pub consumer_lag: i64,
    /// Of the last scored event, once there is one.
    pub threshold: Option<f64>,
    /// (upper bound, cumulative count) of the anomaly score histogram.
    pub score_buckets: Vec<(f64, u64)>,
}

/// The daemon's metrics and their registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    events_consumed: IntCounterVec,
    events_scored: IntCounterVec,
    events_dead_lettered: IntCounterVec,
    flags_produced: IntCounterVec,
    produce_errors: IntCounterVec,
    refit_failures: IntCounterVec,
    consume_to_flag: HistogramVec,
    batch_size: HistogramVec,
    anomaly_score: HistogramVec,
    threshold: GaugeVec,
    active_keys: IntGaugeVec,
    key_evictions: IntCounterVec,
    consumer_lag: IntGaugeVec,
    partitions_assigned: IntGauge,
    model_info: IntGaugeVec,
    events_learning: IntCounterVec,
    keys_restored: IntCounterVec,
    keys_restore_refused: IntCounterVec,
    checkpoint_seconds: HistogramVec,
    restore_seconds: HistogramVec,
    state_bytes: IntGaugeVec,
    model_reloads: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

/// The series `metric` has, all of them or those with the label `(name,
/// value)`; reading them creates none.
fn series(
    metric: &impl prometheus::core::Collector,
    label: Option<(&str, &str)>,
) -> Vec<prometheus::proto::Metric> {
    metric
        .collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .filter(|m| {
            label.is_none_or(|(name, value)| {
                m.get_label()
                    .iter()
                    .any(|l| l.name() == name && l.value() == value)
            })
        })
        .cloned()
        .collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let build = gauge(
            &r,
            "tidewatch_build_info",
            "Build of the running tidewatch (always 1).",
            &["version"],
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let partitions_assigned = IntGauge::new(
            "tidewatch_partitions_assigned",
            "Input partitions this daemon consumes.",
        )
        .expect("valid metric");
        r.register(Box::new(partitions_assigned.clone()))
            .expect("unique metric");
        let threshold = GaugeVec::new(
            Opts::new(
                "tidewatch_threshold",
                "Threshold of the most recently scored event, per stream.",
            ),
            &["stream"],
        )
        .expect("valid metric");
        r.register(Box::new(threshold.clone()))
            .expect("unique metric");
        Metrics {
            events_consumed: counter(
                &r,
                "tidewatch_events_consumed_total",
                "Messages read from input topics.",
                &["stream"],
            ),
            events_scored: counter(
                &r,
                "tidewatch_events_scored_total",
                "Events through the detector.",
                &["stream"],
            ),
            events_dead_lettered: counter(
                &r,
                "tidewatch_events_dead_lettered_total",
                "Bad messages sent to the dead-letter topic, by reason.",
                &["stream", "reason"],
            ),
            flags_produced: counter(
                &r,
                "tidewatch_flags_produced_total",
                "Flags acknowledged by the broker.",
                &["stream"],
            ),
            produce_errors: counter(
                &r,
                "tidewatch_produce_errors_total",
                "Failed deliveries (each is retried).",
                &["topic"],
            ),
            refit_failures: counter(
                &r,
                "tidewatch_refit_failures_total",
                "Trainings of an online key's model (first or refit) that failed; the key keeps what it had.",
                &["stream"],
            ),
            consume_to_flag: histogram(
                &r,
                "tidewatch_consume_to_flag_seconds",
                "From reading an event to the broker acknowledging its flag.",
                &["stream"],
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
            batch_size: histogram(
                &r,
                "tidewatch_batch_size_events",
                "Events per scoring micro-batch.",
                &["stream"],
                vec![
                    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                ],
            ),
            anomaly_score: histogram(
                &r,
                "tidewatch_anomaly_score",
                "Anomaly scores of scored events.",
                &["stream"],
                vec![
                    0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99,
                ],
            ),
            threshold,
            active_keys: gauge(
                &r,
                "tidewatch_active_keys",
                "Keys with state, per stream.",
                &["stream"],
            ),
            key_evictions: counter(
                &r,
                "tidewatch_key_evictions_total",
                "Keys forgotten, by reason (ttl, max_keys).",
                &["stream", "reason"],
            ),
            consumer_lag: gauge(
                &r,
                "tidewatch_consumer_lag_messages",
                "Messages between the consumer's position and the end of the partition.",
                &["topic", "partition"],
            ),
            partitions_assigned,
            model_info: gauge(
                &r,
                "tidewatch_model_info",
                "Model each stream scores with (always 1).",
                &["stream", "name", "version"],
            ),
            events_learning: counter(
                &r,
                "tidewatch_events_learning_total",
                "Events absorbed by keys still warming up (learning their model or filling their window): not judged.",
                &["stream"],
            ),
            keys_restored: counter(
                &r,
                "tidewatch_keys_restored_total",
                "Keys given back their state from the changelog on partition assignment.",
                &["stream"],
            ),
            keys_restore_refused: counter(
                &r,
                "tidewatch_keys_restore_refused_total",
                "Changelog records refused (another format version, model or shape, or damaged): the key starts over.",
                &["stream", "reason"],
            ),
            checkpoint_seconds: histogram(
                &r,
                "tidewatch_checkpoint_seconds",
                "Time a worker spends encoding and queueing one checkpoint of its changed keys.",
                &["stream"],
                vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0,
                ],
            ),
            restore_seconds: histogram(
                &r,
                "tidewatch_restore_seconds",
                "Time to read one assigned partition's changelog and queue its keys for restoring, while the daemon is not ready.",
                &["stream"],
                vec![
                    0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                ],
            ),
            state_bytes: gauge(
                &r,
                "tidewatch_state_bytes",
                "Bytes of the last checkpoint record of every key this daemon owns.",
                &["stream"],
            ),
            model_reloads: counter(
                &r,
                "tidewatch_model_reloads_total",
                "Bundle reloads (SIGHUP), by result (loaded, refused).",
                &["stream", "result"],
            ),
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }

    /// Events scored so far, over every stream.
    pub fn scored_total(&self) -> u64 {
        series(&self.events_scored, None)
            .iter()
            .map(|m| m.get_counter().get_value() as u64)
            .sum()
    }

    /// What the status page shows of `stream`, whose input is `topic`.
    pub fn stream_numbers(&self, stream: &str, topic: &str) -> StreamNumbers {
        use prometheus::core::Metric;
        let scored_total = series(&self.events_scored, Some(("stream", stream)))
            .iter()
            .map(|m| m.get_counter().get_value() as u64)
            .sum();
        let consumer_lag = series(&self.consumer_lag, Some(("topic", topic)))
            .iter()
            .map(|m| m.get_gauge().get_value() as i64)
            .sum();
        let scores = self.anomaly_score.with_label_values(&[stream]).metric();
        let histogram = scores.get_histogram();
        let mut score_buckets: Vec<(f64, u64)> = histogram
            .get_bucket()
            .iter()
            .map(|b| (b.upper_bound(), b.cumulative_count()))
            .collect();
        // Scores are at most 1: the last bucket takes the rest.
        score_buckets.push((1.0, histogram.get_sample_count()));
        // Read, not created: a stream that scored nothing has no threshold.
        let threshold = series(&self.threshold, Some(("stream", stream)))
            .first()
            .map(|m| m.get_gauge().get_value())
            .filter(|t| t.is_finite());
        StreamNumbers {
            threshold,
            scored_total,
            active_keys: self.active_keys.with_label_values(&[stream]).get(),
            consumer_lag,
            score_buckets,
        }
    }

    pub fn consumed(&self, stream: &str) {
        self.events_consumed.with_label_values(&[stream]).inc();
    }

    pub fn scored(&self, stream: &str, score: f64, threshold: Option<f64>) {
        self.events_scored.with_label_values(&[stream]).inc();
        if let Some(threshold) = threshold {
            self.anomaly_score
                .with_label_values(&[stream])
                .observe(score);
            self.threshold.with_label_values(&[stream]).set(threshold);
        }
    }

    pub fn dead_lettered(
        &self,
        stream: &str,
        reason: &str,
        topic: &str,
        partition: i32,
        offset: i64,
        detail: &str,
    ) {
        tracing::warn!(
            stream,
            reason,
            topic,
            partition,
            offset,
            detail,
            "bad input sent to the dead-letter topic"
        );
        self.events_dead_lettered
            .with_label_values(&[stream, reason])
            .inc();
    }

    pub fn flag_delivered(&self, stream: &str, consume_to_flag_secs: f64) {
        self.flags_produced.with_label_values(&[stream]).inc();
        self.consume_to_flag
            .with_label_values(&[stream])
            .observe(consume_to_flag_secs);
    }

    pub fn produce_failed(&self, topic: &str, error: &str) {
        tracing::warn!(topic, error, "delivery failed; retrying");
        self.produce_errors.with_label_values(&[topic]).inc();
    }

    pub fn refit_failed(&self, stream: &str) {
        self.refit_failures.with_label_values(&[stream]).inc();
    }

    pub fn batch(&self, stream: &str, events: usize) {
        self.batch_size
            .with_label_values(&[stream])
            .observe(events as f64);
    }

    /// One worker's keys of `stream` changed by `active_change`; the gauge
    /// sums every worker's.
    pub fn keys(
        &self,
        stream: &str,
        active_change: i64,
        evicted_ttl: usize,
        evicted_max_keys: usize,
    ) {
        self.active_keys
            .with_label_values(&[stream])
            .add(active_change);
        if evicted_ttl > 0 {
            self.key_evictions
                .with_label_values(&[stream, "ttl"])
                .inc_by(evicted_ttl as u64);
        }
        if evicted_max_keys > 0 {
            self.key_evictions
                .with_label_values(&[stream, "max_keys"])
                .inc_by(evicted_max_keys as u64);
        }
    }

    pub fn lag(&self, topic: &str, partition: i32, lag: i64) {
        self.consumer_lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag.max(0));
    }

    pub fn partitions(&self, assigned: usize) {
        self.partitions_assigned.set(assigned as i64);
    }

    pub fn model(&self, stream: &str, name: &str, version: &str) {
        self.model_info
            .with_label_values(&[stream, name, version])
            .set(1);
    }

    /// Creates `stream`'s counters at zero, so that dashboards and alerts
    /// see a series before the first restore, refusal or reload.
    pub fn stream(&self, stream: &str, changelog: bool) {
        self.events_learning.with_label_values(&[stream]);
        for result in ["loaded", "refused"] {
            self.model_reloads.with_label_values(&[stream, result]);
        }
        if changelog {
            self.keys_restored.with_label_values(&[stream]);
            self.state_bytes.with_label_values(&[stream]);
            for reason in tidewatch_stream::checkpoint::CheckpointError::REASONS {
                self.keys_restore_refused
                    .with_label_values(&[stream, reason]);
            }
        }
    }

    pub fn restore_took(&self, stream: &str, seconds: f64) {
        self.restore_seconds
            .with_label_values(&[stream])
            .observe(seconds);
    }

    /// The stream now scores with `name`/`version` instead of `previous`.
    pub fn model_reloaded(&self, stream: &str, previous: (&str, &str), name: &str, version: &str) {
        let _ = self
            .model_info
            .remove_label_values(&[stream, previous.0, previous.1]);
        self.model(stream, name, version);
        self.model_reloads
            .with_label_values(&[stream, "loaded"])
            .inc();
    }

    pub fn model_reload_refused(&self, stream: &str) {
        self.model_reloads
            .with_label_values(&[stream, "refused"])
            .inc();
    }

    pub fn learning(&self, stream: &str, events: usize) {
        if events > 0 {
            self.events_learning
                .with_label_values(&[stream])
                .inc_by(events as u64);
        }
    }

    pub fn restored(&self, stream: &str) {
        self.keys_restored.with_label_values(&[stream]).inc();
    }

    pub fn restore_refused(&self, stream: &str, reason: &str) {
        self.keys_restore_refused
            .with_label_values(&[stream, reason])
            .inc();
    }

    pub fn checkpointed(&self, stream: &str, seconds: f64) {
        self.checkpoint_seconds
            .with_label_values(&[stream])
            .observe(seconds);
    }

    /// The stream's state grew by `delta` bytes (negative: it shrank).
    pub fn state_bytes(&self, stream: &str, delta: i64) {
        if delta != 0 {
            self.state_bytes.with_label_values(&[stream]).add(delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_format() {
        let metrics = Metrics::new();
        metrics.consumed("pump");
        metrics.scored("pump", 0.3, Some(0.85));
        metrics.dead_lettered("pump", "not_json", "in", 0, 7, "bad");
        metrics.model("pump", "pump", "abc123");
        let text = metrics.render();
        for line in [
            "tidewatch_events_consumed_total{stream=\"pump\"} 1",
            "tidewatch_events_dead_lettered_total{reason=\"not_json\",stream=\"pump\"} 1",
            "tidewatch_threshold{stream=\"pump\"} 0.85",
            "tidewatch_model_info{name=\"pump\",stream=\"pump\",version=\"abc123\"} 1",
            "tidewatch_anomaly_score_bucket{stream=\"pump\",le=\"0.4\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.contains(&format!(
            "tidewatch_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )));
    }
}
