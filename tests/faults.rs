//! Fault injection on librdkafka's mock cluster: the broker goes down for a
//! few seconds and produce requests fail while the daemon scores a stream
//! in which every scored event raises a flag. No event may be lost: each
//! key's flags cover every one of its events from its first scored one on,
//! and once the broker is back everything gets committed.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use tidewatch::models::LearnedModels;
use tidewatch::simulate::simulate_readings;
use tidewatch_runtime::config::RunConfig;
use tidewatch_runtime::daemon;
use tidewatch_runtime::metrics::Metrics;
use tidewatch_runtime::sink::alert::Flag;

use support::{
    FLAG_EVERY_EVENT_STREAM, committed_offsets, next_offsets, produce_readings, read_topic,
    run_config, wait_for,
};

const EVENTS: usize = 6000;

#[test]
fn broker_outage_and_produce_errors_lose_no_event() {
    let cluster = MockCluster::new(1).unwrap();
    let brokers = cluster.bootstrap_servers();
    for (topic, partitions) in [("readings", 3), ("flags", 1), ("dead-letters", 1)] {
        cluster.create_topic(topic, partitions, 1).unwrap();
    }
    let (readings, _) = simulate_readings(6, EVENTS / 6, 200, 5);
    produce_readings(&brokers, "readings", &readings, Duration::ZERO);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("stream.toml"), FLAG_EVERY_EVENT_STREAM).unwrap();
    std::fs::write(
        dir.path().join("run.toml"),
        run_config(
            &brokers,
            "faults",
            None,
            "workers = 2\nmax_batch_events = 32",
        ),
    )
    .unwrap();
    let config = RunConfig::load(&dir.path().join("run.toml")).unwrap();
    let metrics = Metrics::new();
    let handle = daemon::start(config, Arc::new(LearnedModels), metrics.clone()).unwrap();

    wait_for(
        Duration::from_secs(120),
        "a first share to be scored",
        || metrics.scored_total() >= 1000,
    );
    // Failed produce requests (each error answers one request), then the
    // broker gone for a few seconds mid-stream.
    cluster.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE,
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ]
        .repeat(5),
    );
    cluster.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    cluster.broker_up(1).unwrap();

    wait_for(Duration::from_secs(240), "every event to be scored", || {
        metrics.scored_total() >= EVENTS as u64
    });
    let inputs = read_topic(&brokers, "readings", 3, EVENTS, Duration::from_secs(60));
    assert_eq!(inputs.len(), EVENTS);
    // The outage outlasted the group session: the daemon rejoins, re-reads
    // what it had not committed and commits everything.
    let next_offsets = next_offsets(inputs.iter().map(|m| (m.partition, m.offset)), 3);
    wait_for(
        Duration::from_secs(120),
        "everything to be committed",
        || committed_offsets(&brokers, "faults", "readings", 3) == next_offsets,
    );
    handle.shutdown();
    handle.join().unwrap();

    // Each key's events in order, and the ones that raised a flag.
    let mut events_of: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for message in &inputs {
        let key = message.key.clone().expect("keyed input");
        events_of
            .entry(key)
            .or_default()
            .push((message.partition, message.offset));
    }
    let flags = read_topic(&brokers, "flags", 1, usize::MAX, Duration::from_secs(15));
    let flagged: BTreeSet<(i32, i64)> = flags
        .iter()
        .map(|m| {
            let flag: Flag = m.json();
            (flag.source.partition, flag.source.offset)
        })
        .collect();
    for (key, events) in &events_of {
        let first = events
            .iter()
            .position(|e| flagged.contains(e))
            .unwrap_or_else(|| panic!("{key}: no flag at all"));
        assert!(first <= 100, "{key}: first flag at its event {first}");
        let lost: Vec<_> = events[first..]
            .iter()
            .filter(|e| !flagged.contains(e))
            .take(5)
            .collect();
        assert!(
            lost.is_empty(),
            "{key}: events without their flag: {lost:?}"
        );
    }

    assert_eq!(
        committed_offsets(&brokers, "faults", "readings", 3),
        next_offsets,
        "still committed after shutdown"
    );
}
