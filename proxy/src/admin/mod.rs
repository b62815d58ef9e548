//! The admin API on `admin_listen`: workload state, weight and shadow-pool changes, metrics, health.

mod auth;
mod handlers;
mod view;

use std::sync::Arc;

use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::Stream;
use pingora_core::server::ShutdownWatch;

use crate::state::Shared;

pub use view::{CertificateView, EdgeView, TlsView, workload};
pub use wire::{PoolBody, PoolBodyError, WeightBody};

/// Admin request bodies are small JSON documents; anything bigger is refused with 413.
const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest admin request head (request line and headers).
const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Time a client gets to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The admin API's routes.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .route("/v1/workloads", get(handlers::list))
        .route("/v1/workloads/{name}", get(handlers::show))
        .route(
            "/v1/workloads/{name}/shadow-weight",
            put(handlers::set_weight),
        )
        .route(
            "/v1/workloads/{name}/pools/shadow",
            put(handlers::set_shadow_pool),
        )
        .route("/v1/reload", post(handlers::reload_handler))
        .route("/v1/edge", get(handlers::edge))
        .route("/v1/state", get(handlers::state))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// The admin API as a Pingora application: Pingora owns the listener, so a binary upgrade hands
/// the admin socket to the new process with the traffic sockets, and hyper serves each
/// connection with the axum router.
pub struct AdminApp {
    router: Router,
}

impl AdminApp {
    /// Serves `router(shared)`.
    pub fn new(shared: Arc<Shared>) -> Self {
        AdminApp {
            router: router(shared),
        }
    }
}

#[async_trait]
impl ServerApp for AdminApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let service = TowerToHyperService::new(self.router.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let mut conn = std::pin::pin!(conn);
        let mut shutdown = shutdown.clone();
        let result = tokio::select! {
            r = conn.as_mut() => r,
            _ = shutdown.changed() => {
                // Finish the request in progress, then close.
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "admin connection ended with an error");
        }
        None
    }
}
