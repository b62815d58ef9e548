//! The JSON shapes the admin API returns (what the controller and operators read).

use std::time::{Duration, SystemTime};

use policies::{GuardState, PoolKind};
use serde::Serialize;

use crate::workload::Workload;

/// One workload.
#[derive(Serialize)]
pub struct WorkloadView {
    /// Name.
    pub name: String,
    /// Current shadow weight, 0..=1.
    pub shadow_weight: f64,
    /// `steady` or `rolled_back`.
    pub state: &'static str,
    /// Priority class.
    pub priority: &'static str,
    /// Whether requests carry no server-side session state.
    pub stateless: bool,
    /// Host patterns (empty = any).
    pub hosts: Vec<String>,
    /// Path prefix.
    pub path_prefix: String,
    /// The most recent automatic rollback, if any.
    pub last_rollback: Option<RollbackView>,
    /// Milliseconds until raising the weight is allowed again (0 when it is).
    pub cooldown_remaining_ms: u64,
    /// Primary pool.
    pub primary: PoolView,
    /// Shadow pool.
    pub shadow: PoolView,
}

/// A rollback.
#[derive(Serialize)]
pub struct RollbackView {
    /// `error_rate`, `p99_ceiling` or `p99_ratio`.
    pub reason: &'static str,
    /// The numbers behind it, in words.
    pub detail: String,
    /// RFC 3339 time.
    pub at: String,
    /// Unix milliseconds.
    pub at_unix_ms: u64,
}

/// One pool's members and recent behaviour.
#[derive(Serialize)]
pub struct PoolView {
    /// Members.
    pub upstreams: Vec<UpstreamView>,
    /// Requests in the guard window.
    pub window_requests: u64,
    /// p99 over the guard window, ms (null when empty).
    pub p99_ms: Option<f64>,
    /// Failed share over the guard window.
    pub error_rate: f64,
}

/// One member.
#[derive(Serialize)]
pub struct UpstreamView {
    /// "ip:port".
    pub address: String,
    /// Takes traffic.
    pub healthy: bool,
    /// Requests outstanding.
    pub in_flight: u32,
}

impl WorkloadView {
    /// The view of `w` at `now_ms`.
    pub fn of(w: &Workload, now_ms: u64) -> Self {
        let spec = w.spec();
        let (state, last) = w.guard_state();
        let pool = |kind: PoolKind| {
            let window = w.window(kind, now_ms);
            PoolView {
                upstreams: w
                    .pool(kind)
                    .members()
                    .iter()
                    .map(|u| UpstreamView {
                        address: u.label().to_string(),
                        healthy: u.healthy(now_ms),
                        in_flight: u.in_flight(),
                    })
                    .collect(),
                window_requests: window.requests,
                p99_ms: window.p99.map(|d| d.as_secs_f64() * 1000.0),
                error_rate: window.error_rate(),
            }
        };
        let cooldown_remaining_ms = match state {
            GuardState::RolledBack { until_ms, .. } => until_ms.saturating_sub(now_ms),
            GuardState::Steady => 0,
        };
        WorkloadView {
            name: w.name().to_string(),
            shadow_weight: w.shadow_weight().get(),
            state: state.as_str(),
            priority: spec.priority.as_str(),
            stateless: spec.stateless,
            hosts: spec
                .hosts
                .iter()
                .map(|h| match h {
                    config::HostPattern::Exact(h) => h.clone(),
                    config::HostPattern::Subdomains(s) => format!("*.{s}"),
                })
                .collect(),
            path_prefix: spec.path_prefix.clone(),
            last_rollback: last.map(|r| RollbackView {
                reason: r.reason.label(),
                detail: r.reason.to_string(),
                at: humantime::format_rfc3339_millis(r.at).to_string(),
                at_unix_ms: r
                    .at
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO)
                    .as_millis() as u64,
            }),
            cooldown_remaining_ms,
            primary: pool(PoolKind::Primary),
            shadow: pool(PoolKind::Shadow),
        }
    }
}
