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
    /// Plain-text (HTTP/1.1 and h2c) listeners: one address or a list, e.g. "127.0.0.1:8080"
    /// or ["0.0.0.0:80", "[::]:80"].
    pub listen: Option<OneOrMany>,
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
    /// Unix socket a new binary (`umbra-proxy --upgrade`) receives the listening sockets on.
    pub upgrade_sock: Option<String>,
    /// TLS termination.
    pub tls: Option<RawTls>,
    /// Limits on client connections.
    pub client: Option<RawClient>,
    /// `X-Forwarded-*` / `Forwarded` headers towards upstreams.
    pub forwarded: Option<RawForwarded>,
    /// One line per request.
    pub access_log: Option<RawAccessLog>,
}

/// A string or a list of strings (`listen = "a"` or `listen = ["a", "b"]`).
#[derive(Debug, Clone)]
pub(crate) struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an address string or a list of address strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    out.push(v);
                }
                Ok(OneOrMany(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// `[proxy.tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    /// TLS listeners: one address or a list, e.g. "0.0.0.0:443".
    pub listen: Option<OneOrMany>,
    /// Certificate/key pairs; chosen by SNI, the first is the default.
    pub certificates: Option<Vec<RawCertificate>>,
}

/// One `[[proxy.tls.certificates]]` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificate {
    /// PEM file: the certificate, then its chain.
    pub cert: Option<String>,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<String>,
}

/// `[proxy.client]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    /// How long an idle keep-alive connection is kept, e.g. "60s".
    pub keepalive_timeout: Option<String>,
    /// Requests served on one HTTP/1.1 connection before it is closed; 0 = no limit.
    pub keepalive_requests: Option<u32>,
    /// How long a client may take to send a request's headers, e.g. "10s".
    pub header_timeout: Option<String>,
    /// Largest request header block accepted, in bytes.
    pub max_header_bytes: Option<usize>,
    /// Concurrent streams one HTTP/2 connection may open.
    pub h2_max_concurrent_streams: Option<u32>,
}

/// `[proxy.forwarded]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForwarded {
    /// CIDRs whose `X-Forwarded-For` is kept and extended; anyone else's is replaced.
    pub trusted_proxies: Option<Vec<String>>,
    /// Also send the RFC 7239 `Forwarded` header.
    pub rfc7239: Option<bool>,
}

/// `[proxy.access_log]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessLog {
    /// "stdout" or a file path (reopened on SIGUSR1).
    pub path: Option<String>,
    /// "json" (JSON lines) or "combined" (the Apache/nginx combined format).
    pub format: Option<String>,
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
    /// Answer plain-HTTP requests with a 308 redirect to https.
    pub redirect_https: Option<bool>,
    /// How the proxy speaks to this workload's upstreams: "h1", "h2" (over TLS) or "h2c".
    pub upstream_protocol: Option<String>,
    /// TLS towards the upstreams.
    pub upstream_tls: Option<RawUpstreamTls>,
    /// Headers changed on the way to the upstream.
    pub request_headers: Option<RawHeaderRules>,
    /// Headers changed on the way back to the client.
    pub response_headers: Option<RawHeaderRules>,
}

/// `[workloads.upstream_tls]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTls {
    /// Server name sent (SNI) and verified.
    pub sni: Option<String>,
    /// Verify the upstream's certificate against the system's roots.
    pub verify: Option<bool>,
}

/// `[workloads.request_headers]` / `[workloads.response_headers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHeaderRules {
    /// Replace (or add) these headers.
    pub set: Option<std::collections::BTreeMap<String, String>>,
    /// Append these headers, keeping existing values.
    pub add: Option<std::collections::BTreeMap<String, String>>,
    /// Remove these headers.
    pub remove: Option<Vec<String>>,
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
