//! Signal webhooks: CI/CD deployments (generic JSON or GitHub's payload) and social posts.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ApiState;
use crate::ingest::{IngestError, ingest_deployment_webhook, ingest_posts};

// The refusal is the handler's response itself; boxing it would only add an allocation.
#[allow(clippy::result_large_err)]
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), Response> {
    let Some(token) = &state.token else {
        return Err((
            StatusCode::FORBIDDEN,
            Json(json!({"error": "controller.api_token is not configured"})),
        )
            .into_response());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(t) if token.matches(t.trim()) => Ok(()),
        _ => Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({"error": "missing or wrong bearer token"})),
        )
            .into_response()),
    }
}

fn answer(result: Result<Result<usize, IngestError>, tokio::task::JoinError>) -> Response {
    match result {
        Ok(Ok(n)) => (StatusCode::ACCEPTED, Json(json!({ "stored": n }))).into_response(),
        Ok(Err(IngestError::Store(e))) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// `POST /v1/events/deployments`: GitHub's `deployment`/`deployment_status` payload when the
/// `X-GitHub-Event` header is present, else the generic JSON event (or JSON Lines of them).
pub async fn deployments(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    let github = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let store = Arc::clone(&state.store);
    let now = chrono::Utc::now();
    answer(
        tokio::task::spawn_blocking(move || {
            ingest_deployment_webhook(&store, github.as_deref(), &body, now)
        })
        .await,
    )
}

/// `POST /v1/signals/posts`: JSON Lines of `{"timestamp", "text"}`, scored with VADER.
pub async fn posts(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied;
    }
    let store = Arc::clone(&state.store);
    answer(tokio::task::spawn_blocking(move || ingest_posts(&store, &body)).await)
}
