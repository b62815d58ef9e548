//! Read-only endpoints: `/v1/status` (what `umbra status` prints), forecasts, transitions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use config::Mode;
use serde::{Deserialize, Serialize};

use super::ApiState;
use crate::board::{PublishedForecast, WorkloadStatus};

/// `GET /v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusReport {
    /// `act` or `observe`.
    pub mode: String,
    /// Every workload.
    pub workloads: Vec<WorkloadReport>,
}

/// One workload in `/v1/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// Name.
    pub name: String,
    /// The shadow weight the controller has set.
    pub shadow_weight: f64,
    /// Migration phase: idle, provisioning, ramping, migrated, returning, rolled_back.
    pub migration_state: String,
    /// Ready shadow instances.
    pub shadow_instances: usize,
    /// Their addresses.
    pub shadow_members: Vec<String>,
    /// What the sizing policy asks for.
    pub planned_instances: u32,
    /// Whether the shadow is at full size.
    pub shadow_warm: bool,
    /// Primary capacity, requests/s.
    pub primary_capacity_rps: f64,
    /// Observed requests/s.
    pub observed_rps: Option<f64>,
    /// Forecast next step (point), requests/s.
    pub forecast_next_rps: Option<f64>,
    /// Highest upper-quantile forecast over the horizon.
    pub forecast_peak_rps: Option<f64>,
    /// Model chosen.
    pub forecast_model: Option<String>,
    /// Its backtest MASE.
    pub forecast_mase: Option<f64>,
    /// What the model combines, with weights (`mstl 0.52`).
    pub forecast_members: Vec<String>,
    /// Interval level of the forecast band.
    pub forecast_level: Option<f64>,
    /// Share of backtest points the band covered when built from the other folds.
    pub forecast_interval_coverage: Option<f64>,
    /// How much the band was widened to cover its level on the backtest.
    pub forecast_interval_scale: Option<f64>,
    /// Signals the forecast used.
    pub signals_used: Vec<String>,
    /// Why the last decision was taken.
    pub last_reason: String,
    /// Observe mode: transitions it would have made.
    pub would_do: Vec<String>,
}

/// Builds the report from the board.
pub fn report(state: &ApiState) -> StatusReport {
    let statuses = state.board.statuses();
    let observed = state.board.observed();
    let workloads = state
        .workloads
        .iter()
        .map(|name| {
            workload_report(
                state,
                name,
                statuses.get(name).cloned().unwrap_or_default(),
                observed.get(name).map(|o| o.rps),
            )
        })
        .collect();
    StatusReport {
        mode: match state.mode {
            Mode::Act => "act",
            Mode::Observe => "observe",
        }
        .into(),
        workloads,
    }
}

/// One workload's report, or `None` if no workload has that name.
pub fn report_one(state: &ApiState, name: &str) -> Option<WorkloadReport> {
    let name = state.workloads.iter().find(|w| *w == name)?;
    let status = state.board.statuses().remove(name).unwrap_or_default();
    let observed = state.board.observed_of(name).map(|o| o.rps);
    Some(workload_report(state, name, status, observed))
}

fn workload_report(
    state: &ApiState,
    name: &str,
    s: WorkloadStatus,
    observed_rps: Option<f64>,
) -> WorkloadReport {
    let f = state.board.demand_forecast(name);
    WorkloadReport {
        name: name.to_string(),
        shadow_weight: s.shadow_weight,
        migration_state: if s.migration_state.is_empty() {
            "idle".into()
        } else {
            s.migration_state
        },
        shadow_instances: s.shadow_instances.len(),
        shadow_members: s.shadow_instances,
        planned_instances: s.planned_instances,
        shadow_warm: s.shadow_warm,
        primary_capacity_rps: s.primary_capacity,
        observed_rps,
        forecast_next_rps: f.as_ref().and_then(|f| f.point.first().copied()),
        forecast_peak_rps: f
            .as_ref()
            .and_then(|f| f.upper.iter().copied().reduce(f64::max)),
        forecast_model: f.as_ref().map(|f| f.model.clone()),
        forecast_mase: f.as_ref().and_then(|f| f.mase),
        forecast_members: f.as_ref().map(|f| f.members.clone()).unwrap_or_default(),
        forecast_level: f.as_ref().map(|f| f.level),
        forecast_interval_coverage: f.as_ref().and_then(|f| f.interval_coverage),
        forecast_interval_scale: f.as_ref().map(|f| f.interval_scale),
        signals_used: f.map(|f| f.signals_used).unwrap_or_default(),
        last_reason: s.last_reason,
        would_do: s.would_do,
    }
}

pub async fn status(State(state): State<Arc<ApiState>>) -> Json<StatusReport> {
    Json(report(&state))
}

pub async fn forecasts(State(state): State<Arc<ApiState>>) -> Json<Vec<PublishedForecast>> {
    Json(state.board.forecasts())
}

#[derive(Deserialize)]
pub struct TransitionsQuery {
    workload: Option<String>,
    limit: Option<usize>,
}

pub async fn transitions(
    State(state): State<Arc<ApiState>>,
    Query(q): Query<TransitionsQuery>,
) -> Response {
    match state
        .store
        .transitions(q.workload.as_deref(), q.limit.unwrap_or(100).min(1000))
    {
        Ok(t) => Json(t).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.encode(),
    )
        .into_response()
}
