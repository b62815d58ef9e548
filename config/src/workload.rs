//! `[[workloads]]` validated: route, priority, pools, shadow weight and rollback guard.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use policies::{GuardThresholds, Priority, ShadowWeight, ThresholdsError};

use crate::controller::InstanceSpec;
use crate::error::{FieldPath, Invalid};
use crate::proxy::dur;
use crate::raw::{RawGuard, RawWorkload};
use crate::upstream::{self, HeaderRules, UpstreamProtocol, UpstreamTls};
use crate::values::socket_addr;

/// A workload name: 1-63 of `[a-z0-9_-]`, starting with a letter or digit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadName(String);

impl WorkloadName {
    /// A name, or why it is not one.
    pub fn new(name: &str) -> Result<Self, String> {
        let ok_char =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        let starts_ok = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if name.is_empty() || name.len() > 63 || !starts_ok || !name.chars().all(ok_char) {
            return Err(format!(
                "{name:?} is not a valid workload name (1-63 of a-z, 0-9, '-', '_', starting with a letter or digit)"
            ));
        }
        Ok(WorkloadName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for WorkloadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host a workload answers: exact (`api.example.com`) or any subdomain (`*.example.com`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// Matches this host only (lowercase, no port).
    Exact(String),
    /// Matches any host ending in `.{suffix}` (lowercase), not the suffix itself.
    Subdomains(String),
}

impl HostPattern {
    fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_ascii_lowercase();
        let valid = |h: &str| {
            !h.is_empty()
                && h.len() <= 253
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        };
        match lower.strip_prefix("*.") {
            Some(suffix) if valid(suffix) => Ok(HostPattern::Subdomains(suffix.to_string())),
            None if valid(&lower) => Ok(HostPattern::Exact(lower)),
            _ => Err(format!(
                "{s:?} is not a host name (letters, digits, '-', '.', optionally starting with \"*.\"; no port)"
            )),
        }
    }

    /// Whether a request's host (lowercase, port already removed) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
        }
    }
}

/// One workload: where its requests come from and the two pools they may go to.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadSpec {
    /// Unique name, used in the admin API and metrics.
    pub name: WorkloadName,
    /// Hosts; empty = any host.
    pub hosts: Vec<HostPattern>,
    /// Path prefix, starts with `/`. Default `/`.
    pub path_prefix: String,
    /// Priority class. Default `normal`.
    pub priority: Priority,
    /// No server-side session state. Default `true`.
    pub stateless: bool,
    /// The application's session cookie (stateful workloads): requests carrying it stay on
    /// primary; new sessions are pinned to the pool they land in with an `umbra_pool_<workload>` cookie.
    pub session_cookie: Option<String>,
    /// Initial shadow weight. Default 0.
    pub shadow_weight: ShadowWeight,
    /// Primary pool, at least one member.
    pub primary: Vec<SocketAddr>,
    /// Shadow pool, possibly empty (the controller announces members at run time).
    pub shadow: Vec<SocketAddr>,
    /// Rollback guard.
    pub guard: GuardSpec,
    /// Policy file name (without `.toml`); `None` = the built-in policy.
    pub policy: Option<String>,
    /// How the controller runs an instance.
    pub instance: InstanceSpec,
    /// Answer plain-HTTP requests with `308` to the same URL over https. Default off.
    pub redirect_https: bool,
    /// How upstreams are spoken to. Default HTTP/1.1.
    pub upstream_protocol: UpstreamProtocol,
    /// TLS towards upstreams (`h2` always has it); `None` = cleartext.
    pub upstream_tls: Option<UpstreamTls>,
    /// Header changes towards the upstream.
    pub request_headers: HeaderRules,
    /// Header changes towards the client.
    pub response_headers: HeaderRules,
}

/// The rollback guard of one workload.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardSpec {
    /// Sliding window. Default 5 s; between 100 ms and 10 min.
    pub window: Duration,
    /// When to roll back. Defaults: min_requests 20, no absolute ceiling, ratio 2.0 above a
    /// 20 ms floor, error rate 5%.
    pub thresholds: GuardThresholds,
    /// Raising the weight is refused this long after a rollback. Default 30 s.
    pub cooldown: Duration,
    /// Evaluation period. Default 50 ms; at most the window.
    pub interval: Duration,
}

pub(crate) fn validate(raw: &RawWorkload, at: &FieldPath) -> Result<WorkloadSpec, Invalid> {
    let name = raw
        .name
        .as_deref()
        .ok_or_else(|| Invalid::new(at.key("name"), "is required"))?;
    let name = WorkloadName::new(name).map_err(|m| Invalid::new(at.key("name"), m))?;

    let mut hosts = Vec::new();
    for (i, h) in raw.hosts.iter().flatten().enumerate() {
        hosts.push(HostPattern::parse(h).map_err(|m| Invalid::new(at.key("hosts").index(i), m))?);
    }

    let path_prefix = raw.path_prefix.clone().unwrap_or_else(|| "/".to_string());
    if !path_prefix.starts_with('/')
        || path_prefix
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Invalid::new(
            at.key("path_prefix"),
            format!("must start with '/' and contain no spaces, got {path_prefix:?}"),
        ));
    }

    let priority = match raw.priority.as_deref() {
        None => Priority::Normal,
        Some(p) => p.parse().map_err(|e| Invalid::new(at.key("priority"), e))?,
    };

    let shadow_weight = ShadowWeight::new(raw.shadow_weight.unwrap_or(0.0))
        .map_err(|e| Invalid::new(at.key("shadow_weight"), e))?;

    let primary = pool(at, "primary", raw.primary.as_deref())?;
    if primary.is_empty() {
        return Err(Invalid::new(
            at.key("primary"),
            "needs at least one upstream",
        ));
    }
    let shadow = pool(at, "shadow", raw.shadow.as_deref())?;
    if let Some((i, a)) = shadow.iter().enumerate().find(|(_, a)| primary.contains(a)) {
        return Err(Invalid::new(
            at.key("shadow").index(i),
            format!("{a} is also in primary; a member belongs to one pool"),
        ));
    }
    if !shadow_weight.is_zero() && shadow.is_empty() {
        return Err(Invalid::new(
            at.key("shadow_weight"),
            format!("is {shadow_weight} but the shadow pool is empty"),
        ));
    }

    let (upstream_protocol, upstream_tls) = upstream::protocol(
        at,
        raw.upstream_protocol.as_deref(),
        raw.upstream_tls.as_ref(),
    )?;
    Ok(WorkloadSpec {
        name,
        hosts,
        path_prefix,
        priority,
        stateless: raw.stateless.unwrap_or(true),
        session_cookie: match &raw.session_cookie {
            Some(c)
                if c.is_empty()
                    || !c.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
                    }) =>
            {
                return Err(Invalid::new(
                    at.key("session_cookie"),
                    format!("{c:?} is not a cookie name (letters, digits, '_', '-', '.')"),
                ));
            }
            c => c.clone(),
        },
        shadow_weight,
        primary,
        shadow,
        guard: guard(&at.key("guard"), raw.guard.as_ref())?,
        policy: match &raw.policy {
            Some(p) if WorkloadName::new(p).is_err() => {
                return Err(Invalid::new(
                    at.key("policy"),
                    format!("{p:?} is not a policy name (a file stem like \"default\")"),
                ));
            }
            p => p.clone(),
        },
        instance: crate::controller::instance(raw.instance.as_ref(), &at.key("instance"))?,
        redirect_https: raw.redirect_https.unwrap_or(false),
        upstream_protocol,
        upstream_tls,
        request_headers: upstream::header_rules(
            &at.key("request_headers"),
            raw.request_headers.as_ref(),
        )?,
        response_headers: upstream::header_rules(
            &at.key("response_headers"),
            raw.response_headers.as_ref(),
        )?,
    })
}

fn pool(at: &FieldPath, key: &str, raw: Option<&[String]>) -> Result<Vec<SocketAddr>, Invalid> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, text) in raw.unwrap_or_default().iter().enumerate() {
        let addr = socket_addr(text).map_err(|m| Invalid::new(at.key(key).index(i), m))?;
        if !seen.insert(addr) {
            return Err(Invalid::new(
                at.key(key).index(i),
                format!("{addr} is listed twice"),
            ));
        }
        out.push(addr);
    }
    Ok(out)
}

fn guard(at: &FieldPath, raw: Option<&RawGuard>) -> Result<GuardSpec, Invalid> {
    let empty = RawGuard::default();
    let raw = raw.unwrap_or(&empty);
    let window = dur(at, "window", &raw.window, "5s")?;
    if !(Duration::from_millis(100)..=Duration::from_secs(600)).contains(&window) {
        return Err(Invalid::new(
            at.key("window"),
            "must be between 100ms and 10m",
        ));
    }
    let interval = dur(at, "interval", &raw.interval, "50ms")?;
    if interval > window {
        return Err(Invalid::new(
            at.key("interval"),
            "must not be longer than guard.window",
        ));
    }
    let millis = |key: &str, v: Option<f64>| -> Result<Option<Duration>, Invalid> {
        match v {
            None => Ok(None),
            Some(ms) if ms.is_finite() && ms >= 0.0 => {
                Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
            }
            Some(ms) => Err(Invalid::new(
                at.key(key),
                format!("must be a non-negative number of milliseconds, got {ms}"),
            )),
        }
    };
    let thresholds = GuardThresholds::new(
        raw.min_requests.unwrap_or(20),
        millis("max_p99_ms", raw.max_p99_ms)?,
        Some(raw.max_p99_ratio.unwrap_or(2.0)),
        millis("p99_ratio_floor_ms", raw.p99_ratio_floor_ms)?.unwrap_or(Duration::from_millis(20)),
        raw.max_error_rate.unwrap_or(0.05),
    )
    .map_err(|e| {
        let key = match e {
            ThresholdsError::MinRequests => "min_requests",
            ThresholdsError::MaxP99 => "max_p99_ms",
            ThresholdsError::Ratio(_) => "max_p99_ratio",
            ThresholdsError::ErrorRate(_) => "max_error_rate",
        };
        Invalid::new(at.key(key), e)
    })?;
    let cooldown = match &raw.cooldown {
        None => Duration::from_secs(30),
        Some(text) => {
            crate::values::duration(text).map_err(|m| Invalid::new(at.key("cooldown"), m))?
        }
    };
    Ok(GuardSpec {
        window,
        thresholds,
        cooldown,
        interval,
    })
}

/// Rejects two workloads with the same name, or answering the same host and path prefix.
/// The error names the first earlier workload that conflicts. One pass with two maps: a
/// thousand workloads are checked in well under a millisecond (comparing every pair took
/// 0.2 s, on every start and reload).
pub(crate) fn check_unique(workloads: &[WorkloadSpec]) -> Result<(), Invalid> {
    let at = FieldPath::root("workloads");
    let mut names: HashMap<&str, usize> = HashMap::with_capacity(workloads.len());
    let mut routes: HashMap<(BTreeSet<&HostPattern>, &str), usize> =
        HashMap::with_capacity(workloads.len());
    for (i, w) in workloads.iter().enumerate() {
        let route = (
            w.hosts.iter().collect::<BTreeSet<_>>(),
            w.path_prefix.as_str(),
        );
        let same_name = names.get(w.name.as_str()).copied();
        let same_route = routes.get(&route).copied();
        // The earlier of the two conflicts is reported, a name first at the same workload.
        let route_first = match (same_name, same_route) {
            (Some(j), Some(r)) => r < j,
            (None, Some(_)) => true,
            _ => false,
        };
        if let (Some(j), false) = (same_name, route_first) {
            return Err(Invalid::new(
                at.index(i).key("name"),
                format!(
                    "{:?} is already the name of workloads[{j}]",
                    w.name.as_str()
                ),
            ));
        }
        if let (Some(j), true) = (same_route, route_first) {
            return Err(Invalid::new(
                at.index(i).key("path_prefix"),
                format!(
                    "workloads[{j}] ({}) already answers the same hosts and path prefix {:?}",
                    workloads[j].name, w.path_prefix
                ),
            ));
        }
        names.insert(w.name.as_str(), i);
        routes.insert(route, i);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(WorkloadName::new("api").is_ok());
        assert!(WorkloadName::new("api-v2_x").is_ok());
        assert!(WorkloadName::new("").is_err());
        assert!(WorkloadName::new("API").is_err());
        assert!(WorkloadName::new("-api").is_err());
        assert!(WorkloadName::new("a/b").is_err());
        assert!(WorkloadName::new(&"a".repeat(64)).is_err());
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("API.example.com").expect("valid");
        assert!(exact.matches("api.example.com"));
        assert!(!exact.matches("x.api.example.com"));
        let sub = HostPattern::parse("*.example.com").expect("valid");
        assert!(sub.matches("a.example.com"));
        assert!(sub.matches("a.b.example.com"));
        assert!(!sub.matches("example.com"));
        assert!(!sub.matches("badexample.com"));
        assert!(HostPattern::parse("api.example.com:80").is_err());
        assert!(HostPattern::parse("").is_err());
        assert!(HostPattern::parse("a b").is_err());
    }
}
