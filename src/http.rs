//! The HTTP endpoint: `/metrics` (Prometheus text format), `/healthz`
//! (the process is alive) and `/readyz` (models loaded, partitions assigned,
//! a broker reachable).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::daemon::DaemonError;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

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
        problems
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Readiness,
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let problems = state.readiness.problems();
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join(", ")),
        )
    }
}

/// Serves the endpoint on its own thread until `shutdown`; returns the
/// bound address (useful with port 0).
pub fn serve(
    listen: &str,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: Shutdown,
) -> Result<(SocketAddr, JoinHandle<Result<(), DaemonError>>), DaemonError> {
    let http_error = |message: String| DaemonError::Http {
        address: listen.to_owned(),
        message,
    };
    let listener = std::net::TcpListener::bind(listen).map_err(|e| http_error(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| http_error(e.to_string()))?;
    let address = listener
        .local_addr()
        .map_err(|e| http_error(e.to_string()))?;
    let app = Router::new()
        .route("/metrics", get(self::metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, readiness });
    let thread = std::thread::Builder::new()
        .name("tidewatch-http".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| DaemonError::Thread(e.to_string()))?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .map_err(|e| DaemonError::Thread(e.to_string()))?;
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        while !shutdown.is_requested() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    })
                    .await
                    .map_err(|e| DaemonError::Thread(e.to_string()))
            })
        })
        .map_err(|e| DaemonError::Thread(e.to_string()))?;
    Ok((address, thread))
}
