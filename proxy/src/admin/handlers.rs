//! Admin API handlers: thin translations between HTTP and the workload runtime.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::require_token;
use super::view::workload;
use crate::clock::now_ms;
use crate::reload::reload;
use crate::state::Shared;
use crate::workload::Pool;
use wire::{PoolBody, WeightBody};

type AppState = State<Arc<Shared>>;

/// A JSON error body `{"error": "..."}` with `status`.
pub fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when every traffic listener accepts connections and no drain has begun (a load
/// balancer polling this stops sending new clients before the process goes away).
pub async fn readyz(State(shared): AppState) -> Response {
    if shared.drain.is_draining() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: shutting down or upgrading",
        );
    }
    let listeners: Vec<_> = shared.config.load().proxy.all_listeners().collect();
    for listen in listeners {
        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            tokio::net::TcpStream::connect(listen),
        );
        if !matches!(probe.await, Ok(Ok(_))) {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("listener {listen} not accepting yet"),
            );
        }
    }
    (StatusCode::OK, "ready\n").into_response()
}

pub async fn metrics(State(shared): AppState) -> Response {
    shared.metrics.set_in_flight(shared.drain.active());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.encode(),
    )
        .into_response()
}

pub async fn list(State(shared): AppState) -> Response {
    let table = shared.table.load();
    let now = now_ms();
    let list = wire::WorkloadList {
        workloads: table.workloads().iter().map(|w| workload(w, now)).collect(),
    };
    Json(list).into_response()
}

pub async fn show(State(shared): AppState, Path(name): Path<String>) -> Response {
    let table = shared.table.load();
    match table.workload(&name) {
        Some(w) => Json(workload(w, now_ms())).into_response(),
        None => unknown(&name),
    }
}

/// Live state for a binary upgrade's new process (`crate::handover`).
pub async fn state(State(shared): AppState) -> Response {
    let table = shared.table.load();
    Json(crate::handover::RuntimeState::of(&table, now_ms())).into_response()
}

pub async fn edge(State(shared): AppState) -> Response {
    Json(super::view::EdgeView::of(&shared)).into_response()
}

fn unknown(name: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no workload named {name:?}"))
}

/// 413 for an oversized body, 415 without a JSON content type, otherwise 400 (axum says 422
/// for well-formed JSON of the wrong shape; for a client that is still a bad request).
fn bad_json(rejection: JsonRejection) -> Response {
    let status = match rejection.status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        s => s,
    };
    error(status, rejection.body_text())
}

pub async fn set_weight(
    State(shared): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<WeightBody>, JsonRejection>,
) -> Response {
    if let Err(denied) = require_token(&shared, &headers) {
        return denied;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(r) => return bad_json(r),
    };
    let weight = match body.shadow_weight() {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let table = shared.table.load();
    let Some(w) = table.workload(&name) else {
        return unknown(&name);
    };
    let now = now_ms();
    match w.set_weight(weight, now, "admin") {
        Ok(()) => Json(workload(w, now)).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

pub async fn set_shadow_pool(
    State(shared): AppState,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PoolBody>, JsonRejection>,
) -> Response {
    if let Err(denied) = require_token(&shared, &headers) {
        return denied;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(r) => return bad_json(r),
    };
    let addrs = match body.addresses() {
        Ok(a) => a,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let table = shared.table.load();
    let Some(w) = table.workload(&name) else {
        return unknown(&name);
    };
    let primary = w.pool(policies::PoolKind::Primary);
    if let Some(a) = addrs
        .iter()
        .find(|a| primary.members().iter().any(|m| m.addr() == **a))
    {
        return error(StatusCode::BAD_REQUEST, format!("{a} is a primary member"));
    }
    let registry = shared.registry.load();
    w.replace_shadow(Pool::new(&addrs, &registry, &w.edge().peer));
    Json(workload(w, now_ms())).into_response()
}

pub async fn reload_handler(State(shared): AppState, headers: HeaderMap) -> Response {
    if let Err(denied) = require_token(&shared, &headers) {
        return denied;
    }
    match tokio::task::spawn_blocking(move || reload(&shared, "admin")).await {
        Ok(Ok(summary)) => {
            Json(json!({ "reloaded": true, "workloads": summary.workloads })).into_response()
        }
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
