//! The HTTP endpoint: `/metrics` (Prometheus text format), `/healthz`
//! (the process is alive), `/readyz` (models loaded, partitions assigned
//! and their keys restored, a broker reachable), and the status page `/`
//! with its data, `/api/status`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse};
use axum::routing::get;

use crate::error::DaemonError;
use crate::metrics::Metrics;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;
use crate::status::{PAGE, StatusBoard};

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Readiness,
    shutdown: Shutdown,
    board: StatusBoard,
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let status = state.board.status(&state.metrics);
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&status).expect("the status serialises"),
    )
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
    /// Raised once everything else has stopped.
    closing: Shutdown,
}

/// Binds `listen`; returns the bound address (useful with port 0) and the
/// server, to be run on a thread of its own. `/readyz` fails from the
/// moment `shutdown` is raised; the server stops when `closing` is.
pub fn bind(
    listen: &str,
    metrics: Metrics,
    readiness: Readiness,
    board: StatusBoard,
    shutdown: Shutdown,
    closing: Shutdown,
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
        .route("/", get(page))
        .route("/api/status", get(status))
        .route("/metrics", get(self::metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            metrics,
            readiness,
            shutdown,
            board,
        });
    Ok((
        address,
        HttpServer {
            listener,
            app,
            closing,
        },
    ))
}

impl HttpServer {
    /// Serves until `closing`.
    pub fn run(self) -> Result<(), DaemonError> {
        let HttpServer {
            listener,
            app,
            closing,
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
                    while !closing.is_requested() {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                })
                .await
                .map_err(|e| DaemonError::Thread(e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::mpsc;

    use super::*;
    use crate::supervisor::Supervisor;

    fn get(address: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = TcpStream::connect(address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: tidewatch\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, response)
    }

    #[test]
    fn readyz_fails_while_the_rest_drains_and_http_stops_last() {
        let shutdown = Shutdown::new();
        let mut supervisor = Supervisor::new(shutdown.clone());
        let readiness = Readiness::default();
        readiness.set_models_loaded();
        readiness.set_partitions(1);
        let (address, server) = bind(
            "127.0.0.1:0",
            Metrics::new(),
            readiness,
            StatusBoard::default(),
            shutdown.clone(),
            supervisor.closing(),
        )
        .unwrap();
        supervisor
            .spawn_service("http", Some(server), |server| {
                server.take().expect("runs once").run()
            })
            .unwrap();
        // A thread that drains until it is released.
        let (release, drained) = mpsc::channel::<()>();
        let asked = shutdown.clone();
        supervisor
            .spawn("draining", (), move |_| {
                while !asked.is_requested() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = drained.recv();
                Ok(())
            })
            .unwrap();

        assert_eq!(get(address, "/readyz").0, 200);
        shutdown.request();
        let (status, body) = get(address, "/readyz");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("not ready: shutting down"), "{body}");
        assert_eq!(get(address, "/healthz").0, 200);
        drop(release);
        supervisor.join().unwrap();
        assert!(TcpStream::connect(address).is_err(), "still serving");
    }
}
