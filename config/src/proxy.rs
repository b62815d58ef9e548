//! `[proxy]` validated: listeners, admin token, timeouts, admission and health-check settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use policies::AdmissionShares;

use crate::edge::{self, AccessLogSettings, ClientLimits, ForwardedSettings, TlsSettings};
use crate::error::{FieldPath, Invalid};
use crate::raw::{RawAdmission, RawHealth, RawProxy, RawTimeouts};
use crate::values::{duration, socket_addr};

/// The proxy's process-wide settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ProxySettings {
    /// Plain-text listeners (HTTP/1.1 and h2c on the same port). Default `127.0.0.1:8080`;
    /// may be empty when `tls` listens.
    pub listen: Vec<SocketAddr>,
    /// Admin API listener. Default `127.0.0.1:9901` (loopback: never exposed by accident).
    pub admin_listen: SocketAddr,
    /// Bearer token every mutating admin call must carry; `None` makes the admin API read-only.
    pub admin_token: Option<AdminToken>,
    /// Worker threads. Default: one per available core.
    pub threads: usize,
    /// Add `x-umbra-pool` to responses. Default off.
    pub pool_header: bool,
    /// Largest request body accepted, bytes. Default 10 MiB; larger bodies get 413.
    pub max_request_body_bytes: u64,
    /// Time in-flight requests get on shutdown. Default 5 s.
    pub shutdown_grace: Duration,
    /// Reload when the file changes on disk. Default on.
    pub watch_config: bool,
    /// Upstream timeouts.
    pub timeouts: Timeouts,
    /// Priority shedding.
    pub admission: AdmissionSettings,
    /// Health checks and ejection.
    pub health: HealthSettings,
    /// Where a new binary started with `--upgrade` receives the listening sockets. Default
    /// `/tmp/umbra-proxy-<port of the first listener>.upgrade.sock`.
    pub upgrade_sock: PathBuf,
    /// TLS termination; `None` = plain listeners only.
    pub tls: Option<TlsSettings>,
    /// Limits on client connections.
    pub client: ClientLimits,
    /// `X-Forwarded-*` / `Forwarded` towards upstreams.
    pub forwarded: ForwardedSettings,
    /// The access log; `None` (default) = off.
    pub access_log: Option<AccessLogSettings>,
}

impl ProxySettings {
    /// Every client listener, plain then TLS.
    pub fn all_listeners(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.listen
            .iter()
            .chain(self.tls.iter().flat_map(|t| t.listen.iter()))
            .copied()
    }

    /// The address a local client reaches the proxy on: the first plain listener, else the
    /// first TLS one. With an unspecified IP (`0.0.0.0`, `::`) it is the loopback of that family.
    pub fn local_address(&self) -> SocketAddr {
        let mut addr = self
            .all_listeners()
            .next()
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        addr
    }
}

/// Upstream timeouts; a timeout answers the client 504.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP connect. Default 1 s.
    pub connect: Duration,
    /// Response headers / next body chunk. Default 30 s.
    pub read: Duration,
    /// Writing the request upstream. Default 30 s.
    pub write: Duration,
    /// Idle keep-alive connections to upstreams are closed after this. Default 60 s.
    pub idle: Duration,
}

/// How much concurrent work each pool takes, and how it is shared by priority.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdmissionSettings {
    /// In-flight requests per upstream; a pool's budget is this times its healthy members.
    /// Default 512; 0 disables shedding.
    pub upstream_max_in_flight: u64,
    /// `Retry-After` on shed requests. Default 1 s.
    pub retry_after: Duration,
    /// Share of the budget per class. Default low 0.5, normal 0.7, high 0.9, critical 1.0.
    pub shares: AdmissionShares,
}

/// Active health checks and passive ejection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSettings {
    /// Check period. Default 1 s.
    pub interval: Duration,
    /// Check timeout. Default 500 ms.
    pub timeout: Duration,
    /// GET this path and expect 2xx/3xx; `None` (default) checks that TCP connect succeeds.
    pub path: Option<String>,
    /// Consecutive failures before unhealthy. Default 2.
    pub unhealthy_after: u32,
    /// Consecutive successes before healthy again. Default 1.
    pub healthy_after: u32,
    /// Ejection after a connect failure on live traffic. Default 5 s.
    pub ejection: Duration,
}

/// A secret compared in constant time and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// Wraps a token; empty tokens are refused by validation before this.
    pub fn new(token: impl Into<String>) -> Self {
        AdminToken(token.into())
    }

    /// The secret itself, to present it to another service (never log it).
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Whether `candidate` equals the token, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

pub(crate) fn validate(
    raw: &RawProxy,
    env: &Env<'_>,
    base: &Path,
) -> Result<ProxySettings, Invalid> {
    let at = FieldPath::root("proxy");
    let addr = |key: &str, v: &Option<String>, default: &str| {
        socket_addr(v.as_deref().unwrap_or(default)).map_err(|m| Invalid::new(at.key(key), m))
    };
    let tls = raw
        .tls
        .as_ref()
        .map(|t| edge::tls(&at.key("tls"), t, base))
        .transpose()?;
    // With TLS configured and no plain `listen`, the proxy serves TLS only.
    let default_listen: &[&str] = if tls.is_some() {
        &[]
    } else {
        &["127.0.0.1:8080"]
    };
    let listen = edge::listeners(&at.key("listen"), raw.listen.as_ref(), default_listen)?;
    if let Some(t) = &tls {
        if let Some(both) = t.listen.iter().find(|a| listen.contains(a)) {
            return Err(Invalid::new(
                at.key("tls").key("listen"),
                format!("{both} is also a plain listener in proxy.listen"),
            ));
        }
    }
    if listen.is_empty() && tls.is_none() {
        return Err(Invalid::new(
            at.key("listen"),
            "is empty and there is no [proxy.tls]: the proxy would not listen anywhere",
        ));
    }
    let admin_listen = addr("admin_listen", &raw.admin_listen, "127.0.0.1:9901")?;
    let admin_token = raw
        .admin_token
        .as_deref()
        .map(|t| token(t, env).map_err(|m| Invalid::new(at.key("admin_token"), m)))
        .transpose()?;
    if !admin_listen.ip().is_loopback() && admin_token.is_none() {
        return Err(Invalid::new(
            at.key("admin_listen"),
            format!(
                "{admin_listen} is not loopback: set proxy.admin_token so the admin API is not open to the network"
            ),
        ));
    }
    let clients = listen
        .iter()
        .chain(tls.iter().flat_map(|t| t.listen.iter()));
    if clients.clone().any(|a| *a == admin_listen) {
        return Err(Invalid::new(
            at.key("admin_listen"),
            "must differ from proxy.listen and proxy.tls.listen",
        ));
    }
    let first_port = clients.map(|a| a.port()).next().unwrap_or(0);
    let upgrade_sock = match raw.upgrade_sock.as_deref().map(str::trim) {
        None => PathBuf::from(format!("/tmp/umbra-proxy-{first_port}.upgrade.sock")),
        Some("") => return Err(Invalid::new(at.key("upgrade_sock"), "is empty")),
        Some(p) => base.join(p),
    };
    let threads = match raw.threads {
        Some(0) => return Err(Invalid::new(at.key("threads"), "must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let max_request_body_bytes = match raw.max_request_body_bytes {
        Some(0) => {
            return Err(Invalid::new(
                at.key("max_request_body_bytes"),
                "must be at least 1",
            ));
        }
        Some(n) => n,
        None => 10 * 1024 * 1024,
    };
    Ok(ProxySettings {
        listen,
        admin_listen,
        admin_token,
        threads,
        pool_header: raw.pool_header.unwrap_or(false),
        max_request_body_bytes,
        shutdown_grace: dur(&at, "shutdown_grace", &raw.shutdown_grace, "5s")?,
        watch_config: raw.watch_config.unwrap_or(true),
        timeouts: timeouts(&at.key("timeouts"), raw.timeouts.as_ref())?,
        admission: admission(&at.key("admission"), raw.admission.as_ref())?,
        health: health(&at.key("health"), raw.health.as_ref())?,
        upgrade_sock,
        tls,
        client: edge::client(&at.key("client"), raw.client.as_ref())?,
        forwarded: edge::forwarded(&at.key("forwarded"), raw.forwarded.as_ref())?,
        access_log: edge::access_log(&at.key("access_log"), raw.access_log.as_ref(), base)?,
    })
}

/// Looks up an environment variable (injected so callers can supply values of their own).
pub type Env<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// A literal token, or `env:NAME` read through `env`.
pub(crate) fn token(spec: &str, env: &Env<'_>) -> Result<AdminToken, String> {
    let value = match spec.strip_prefix("env:") {
        Some(name) => env(name).ok_or_else(|| {
            format!("environment variable {name} is not set (admin_token = \"env:{name}\")")
        })?,
        None => spec.to_string(),
    };
    if value.trim().is_empty() {
        return Err("the admin token is empty".to_string());
    }
    Ok(AdminToken::new(value))
}

/// A positive duration field with a default.
pub(crate) fn dur(
    at: &FieldPath,
    key: &str,
    v: &Option<String>,
    default: &str,
) -> Result<Duration, Invalid> {
    let d = duration(v.as_deref().unwrap_or(default)).map_err(|m| Invalid::new(at.key(key), m))?;
    if d.is_zero() {
        return Err(Invalid::new(at.key(key), "must be greater than 0"));
    }
    Ok(d)
}

fn timeouts(at: &FieldPath, raw: Option<&RawTimeouts>) -> Result<Timeouts, Invalid> {
    let empty = RawTimeouts::default();
    let raw = raw.unwrap_or(&empty);
    Ok(Timeouts {
        connect: dur(at, "connect", &raw.connect, "1s")?,
        read: dur(at, "read", &raw.read, "30s")?,
        write: dur(at, "write", &raw.write, "30s")?,
        idle: dur(at, "idle", &raw.idle, "60s")?,
    })
}

fn admission(at: &FieldPath, raw: Option<&RawAdmission>) -> Result<AdmissionSettings, Invalid> {
    let empty = RawAdmission::default();
    let raw = raw.unwrap_or(&empty);
    let d = AdmissionShares::default();
    let shares = [
        raw.low.unwrap_or(d.share(policies::Priority::Low)),
        raw.normal.unwrap_or(d.share(policies::Priority::Normal)),
        raw.high.unwrap_or(d.share(policies::Priority::High)),
        raw.critical
            .unwrap_or(d.share(policies::Priority::Critical)),
    ];
    let shares = AdmissionShares::new(shares).map_err(|e| {
        let class = match &e {
            policies::SharesError::Range { class, .. } => *class,
            policies::SharesError::NotMonotone { lower, .. } => *lower,
        };
        Invalid::new(at.key(class.as_str()), e)
    })?;
    Ok(AdmissionSettings {
        upstream_max_in_flight: raw.upstream_max_in_flight.unwrap_or(512),
        retry_after: dur(at, "retry_after", &raw.retry_after, "1s")?,
        shares,
    })
}

fn health(at: &FieldPath, raw: Option<&RawHealth>) -> Result<HealthSettings, Invalid> {
    let empty = RawHealth::default();
    let raw = raw.unwrap_or(&empty);
    let interval = dur(at, "interval", &raw.interval, "1s")?;
    let timeout = dur(at, "timeout", &raw.timeout, "500ms")?;
    if timeout > interval {
        return Err(Invalid::new(
            at.key("timeout"),
            "must not be longer than health.interval",
        ));
    }
    if let Some(p) = &raw.path {
        if !p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Invalid::new(
                at.key("path"),
                format!("must be an absolute path like \"/healthz\", got {p:?}"),
            ));
        }
    }
    let count = |key: &str, v: Option<u32>, default: u32| match v {
        Some(0) => Err(Invalid::new(at.key(key), "must be at least 1")),
        v => Ok(v.unwrap_or(default)),
    };
    Ok(HealthSettings {
        interval,
        timeout,
        path: raw.path.clone(),
        unhealthy_after: count("unhealthy_after", raw.unhealthy_after, 2)?,
        healthy_after: count("healthy_after", raw.healthy_after, 1)?,
        ejection: dur(at, "ejection", &raw.ejection, "5s")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        let t = AdminToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret!"));
        assert!(!t.matches(""));
        assert_eq!(format!("{t:?}"), "AdminToken(<redacted>)");
    }
}
