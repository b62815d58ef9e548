//! The route table: request (host, path) -> workload. Rebuilt off the request path on every
//! config change and swapped in whole (`ArcSwap`), so readers never lock.

use std::collections::HashMap;
use std::sync::Arc;

use config::{AdmissionSettings, Config, ForwardedSettings, HealthSettings, HostPattern};
use policies::{PoolKind, Priority};

use crate::metrics::Metrics;
use crate::upstream::UpstreamRegistry;
use crate::workload::Workload;

mod index;
use index::{HostKey, RouteIndex};

/// Settings the request path reads, versioned with the routes.
#[derive(Clone, Debug)]
pub struct RuntimeSettings {
    /// Add `x-umbra-pool` to responses.
    pub pool_header: bool,
    /// Largest accepted request body.
    pub max_request_body_bytes: u64,
    /// Priority shedding.
    pub admission: AdmissionSettings,
    /// Health checks and passive ejection.
    pub health: HealthSettings,
    /// Forwarded headers towards upstreams.
    pub forwarded: ForwardedSettings,
    /// Largest request header block.
    pub max_header_bytes: usize,
    /// Idle keep-alive timeout, whole seconds (Pingora's unit), at least 1.
    pub keepalive_secs: u64,
    /// The port https redirects name (`None`: 443, left out of the URL).
    pub https_port: Option<u16>,
}

/// One matchable route.
pub struct Route {
    host: Option<HostPattern>,
    prefix: String,
    /// The workload's priority class.
    pub priority: Priority,
    /// The workload it leads to.
    pub workload: Arc<Workload>,
    /// Stateful workloads: how sessions are kept on their pool.
    pub sticky: Option<Arc<StickyRule>>,
}

/// How a stateful workload's sessions stay put while traffic moves.
#[derive(Clone, Debug)]
pub struct StickyRule {
    /// The application's session cookie, if configured.
    pub session_cookie: Option<String>,
    /// `umbra_pool_<workload>`: pins a session to the pool it landed in.
    pub pin_cookie: String,
    /// The `Set-Cookie` value that pins to each pool (by `PoolKind::index`), built once so
    /// the response path only clones it.
    set_cookie: [http::HeaderValue; 2],
}

impl StickyRule {
    fn new(workload: &str, session_cookie: Option<String>) -> Self {
        let pin_cookie = format!("umbra_pool_{workload}");
        let set_cookie = [PoolKind::Primary, PoolKind::Shadow].map(|pool| {
            let value = format!(
                "{pin_cookie}={}; Path=/; HttpOnly; SameSite=Lax",
                pool.as_str()
            );
            // Workload names are validated tokens, so this never fails; an empty value would.
            http::HeaderValue::try_from(value).unwrap_or(http::HeaderValue::from_static(""))
        });
        StickyRule {
            session_cookie,
            pin_cookie,
            set_cookie,
        }
    }

    /// The `Set-Cookie` value that pins the session to `pool`.
    pub fn set_cookie(&self, pool: PoolKind) -> &http::HeaderValue {
        &self.set_cookie[pool.index()]
    }
}

impl Route {
    fn specificity(&self) -> (u8, usize) {
        let host = match self.host {
            Some(HostPattern::Exact(_)) => 2,
            Some(HostPattern::Subdomains(_)) => 1,
            None => 0,
        };
        (host, self.prefix.len())
    }

    #[cfg(test)]
    fn matches(&self, host: &str, path: &str) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(HostPattern::Exact(h)) => h.eq_ignore_ascii_case(host),
            Some(HostPattern::Subdomains(suffix)) => {
                host.len() > suffix.len() + 1
                    && host.is_char_boundary(host.len() - suffix.len())
                    && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                    && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            }
        };
        host_ok && prefix_matches(&self.prefix, path)
    }
}

/// Segment-aware prefix match: `/api` matches `/api` and `/api/x` but not `/apiary`
/// (nginx's plain prefix would, a classic surprise); a prefix ending in `/` is plain.
/// The definition `index` implements with lookups.
#[cfg(test)]
fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path.as_bytes()[prefix.len()] == b'/')
}

/// The request host without port or trailing dot: `Api.Example.com.:8080` -> `Api.Example.com`.
pub fn bare_host(host: &str) -> &str {
    let host = if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep what is inside the brackets.
        rest.split(']').next().unwrap_or(rest)
    } else {
        host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Everything the request path needs, in one immutable snapshot.
pub struct RouteTable {
    /// Most specific first.
    routes: Vec<Route>,
    /// Finds the first matching route of `routes` without scanning them.
    index: RouteIndex,
    workloads: Vec<Arc<Workload>>,
    /// Settings versioned with the routes.
    pub settings: RuntimeSettings,
}

impl RouteTable {
    /// Builds the table for `config`, reusing the live state of workloads that `previous`
    /// already had (by name).
    pub fn build(
        config: &Config,
        previous: Option<&RouteTable>,
        registry: &UpstreamRegistry,
        registry_changed: bool,
        metrics: &Metrics,
        now_ms: u64,
    ) -> RouteTable {
        let old: HashMap<&str, &Arc<Workload>> = previous
            .map(|t| t.workloads.iter().map(|w| (w.name().as_str(), w)).collect())
            .unwrap_or_default();
        let mut workloads = Vec::with_capacity(config.workloads.len());
        let mut routes = Vec::new();
        for spec in &config.workloads {
            let w = match old.get(spec.name.as_str()) {
                Some(existing) => {
                    existing.update(spec.clone(), registry, registry_changed, now_ms);
                    Arc::clone(existing)
                }
                None => Arc::new(Workload::new(spec.clone(), registry, metrics)),
            };
            let hosts: Vec<Option<HostPattern>> = if spec.hosts.is_empty() {
                vec![None]
            } else {
                spec.hosts.iter().cloned().map(Some).collect()
            };
            for host in hosts {
                routes.push(Route {
                    host,
                    prefix: spec.path_prefix.clone(),
                    priority: spec.priority,
                    workload: Arc::clone(&w),
                    sticky: (!spec.stateless).then(|| {
                        Arc::new(StickyRule::new(
                            spec.name.as_str(),
                            spec.session_cookie.clone(),
                        ))
                    }),
                });
            }
            workloads.push(w);
        }
        // Most specific first: exact host, then wildcard, then any host; longer prefix first.
        routes.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
        let mut index = RouteIndex::default();
        for (position, r) in (0u32..).zip(&routes) {
            let host = match &r.host {
                None => HostKey::Any,
                Some(HostPattern::Exact(h)) => HostKey::Exact(h),
                Some(HostPattern::Subdomains(s)) => HostKey::Subdomains(s),
            };
            index.add(host, &r.prefix, position);
        }
        RouteTable {
            routes,
            index,
            workloads,
            settings: RuntimeSettings {
                pool_header: config.proxy.pool_header,
                max_request_body_bytes: config.proxy.max_request_body_bytes,
                admission: config.proxy.admission,
                health: config.proxy.health.clone(),
                forwarded: config.proxy.forwarded.clone(),
                max_header_bytes: config.proxy.client.max_header_bytes,
                keepalive_secs: config.proxy.client.keepalive_timeout.as_secs().max(1),
                https_port: config
                    .proxy
                    .tls
                    .as_ref()
                    .and_then(|t| t.listen.first())
                    .map(|a| a.port())
                    .filter(|p| *p != 443),
            },
        }
    }

    /// The most specific route for a request: `host` without port or trailing dot (any case),
    /// `path` normalised. Hash lookups, not a scan: its cost does not grow with the routes.
    pub fn route(&self, host: &str, path: &str) -> Option<&Route> {
        let position = self.index.find(host, path)?;
        self.routes.get(position as usize)
    }

    /// What [`Self::route`] answers, by scanning every route in order: the definition the
    /// index is tested against.
    #[cfg(test)]
    fn route_by_scan(&self, host: &str, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(host, path))
    }

    /// Workloads in config order.
    pub fn workloads(&self) -> &[Arc<Workload>] {
        &self.workloads
    }

    /// A workload by name.
    pub fn workload(&self, name: &str) -> Option<&Arc<Workload>> {
        self.workloads.iter().find(|w| w.name().as_str() == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    /// Settings as a config without `[proxy]` tables gives them.
    pub(crate) fn settings() -> RuntimeSettings {
        table("").settings
    }

    fn table(text: &str) -> RouteTable {
        let cfg = config::parse(Path::new("t.toml"), text).expect("valid config");
        let metrics = Metrics::new().expect("metrics");
        let registry = UpstreamRegistry::new(cfg.proxy.timeouts);
        RouteTable::build(&cfg, None, &registry, false, &metrics, 0)
    }

    const ROUTES: &str = r#"
[[workloads]]
name = "any-root"
primary = ["127.0.0.1:1"]

[[workloads]]
name = "any-api"
path_prefix = "/api"
primary = ["127.0.0.1:2"]

[[workloads]]
name = "shop"
hosts = ["shop.example.com"]
primary = ["127.0.0.1:3"]

[[workloads]]
name = "wild"
hosts = ["*.example.com"]
path_prefix = "/static/"
primary = ["127.0.0.1:4"]
"#;

    fn name<'a>(t: &'a RouteTable, host: &str, path: &str) -> Option<&'a str> {
        t.route(host, path).map(|r| r.workload.name().as_str())
    }

    #[test]
    fn most_specific_route_wins() {
        let t = table(ROUTES);
        assert_eq!(name(&t, "x.test", "/"), Some("any-root"));
        assert_eq!(name(&t, "x.test", "/api/v1"), Some("any-api"));
        assert_eq!(name(&t, "x.test", "/api"), Some("any-api"));
        assert_eq!(name(&t, "x.test", "/apiary"), Some("any-root"));
        assert_eq!(name(&t, "shop.example.com", "/api"), Some("shop"));
        assert_eq!(name(&t, "SHOP.Example.com", "/"), Some("shop"));
        assert_eq!(name(&t, "img.example.com", "/static/a.png"), Some("wild"));
        assert_eq!(name(&t, "img.example.com", "/other"), Some("any-root"));
    }

    proptest::proptest! {
        /// The index answers what scanning the routes most specific first answers.
        #[test]
        fn index_agrees_with_the_scan(
            routes in proptest::collection::vec((0usize..8, 0usize..7), 1..12),
            requests in proptest::collection::vec((0usize..7, 0usize..12), 1..24),
        ) {
            const HOSTS: [&str; 8] = [
                "", "a.test", "A.Test", "b.a.test", "*.a.test", "*.test", "*.b.a.test", "c.test",
            ];
            const PREFIXES: [&str; 7] = ["/", "/a", "/a/", "/a/b", "/ab", "/b/", "/a/b/c"];
            const REQ_HOSTS: [&str; 7] = ["a.test", "B.A.test", "x.b.a.test", "c.test", "test", "", "z.test"];
            const PATHS: [&str; 12] = [
                "/", "/a", "/a/", "/a/b", "/a/bc", "/ab", "/ab/c", "/b", "/b/", "/a/b/c/d", "//a", "/a//b",
            ];
            let mut text = String::new();
            let mut seen = std::collections::HashSet::new();
            for (i, (h, p)) in routes.into_iter().enumerate() {
                let host = HOSTS[h].to_ascii_lowercase();
                if !seen.insert((host.clone(), p)) {
                    continue; // the config refuses the same hosts and prefix twice
                }
                let hosts = if host.is_empty() { String::new() } else { format!("hosts = [\"{host}\"]\n") };
                text += &format!(
                    "[[workloads]]\nname = \"w{i}\"\n{hosts}path_prefix = \"{}\"\nprimary = [\"127.0.0.1:1\"]\n",
                    PREFIXES[p]
                );
            }
            let t = table(&text);
            for (h, p) in requests {
                let (host, path) = (REQ_HOSTS[h], PATHS[p]);
                proptest::prop_assert_eq!(
                    t.route(host, path).map(|r| r.workload.name().as_str()),
                    t.route_by_scan(host, path).map(|r| r.workload.name().as_str()),
                    "{} {}", host, path
                );
            }
        }
    }

    #[test]
    fn no_route_without_a_catch_all() {
        let t = table(
            "[[workloads]]\nname = \"a\"\nhosts = [\"a.test\"]\nprimary = [\"127.0.0.1:1\"]\n",
        );
        assert_eq!(name(&t, "b.test", "/"), None);
        assert_eq!(name(&t, "a.test", "/"), Some("a"));
    }

    #[test]
    fn host_header_forms() {
        assert_eq!(bare_host("api.example.com:8080"), "api.example.com");
        assert_eq!(bare_host("api.example.com."), "api.example.com");
        assert_eq!(bare_host("[::1]:8080"), "::1");
        assert_eq!(bare_host("127.0.0.1"), "127.0.0.1");
        assert_eq!(bare_host(""), "");
    }

    #[test]
    fn reload_keeps_live_state() {
        let metrics = Metrics::new().expect("metrics");
        let text = "[[workloads]]\nname = \"a\"\nprimary = [\"127.0.0.1:1\"]\nshadow = [\"127.0.0.1:2\"]\n";
        let cfg = config::parse(Path::new("t.toml"), text).expect("valid");
        let registry = UpstreamRegistry::new(cfg.proxy.timeouts);
        let t1 = RouteTable::build(&cfg, None, &registry, false, &metrics, 0);
        let w = t1.workload("a").expect("exists").clone();
        w.set_weight(policies::ShadowWeight::new(0.4).expect("valid"), 0, "test")
            .expect("steady");
        // Same file again: the admin-set weight survives.
        let t2 = RouteTable::build(&cfg, Some(&t1), &registry, false, &metrics, 0);
        assert!(Arc::ptr_eq(&w, t2.workload("a").expect("kept")));
        assert_eq!(w.shadow_weight().get(), 0.4);
        // The file changes the weight: the file wins.
        let text2 = text.replace("shadow = ", "shadow_weight = 0.1\nshadow = ");
        let cfg2 = config::parse(Path::new("t.toml"), &text2).expect("valid");
        let _t3 = RouteTable::build(&cfg2, Some(&t2), &registry, false, &metrics, 0);
        assert_eq!(w.shadow_weight().get(), 0.1);
    }
}
