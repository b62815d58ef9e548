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

/// The edge: listeners, TLS certificates and handshakes, tunnels, drain (`GET /v1/edge`).
#[derive(Serialize)]
pub struct EdgeView {
    /// Plain-text listeners (HTTP/1.1 and h2c).
    pub listen: Vec<String>,
    /// TLS listeners, certificates and handshakes; `None` without `[proxy.tls]`.
    pub tls: Option<TlsView>,
    /// The admin listener.
    pub admin_listen: String,
    /// Client requests and upgraded connections in flight.
    pub in_flight: usize,
    /// Upgraded connections (WebSocket ...) open.
    pub upgraded_connections: i64,
    /// Whether a shutdown or binary upgrade is draining this process.
    pub draining: bool,
    /// Where the access log goes (`None`: off).
    pub access_log: Option<String>,
}

/// TLS termination.
#[derive(Serialize)]
pub struct TlsView {
    /// TLS listeners.
    pub listen: Vec<String>,
    /// Served certificates, the default first.
    pub certificates: Vec<CertificateView>,
    /// Handshakes begun since start.
    pub handshakes_started: u64,
    /// Handshakes completed since start (begun minus completed: failed or in progress).
    pub handshakes_completed: u64,
}

/// One served certificate.
#[derive(Serialize)]
pub struct CertificateView {
    /// Its file.
    pub cert: String,
    /// The DNS names it is chosen for.
    pub names: Vec<String>,
    /// End of validity, `2027-01-31 12:00:00` UTC.
    pub not_after: String,
    /// End of validity, Unix seconds.
    pub not_after_unix: i64,
    /// Whole days left (negative once expired).
    pub expires_in_days: i64,
}

impl EdgeView {
    /// The view of the running process.
    pub fn of(shared: &crate::state::Shared) -> Self {
        let config = shared.config.load();
        let p = &config.proxy;
        let now = crate::clock::unix_now();
        let tls = match (&shared.tls, &p.tls) {
            (Some(state), Some(t)) => {
                let store = state.store();
                Some(TlsView {
                    listen: t.listen.iter().map(ToString::to_string).collect(),
                    certificates: store
                        .certs()
                        .iter()
                        .map(|c| CertificateView {
                            cert: c.cert_path.display().to_string(),
                            names: c.names.clone(),
                            not_after: crate::tls::utc(c.not_after),
                            not_after_unix: c.not_after,
                            expires_in_days: (c.not_after - now).div_euclid(86_400),
                        })
                        .collect(),
                    handshakes_started: shared.metrics.tls_handshakes_started.get(),
                    handshakes_completed: shared.metrics.tls_handshakes.get(),
                })
            }
            _ => None,
        };
        EdgeView {
            listen: p.listen.iter().map(ToString::to_string).collect(),
            tls,
            admin_listen: p.admin_listen.to_string(),
            in_flight: shared.drain.active(),
            upgraded_connections: shared.metrics.upgraded_open.get(),
            draining: shared.drain.is_draining(),
            access_log: p.access_log.as_ref().map(|a| match &a.target {
                config::AccessLogTarget::Stdout => "stdout".to_string(),
                config::AccessLogTarget::File(path) => path.display().to_string(),
            }),
        }
    }
}
