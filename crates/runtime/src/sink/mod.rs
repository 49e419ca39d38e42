//! Where verdicts go: the [`alert`] flag record and the [`kafka`] outbox.

pub mod alert;
pub mod kafka;
