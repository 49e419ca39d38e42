//! A stream's state changelog on a real broker (Nisshi, installed by
//! scripts/test.sh): a partition reads back as each key's last record,
//! tombstones forget keys, and the other partitions stay apart.

mod support;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseRecord, Producer};
use tidewatch_runtime::changelog::{ChangelogError, Topics, read_partition};

use support::{Nisshi, producer};

const TOPIC: &str = "pump-state";

#[test]
fn a_partition_reads_back_as_each_keys_last_record() {
    let broker = Nisshi::start();
    broker.create_topic(TOPIC, 2);
    let producer = producer(&broker.brokers());
    let to = |partition: i32, key: &'static str, payload: Option<&'static [u8]>| {
        let record = BaseRecord::<str, [u8]>::to(TOPIC)
            .partition(partition)
            .key(key);
        let record = match payload {
            Some(payload) => record.payload(payload),
            None => record,
        };
        producer.send(record).map_err(|(e, _)| e).unwrap();
    };
    to(0, "pump-1", Some(b"first"));
    to(0, "pump-2", Some(b"two"));
    to(0, "pump-1", Some(b"second"));
    to(0, "pump-3", Some(b"three"));
    // A tombstone: pump-3 was evicted.
    to(0, "pump-3", None);
    to(1, "pump-4", Some(b"other partition"));
    producer.flush(Duration::from_secs(30)).unwrap();

    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", broker.brokers());
    let keys = read_partition(&client, TOPIC, 0, Duration::from_secs(30)).unwrap();
    let mut read: Vec<(&str, &[u8])> = keys
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    read.sort();
    assert_eq!(read, [("pump-1", &b"second"[..]), ("pump-2", &b"two"[..])]);

    let other = read_partition(&client, TOPIC, 1, Duration::from_secs(30)).unwrap();
    assert_eq!(other.len(), 1);
    broker.create_topic("empty-state", 1);
    assert!(
        read_partition(&client, "empty-state", 0, Duration::from_secs(30))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_changelog_is_created_with_the_inputs_partitions_once() {
    let broker = Nisshi::start();
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", broker.brokers());
    let timeout = Duration::from_secs(30);
    let ensure = |partitions| {
        Topics::connect(&client, timeout)
            .unwrap()
            .ensure_changelog(TOPIC, partitions)
    };
    ensure(3).unwrap();
    // A second daemon finds it there.
    ensure(3).unwrap();
    let consumer: rdkafka::consumer::BaseConsumer = client.create().unwrap();
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, Some(TOPIC), timeout).unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
    // One of another partition count is refused, naming the counts.
    let error = ensure(4).unwrap_err();
    assert!(
        matches!(
            error,
            ChangelogError::Partitions {
                found: 3,
                expected: 4,
                ..
            }
        ),
        "{error}"
    );
}
