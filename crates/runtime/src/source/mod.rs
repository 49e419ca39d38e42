//! Where the daemon's events come from: [`kafka`] message decoding and
//! rebalances, [`registry`] messages in a Schema Registry's wire format
//! (Avro, Protobuf, JSON Schema), and the [`offsets`] that may be stored
//! once settled.

pub mod kafka;
pub mod offsets;
pub mod registry;
