//! The file's shape as serde sees it: strict (`deny_unknown_fields`), unvalidated, all optional.
//!
//! Defaults and invariants live in the validated types (`proxy.rs`, `workload.rs`), not here.

use serde::Deserialize;

/// A whole `umbra.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    /// The edge proxy's listeners, limits and timeouts.
    #[serde(default)]
    pub proxy: RawProxy,
    /// The workloads the proxy routes, in any order (longest match wins).
    #[serde(default)]
    pub workloads: Vec<RawWorkload>,
    /// The control plane (`umbra`); the proxy ignores it.
    pub controller: Option<crate::controller::RawController>,
}

/// `[proxy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxy {
    /// Address for client traffic, e.g. "127.0.0.1:8080".
    pub listen: Option<String>,
    /// Address for the admin API, metrics and health; loopback by default.
    pub admin_listen: Option<String>,
    /// Bearer token for mutating admin calls: a literal or `env:NAME`.
    pub admin_token: Option<String>,
    /// Worker threads for the proxy service.
    pub threads: Option<usize>,
    /// Add `x-umbra-pool: primary|shadow` to responses (debugging).
    pub pool_header: Option<bool>,
    /// Largest request body accepted from clients, in bytes.
    pub max_request_body_bytes: Option<u64>,
    /// How long in-flight requests get to finish on shutdown, e.g. "5s".
    pub shutdown_grace: Option<String>,
    /// Re-read the config file when it changes on disk (SIGHUP always works).
    pub watch_config: Option<bool>,
    /// Upstream timeouts.
    pub timeouts: Option<RawTimeouts>,
    /// Priority shedding.
    pub admission: Option<RawAdmission>,
    /// Active health checks and passive ejection.
    pub health: Option<RawHealth>,
}

/// `[proxy.timeouts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    /// TCP connect to an upstream, e.g. "1s".
    pub connect: Option<String>,
    /// Wait for the upstream's response headers or next body chunk, e.g. "30s".
    pub read: Option<String>,
    /// Wait to write to the upstream, e.g. "30s".
    pub write: Option<String>,
    /// Idle upstream keep-alive connections are closed after this, e.g. "60s".
    pub idle: Option<String>,
}

/// `[proxy.admission]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAdmission {
    /// In-flight requests one upstream may hold; a pool's budget is this times its healthy members.
    pub upstream_max_in_flight: Option<u64>,
    /// Value of `Retry-After` on shed requests, e.g. "1s".
    pub retry_after: Option<String>,
    /// Share of the budget the `low` class may use.
    pub low: Option<f64>,
    /// Share of the budget the `normal` class may use.
    pub normal: Option<f64>,
    /// Share of the budget the `high` class may use.
    pub high: Option<f64>,
    /// Share of the budget the `critical` class may use.
    pub critical: Option<f64>,
}

/// `[proxy.health]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    /// How often each upstream is checked, e.g. "1s".
    pub interval: Option<String>,
    /// Per-check timeout, e.g. "500ms".
    pub timeout: Option<String>,
    /// HTTP path to GET (2xx/3xx = healthy); absent means a TCP connect check.
    pub path: Option<String>,
    /// Consecutive failed checks before an upstream is marked unhealthy.
    pub unhealthy_after: Option<u32>,
    /// Consecutive passed checks before it is healthy again.
    pub healthy_after: Option<u32>,
    /// How long a connect failure on live traffic ejects an upstream, e.g. "5s".
    pub ejection: Option<String>,
}

/// `[[workloads]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    /// Unique name: lowercase letters, digits, `-` and `_`.
    pub name: Option<String>,
    /// Host names this workload answers (`*.example.com` allowed); empty or absent = any host.
    pub hosts: Option<Vec<String>>,
    /// Path prefix this workload answers, starting with `/`.
    pub path_prefix: Option<String>,
    /// `critical | high | normal | low`.
    pub priority: Option<String>,
    /// Whether requests carry no server-side session state.
    pub stateless: Option<bool>,
    /// Stateful workloads: the application's session cookie; requests carrying it stay on
    /// primary while traffic moves (existing sessions are not broken).
    pub session_cookie: Option<String>,
    /// Share of requests sent to the shadow pool, 0..=1.
    pub shadow_weight: Option<f64>,
    /// Primary pool members, "ip:port" or "host:port".
    pub primary: Option<Vec<String>>,
    /// Shadow pool members, "ip:port" or "host:port".
    pub shadow: Option<Vec<String>>,
    /// Latency-based automatic rollback.
    pub guard: Option<RawGuard>,
    /// Name of the policy file (`<policy_dir>/<name>.toml`) the controller applies.
    pub policy: Option<String>,
    /// How to run an instance of this workload (for the controller's provisioner).
    pub instance: Option<crate::controller::RawInstance>,
}

/// `[workloads.guard]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGuard {
    /// Sliding window the guard judges, e.g. "2s".
    pub window: Option<String>,
    /// Shadow requests the window must hold before a verdict.
    pub min_requests: Option<u64>,
    /// Absolute shadow p99 ceiling in milliseconds.
    pub max_p99_ms: Option<f64>,
    /// Ceiling on shadow p99 / primary p99.
    pub max_p99_ratio: Option<f64>,
    /// The ratio is only checked when the shadow p99 is above this many milliseconds.
    pub p99_ratio_floor_ms: Option<f64>,
    /// Ceiling on the shadow's failed-request share.
    pub max_error_rate: Option<f64>,
    /// After a rollback, how long raising the weight is refused, e.g. "30s".
    pub cooldown: Option<String>,
    /// How often the guard evaluates, e.g. "50ms".
    pub interval: Option<String>,
}
