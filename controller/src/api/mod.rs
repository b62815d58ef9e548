//! The controller's HTTP API: status, forecasts, decisions, metrics, signal webhooks, and a
//! status page for people.

mod page;
mod status;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use config::{AdminToken, Mode};

use crate::board::Board;
use crate::metrics::ControllerMetrics;
use crate::store::Store;

pub use status::{StatusReport, WorkloadReport};

/// Webhook bodies (a deployment, a batch of posts) are small; bigger is refused with 413.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What handlers read.
pub struct ApiState {
    /// Latest view.
    pub board: Arc<Board>,
    /// State.
    pub store: Arc<Store>,
    /// Metrics.
    pub metrics: Arc<ControllerMetrics>,
    /// Token for mutating calls.
    pub token: Option<AdminToken>,
    /// Act or observe.
    pub mode: Mode,
    /// Workload names in config order.
    pub workloads: Vec<String>,
}

/// The routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/workloads/{name}", get(page::detail))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(status::metrics))
        .route("/v1/status", get(status::status))
        .route("/v1/forecasts", get(status::forecasts))
        .route("/v1/transitions", get(status::transitions))
        .route("/v1/events/deployments", post(webhooks::deployments))
        .route("/v1/signals/posts", post(webhooks::posts))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
