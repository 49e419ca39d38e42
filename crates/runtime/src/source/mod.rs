//! Where the daemon's events come from: [`kafka`] message decoding and
//! rebalances, and the [`offsets`] that may be stored once settled.

pub mod kafka;
pub mod offsets;
