//! What `/readyz` answers, kept where the consumer, the supervisor and the
//! HTTP endpoint can all reach it without reaching each other.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What `/readyz` checks, updated by the daemon's threads.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    inner: Arc<ReadinessState>,
}

#[derive(Debug, Default)]
struct ReadinessState {
    models_loaded: AtomicBool,
    partitions: AtomicUsize,
    broker_up: AtomicBool,
    /// Key checkpoints read from a changelog and not yet restored.
    restoring: AtomicUsize,
}

impl Readiness {
    pub fn set_models_loaded(&self) {
        self.inner.models_loaded.store(true, Ordering::SeqCst);
    }

    pub fn set_partitions(&self, assigned: usize) {
        self.inner.partitions.store(assigned, Ordering::SeqCst);
        if assigned > 0 {
            // An assignment comes from the group coordinator: a broker answered.
            self.set_broker_up(true);
        }
    }

    pub fn set_broker_up(&self, up: bool) {
        self.inner.broker_up.store(up, Ordering::SeqCst);
    }

    pub fn restoring(&self, keys: usize) {
        self.inner.restoring.fetch_add(keys, Ordering::SeqCst);
    }

    pub fn restored(&self) {
        self.inner.restoring.fetch_sub(1, Ordering::SeqCst);
    }

    /// The reasons the daemon is not ready, if any.
    pub fn problems(&self) -> Vec<&'static str> {
        let state = &self.inner;
        let mut problems = Vec::new();
        if !state.models_loaded.load(Ordering::SeqCst) {
            problems.push("models not loaded");
        }
        if state.partitions.load(Ordering::SeqCst) == 0 {
            problems.push("no partitions assigned");
        }
        if !state.broker_up.load(Ordering::SeqCst) {
            problems.push("no broker reachable");
        }
        if state.restoring.load(Ordering::SeqCst) > 0 {
            problems.push("restoring key state");
        }
        problems
    }
}
