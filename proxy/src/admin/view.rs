//! The JSON shapes the admin API returns (what the controller and operators read).

use std::time::{Duration, SystemTime};

use policies::{GuardState, PoolKind, RollbackReason};
use serde::Serialize;

use crate::workload::Workload;

/// One workload in the wire contract's terms, at `now_ms`.
pub fn workload(w: &Workload, now_ms: u64) -> wire::Workload {
    let spec = w.spec();
    let (state, last) = w.guard_state();
    let pool = |kind: PoolKind| {
        let window = w.window(kind, now_ms);
        wire::Pool {
            upstreams: w
                .pool(kind)
                .members()
                .iter()
                .map(|u| wire::Upstream {
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
    let (status, cooldown_remaining_ms) = match state {
        GuardState::RolledBack { until_ms, .. } => (
            wire::GuardStatus::RolledBack,
            until_ms.saturating_sub(now_ms),
        ),
        GuardState::Steady => (wire::GuardStatus::Steady, 0),
    };
    wire::Workload {
        name: w.name().to_string(),
        shadow_weight: w.shadow_weight().get(),
        state: status,
        priority: spec.priority,
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
        last_rollback: last.map(|r| wire::Rollback {
            reason: match r.reason {
                RollbackReason::ErrorRate { .. } => wire::RollbackCause::ErrorRate,
                RollbackReason::P99Ceiling { .. } => wire::RollbackCause::P99Ceiling,
                RollbackReason::P99Ratio { .. } => wire::RollbackCause::P99Ratio,
            },
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
