//! Where events come from: the stream [`schema`], [`decode`] from raw fields
//! to records, [`file`] replay of CSV and JSON Lines, [`json`] fields of a
//! Kafka message, [`kafka`] decoding and rebalances, [`offsets`] to commit.

pub mod decode;
pub mod file;
pub mod json;
pub mod kafka;
pub mod offsets;
pub mod schema;

pub use decode::{Decoder, Record};
pub use schema::Schema;
