//! Where results go: the [`alert`] flag schema and the [`kafka`] producer
//! for flags and dead letters.

pub mod alert;
pub mod kafka;
