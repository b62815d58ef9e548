//! `umbra backend`: an example HTTP service with a real capacity limit, for `umbra up` and the
//! demo. Requests queue for a serial "worker" that takes `1/capacity` s each (a D/1 queue), so
//! latency stays flat below capacity and climbs once demand exceeds it, like a real service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde::Deserialize;
use tokio::sync::Mutex;

/// Settings of one backend.
#[derive(Clone, Debug, clap::Args)]
pub struct BackendArgs {
    /// Address to listen on, e.g. 127.0.0.1:7001.
    #[arg(long)]
    pub listen: SocketAddr,
    /// Requests per second it can serve.
    #[arg(long, default_value_t = 50.0)]
    pub capacity: f64,
    /// Name it answers with.
    #[arg(long, default_value = "backend")]
    pub name: String,
    /// Fixed latency added to every request, ms.
    #[arg(long, default_value_t = 2)]
    pub base_latency_ms: u64,
    /// Requests that would wait longer than this are answered 503 at once, ms.
    #[arg(long, default_value_t = 5000)]
    pub max_queue_ms: u64,
}

struct Backend {
    args: BackendArgs,
    service: Duration,
    /// When the worker is next free.
    next_free: Mutex<Instant>,
    fault: Mutex<Fault>,
}

#[derive(Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fault {
    /// Extra delay on every request, ms.
    #[serde(default)]
    delay_ms: u64,
    /// Status to answer with instead of 200 (0 = none).
    #[serde(default)]
    status: u16,
}

/// Serves until the process is stopped.
pub async fn run(args: BackendArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.capacity > 0.0 && args.capacity.is_finite(),
        "--capacity must be a positive number"
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let state = Arc::new(Backend {
        service: Duration::from_secs_f64(1.0 / args.capacity),
        next_free: Mutex::new(Instant::now()),
        fault: Mutex::new(Fault::default()),
        args,
    });
    tracing::info!(listen = %state.args.listen, capacity = state.args.capacity, "backend serving");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/_umbra/fault", put(set_fault))
        .fallback(serve)
        .with_state(state);
    // A shadow instance is stopped with SIGTERM when its pool shrinks (after a rollback, say):
    // requests already on it finish instead of failing the clients that sent them.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            term.recv().await;
            tracing::info!("SIGTERM: finishing requests in flight, then exiting");
        })
        .await?;
    Ok(())
}

async fn serve(State(b): State<Arc<Backend>>) -> Response {
    let now = Instant::now();
    let start = {
        let mut next = b.next_free.lock().await;
        let start = (*next).max(now);
        if start.duration_since(now) > Duration::from_millis(b.args.max_queue_ms) {
            return (StatusCode::SERVICE_UNAVAILABLE, "overloaded\n").into_response();
        }
        *next = start + b.service;
        start
    };
    let fault = *b.fault.lock().await;
    let done = start + b.service + Duration::from_millis(b.args.base_latency_ms + fault.delay_ms);
    tokio::time::sleep_until(done.into()).await;
    let status = StatusCode::from_u16(fault.status)
        .ok()
        .filter(|_| fault.status != 0)
        .unwrap_or(StatusCode::OK);
    (status, format!("{}\n", b.args.name)).into_response()
}

/// `PUT /_umbra/fault {"delay_ms": 300, "status": 500}`: break this instance on purpose (demo,
/// tests). Loopback-only by construction: backends listen on loopback.
async fn set_fault(
    State(b): State<Arc<Backend>>,
    axum::Json(f): axum::Json<Fault>,
) -> &'static str {
    *b.fault.lock().await = f;
    tracing::warn!(delay_ms = f.delay_ms, status = f.status, "fault injected");
    "ok\n"
}
