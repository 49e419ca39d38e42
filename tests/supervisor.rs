//! A daemon thread that fails stops the whole daemon: here the broker
//! refuses the daemon's dead letter (the daemon may not write to its
//! dead-letter topic), the thread's error reaches the supervisor, the other threads drain, and the
//! process exits non-zero with that error on its last line, instead of
//! living on as a zombie that still answers its health checks.

mod support;

use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

use support::{DaemonProcess, FLAG_EVERY_EVENT_STREAM, flush, producer, run_config, send};

#[test]
fn a_failing_thread_ends_the_daemon_with_its_error() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    for topic in ["readings", "flags", "dead-letters"] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    let config = run_config(&brokers, "supervised", None, "shutdown_timeout_secs = 5");
    std::fs::write(dir.path().join("run.toml"), config).unwrap();

    // Not JSON, so it is dead-lettered, and the broker refuses every
    // message produced from now on.
    let producer = producer(&brokers);
    send(&producer, "readings", "device-1", &[b'x'; 3000]);
    flush(&producer);
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED; 64],
    );

    let log = dir.path().join("daemon.log");
    let mut daemon = DaemonProcess::start(&dir.path().join("run.toml"), &log);
    let status = daemon.wait(Duration::from_secs(60));
    let text = std::fs::read_to_string(&log).unwrap();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    assert!(
        !status.success(),
        "the daemon exited with {status}; log:\n{text}"
    );
    assert!(
        last.starts_with("tidewatch: ") && last.contains("TopicAuthorizationFailed"),
        "last line {last:?}; log:\n{text}"
    );
}
