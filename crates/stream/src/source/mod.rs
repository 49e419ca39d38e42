//! Where events come from: the stream [`schema`], [`decode`] from raw fields
//! to records, [`json`] fields of a message payload, and [`file`] replay of
//! CSV and JSON Lines.

pub mod decode;
pub mod file;
pub mod json;
pub mod schema;

pub use decode::{Decoder, Record};
pub use schema::Schema;
