//! The HTTP endpoint: `/metrics` (Prometheus text format), `/healthz`
//! (the process is alive) and `/readyz` (models loaded, partitions assigned,
//! a broker reachable).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::error::DaemonError;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Readiness,
    shutdown: Shutdown,
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
    let mut problems = state.readiness.problems();
    if state.shutdown.is_requested() {
        // Asked to stop, or a thread failed: traffic should go elsewhere
        // while the rest drains.
        problems.insert(0, "shutting down");
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".to_owned())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", problems.join(", ")),
        )
    }
}

/// The endpoint, bound and ready to serve.
pub struct HttpServer {
    listener: std::net::TcpListener,
    app: Router,
    shutdown: Shutdown,
}

/// Binds `listen`; returns the bound address (useful with port 0) and the
/// server, to be run on a thread of its own.
pub fn bind(
    listen: &str,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: Shutdown,
) -> Result<(SocketAddr, HttpServer), DaemonError> {
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
        .with_state(AppState {
            metrics,
            readiness,
            shutdown: shutdown.clone(),
        });
    Ok((
        address,
        HttpServer {
            listener,
            app,
            shutdown,
        },
    ))
}

impl HttpServer {
    /// Serves until the daemon is asked to stop.
    pub fn run(self) -> Result<(), DaemonError> {
        let HttpServer {
            listener,
            app,
            shutdown,
        } = self;
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
    }
}
