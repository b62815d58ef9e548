//! The admin API on `admin_listen`: workload state, weight and shadow-pool changes, metrics, health.

mod auth;
mod handlers;
mod view;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;

use crate::state::Shared;

pub use view::{PoolView, RollbackView, UpstreamView, WorkloadView};

/// Admin request bodies are small JSON documents; anything bigger is refused with 413.
const MAX_BODY_BYTES: usize = 64 * 1024;

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
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// The admin server as a Pingora background service, on a listener bound before start-up so
/// a taken port fails the process at once instead of silently running without an admin API.
pub struct AdminService {
    shared: Arc<Shared>,
    listener: std::sync::Mutex<Option<std::net::TcpListener>>,
}

impl AdminService {
    /// Serves on an already bound listener.
    pub fn new(shared: Arc<Shared>, listener: std::net::TcpListener) -> Self {
        AdminService {
            shared,
            listener: std::sync::Mutex::new(Some(listener)),
        }
    }
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let taken = self
            .listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(std_listener) = taken else { return };
        let listener = match std_listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(std_listener))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "admin listener unusable; exiting");
                std::process::exit(1);
            }
        };
        let app = router(Arc::clone(&self.shared));
        let stop = async move {
            // Either a shutdown signal or the sender going away ends the server.
            let _closed = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "admin server failed");
        }
    }
}
