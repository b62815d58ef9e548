//! nginx `upstream`/`server`/`location` blocks to Umbra workloads: what carries over, what only
//! becomes a note, and what cannot be translated without routing differently (a problem).

use std::collections::BTreeMap;
use std::path::Path;

use super::syntax::{Directive, Location};

/// One workload to write as `[[workloads]]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Unique workload name.
    pub name: String,
    /// Host patterns; empty = any host.
    pub hosts: Vec<String>,
    /// The location's prefix.
    pub path_prefix: String,
    /// Primary members (`host:port`).
    pub primary: Vec<String>,
    /// The upstream's `backup` servers.
    pub shadow: Vec<String>,
    /// Where it came from, for the comment above it.
    pub sources: Vec<String>,
    /// Things about it that did not carry over exactly.
    pub notes: Vec<Note>,
}

/// Something that does not carry over exactly but does not change where a request goes.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Where, when it is about one directive.
    pub at: Option<Location>,
    /// What, and what to do about it.
    pub message: String,
}

/// Something that cannot be translated: Umbra would route or answer differently.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Where.
    pub at: Location,
    /// What, and why.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// The translation of a whole config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// The workloads, in the order their locations were written.
    pub workloads: Vec<Workload>,
    /// Notes about the config as a whole (listeners, unused upstreams, proxy-wide settings).
    pub notes: Vec<Note>,
}

/// Directives whose effect Umbra would silently drop, opening what nginx kept closed.
const ACCESS_CONTROL: &[&str] = &[
    "allow",
    "deny",
    "auth_basic",
    "auth_request",
    "auth_jwt",
    "satisfy",
    "limit_req",
    "limit_conn",
    "limit_except",
    "valid_referers",
    "secure_link",
];

/// Directives that answer or rewrite a request in nginx itself.
const ANSWERS_ITSELF: &[&str] = &["return", "rewrite", "if", "try_files", "error_page"];

/// Directives with no routing effect that Umbra needs no counterpart for (headers it already
/// sets or that only concern nginx's own buffering, logging and upstream HTTP version).
const HARMLESS: &[&str] = &[
    "proxy_set_header",
    "proxy_http_version",
    "proxy_buffering",
    "proxy_buffers",
    "proxy_buffer_size",
    "proxy_busy_buffers_size",
    "proxy_request_buffering",
    "proxy_redirect",
    "proxy_pass_request_headers",
    "proxy_pass_request_body",
    "access_log",
    "error_log",
    "log_not_found",
    "server_tokens",
    "charset",
    "default_type",
    "root",
    "index",
    "sendfile",
    "tcp_nopush",
    "tcp_nodelay",
    "keepalive_timeout",
    "keepalive_requests",
    "gzip",
    "gzip_types",
    "gzip_proxied",
    "gzip_vary",
    "gzip_min_length",
    "gzip_comp_level",
];

/// Settings Umbra has proxy-wide: where the value goes instead.
fn proxy_wide_hint(name: &str) -> Option<&'static str> {
    Some(match name {
        "proxy_connect_timeout" => "[proxy.timeouts] connect",
        "proxy_read_timeout" => "[proxy.timeouts] read",
        "proxy_send_timeout" => "[proxy.timeouts] write",
        "client_max_body_size" => "[proxy] max_request_body_bytes (in bytes)",
        "proxy_next_upstream" | "proxy_next_upstream_tries" | "proxy_next_upstream_timeout" => {
            "[proxy.health] (umbra ejects failing members and retries connect failures itself)"
        }
        _ => return None,
    })
}

/// An upstream block as read.
#[derive(Clone, Debug)]
struct Upstream {
    at: Location,
    primary: Vec<String>,
    backup: Vec<String>,
    notes: Vec<Note>,
    used: bool,
}

/// Where a location's `proxy_pass` sends requests.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    Upstream(String),
    Direct(String),
}

/// One proxied location of one server block.
struct Route {
    target: Target,
    hosts: Vec<String>,
    prefix: String,
    source: String,
    notes: Vec<Note>,
}

#[derive(Default)]
struct Walk {
    upstreams: BTreeMap<String, Upstream>,
    /// Server blocks, read after every upstream is known (nginx allows either order).
    servers: Vec<Directive>,
    notes: Vec<Note>,
    problems: Vec<Problem>,
}

impl Walk {
    fn problem(&mut self, at: &Location, message: impl Into<String>) {
        self.problems.push(Problem {
            at: at.clone(),
            message: message.into(),
        });
    }
}

/// Translates a loaded config (includes already spliced in); `file` names an empty one in
/// errors. Every problem is reported, not
/// just the first, so one run lists all that needs changing.
pub fn translate(file: &Path, config: &[Directive]) -> Result<Translation, Vec<Problem>> {
    let mut walk = Walk::default();
    // Top level: `http { ... }`, or a conf.d snippet holding upstream/server blocks directly.
    collect(&mut walk, config, true);
    let servers = std::mem::take(&mut walk.servers);
    let mut routes = Vec::new();
    for server in &servers {
        routes.extend(read_server(&mut walk, server));
    }
    let mut translation = Translation {
        workloads: group(&mut walk, routes),
        notes: Vec::new(),
    };
    if let Some(first) = servers.first() {
        if !translation.workloads.is_empty()
            && translation.workloads.iter().all(|w| !w.hosts.is_empty())
        {
            walk.notes.push(Note {
                at: Some(first.at.clone()),
                message: "nginx sends a request whose Host no server_name matches to the port's default server (this one, or the one marked default_server); umbra answers it 404: give a workload no hosts to catch them".into(),
            });
        }
    }
    for (name, u) in &walk.upstreams {
        if !u.used {
            walk.notes.push(Note {
                at: Some(u.at.clone()),
                message: format!("upstream {name} is used by no location; not translated"),
            });
        }
    }
    if translation.workloads.is_empty() && walk.problems.is_empty() {
        let at = config.first().map_or_else(
            || Location {
                file: std::sync::Arc::new(file.to_path_buf()),
                line: 1,
            },
            |d| d.at.clone(),
        );
        walk.problem(
            &at,
            "no `location` with `proxy_pass` found: nothing to translate",
        );
    }
    if !walk.problems.is_empty() {
        return Err(walk.problems);
    }
    translation.notes = walk.notes;
    Ok(translation)
}

fn collect(walk: &mut Walk, block: &[Directive], main: bool) {
    for d in block {
        match (d.name.as_str(), &d.block) {
            ("http", Some(inner)) if main => collect(walk, inner, false),
            ("upstream", Some(inner)) => read_upstream(walk, d, inner),
            ("server", Some(_)) => walk.servers.push(d.clone()),
            ("stream" | "mail", Some(_)) => walk.problem(
                &d.at,
                format!(
                    "`{}` (TCP/UDP or mail proxying) is not translated: umbra-proxy proxies HTTP",
                    d.name
                ),
            ),
            (name, None) => {
                if let Some(hint) = proxy_wide_hint(name) {
                    walk.notes.push(hint_note(d, hint));
                }
            }
            // events, map, types, geo, ...: nothing that decides where a request is proxied.
            _ => {}
        }
    }
}

fn hint_note(d: &Directive, hint: &str) -> Note {
    Note {
        at: Some(d.at.clone()),
        message: format!(
            "`{} {}` is not translated: umbra has it proxy-wide as {hint}",
            d.name,
            d.args.join(" ")
        ),
    }
}

fn read_upstream(walk: &mut Walk, d: &Directive, inner: &[Directive]) {
    let [name] = d.args.as_slice() else {
        walk.problem(&d.at, "`upstream` takes exactly one name");
        return;
    };
    let mut u = Upstream {
        at: d.at.clone(),
        primary: Vec::new(),
        backup: Vec::new(),
        notes: Vec::new(),
        used: false,
    };
    let mut weights = Vec::new();
    for s in inner {
        match s.name.as_str() {
            "server" => {
                let Some(addr) = s.args.first() else {
                    walk.problem(&s.at, "`server` without an address");
                    continue;
                };
                let addr = match member_address(addr) {
                    Ok(a) => a,
                    Err(m) => {
                        walk.problem(&s.at, m);
                        continue;
                    }
                };
                let (mut backup, mut down, mut weight) = (false, false, 1u32);
                for p in &s.args[1..] {
                    let (key, value) = p.split_once('=').unwrap_or((p.as_str(), ""));
                    match key {
                        "backup" => backup = true,
                        "down" => down = true,
                        "weight" => match value.parse() {
                            Ok(w) => weight = w,
                            Err(_) => walk.problem(&s.at, format!("`{p}`: weight is not a number")),
                        },
                        "max_fails" | "fail_timeout" => u.notes.push(Note {
                            at: Some(s.at.clone()),
                            message: format!(
                                "`{p}` is not translated: umbra's passive ejection and active checks are proxy-wide ([proxy.health])"
                            ),
                        }),
                        "max_conns" => u.notes.push(Note {
                            at: Some(s.at.clone()),
                            message: format!(
                                "`{p}` is not translated: umbra limits in-flight requests per member proxy-wide ([proxy.admission] upstream_max_in_flight)"
                            ),
                        }),
                        _ => u.notes.push(Note {
                            at: Some(s.at.clone()),
                            message: format!("server parameter `{p}` is not translated"),
                        }),
                    }
                }
                if down {
                    u.notes.push(Note {
                        at: Some(s.at.clone()),
                        message: format!("{addr} is marked `down` in nginx; left out"),
                    });
                } else if backup {
                    u.backup.push(addr);
                } else {
                    weights.push(weight);
                    u.primary.push(addr);
                }
            }
            "keepalive" | "keepalive_timeout" | "keepalive_requests" | "keepalive_time"
            | "zone" => {}
            "least_conn" | "random" => u.notes.push(Note {
                at: Some(s.at.clone()),
                message: format!("`{}`: umbra chooses among a pool's members itself", s.name),
            }),
            "ip_hash" | "hash" | "sticky" => u.notes.push(Note {
                at: Some(s.at.clone()),
                message: format!(
                    "`{}` is not translated: umbra does not pin a client to one member; if the application keeps sessions in memory, set `stateless = false` and `session_cookie`",
                    s.name
                ),
            }),
            other => u.notes.push(Note {
                at: Some(s.at.clone()),
                message: format!("upstream directive `{other}` is not translated"),
            }),
        }
    }
    if weights.iter().any(|w| *w != weights[0]) {
        u.notes.push(Note {
            at: Some(d.at.clone()),
            message: format!(
                "nginx weights {} are not kept: umbra spreads a pool's requests evenly over its healthy members",
                weights.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    if u.primary.is_empty() {
        walk.problem(
            &d.at,
            format!("upstream {name} has no server that is neither `backup` nor `down`: umbra needs a primary pool"),
        );
    }
    if walk.upstreams.insert(name.clone(), u).is_some() {
        walk.problem(&d.at, format!("upstream {name} is defined twice"));
    }
}

/// `host:port`, `[v6]:port` or `host` (port 80, as nginx assumes).
fn member_address(addr: &str) -> Result<String, String> {
    if addr.starts_with("unix:") {
        return Err(format!(
            "`{addr}`: unix sockets are not supported as members; umbra connects over TCP"
        ));
    }
    if addr.contains('$') {
        return Err(format!(
            "`{addr}`: variables in addresses cannot be translated"
        ));
    }
    let has_port = if addr.starts_with('[') {
        addr.contains("]:")
    } else {
        addr.contains(':')
    };
    let full = if has_port {
        addr.to_string()
    } else {
        format!("{addr}:80")
    };
    let (host, port) = full.rsplit_once(':').unwrap_or((&full, ""));
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("`{addr}` is not a host:port address"));
    }
    Ok(full)
}

fn read_server(walk: &mut Walk, server: &Directive) -> Vec<Route> {
    let inner = server.block.as_deref().unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    let mut name_at = server.at.clone();
    let mut locations = Vec::new();
    let mut server_notes = Vec::new();
    for d in inner {
        let name = d.name.as_str();
        match name {
            "server_name" => {
                names.extend(d.args.iter().cloned());
                name_at = d.at.clone();
            }
            "listen" => {
                let ssl = d.args.iter().any(|a| a == "ssl" || a == "quic");
                walk.notes.push(Note {
                    at: Some(d.at.clone()),
                    message: if ssl {
                        format!(
                            "nginx listened on `{}` with TLS; umbra-proxy does not terminate TLS: keep a TLS terminator in front and set [proxy] listen to the plain-HTTP address behind it",
                            d.args.join(" ")
                        )
                    } else {
                        format!(
                            "nginx listened on `{}`; umbra-proxy has one listener: set [proxy] listen",
                            d.args.join(" ")
                        )
                    },
                });
            }
            "location" => locations.push(d),
            n if ANSWERS_ITSELF.contains(&n) => walk.problem(
                &d.at,
                format!(
                    "`{n}` in a server block: nginx answers or rewrites these requests itself, umbra-proxy only forwards them; keep this in front of umbra or remove it"
                ),
            ),
            n if ACCESS_CONTROL.contains(&n) => walk.problem(
                &d.at,
                format!("`{n}` (access control) cannot be translated: umbra-proxy would let every request through"),
            ),
            n if n.starts_with("ssl") || HARMLESS.contains(&n) => {}
            n => match proxy_wide_hint(n) {
                Some(hint) => server_notes.push(hint_note(d, hint)),
                None => server_notes.push(Note {
                    at: Some(d.at.clone()),
                    message: format!("server directive `{n}` is not translated"),
                }),
            },
        }
    }
    let hosts = match host_patterns(&names) {
        Ok(h) => h,
        Err(m) => {
            walk.problem(&name_at, m);
            return Vec::new();
        }
    };
    let described = if hosts.is_empty() {
        "any host".to_string()
    } else {
        hosts.join(" ")
    };
    let mut routes = Vec::new();
    for loc in locations {
        if let Some(mut route) = read_location(walk, loc, &hosts, &described) {
            route.notes.extend(server_notes.iter().cloned());
            routes.push(route);
        }
    }
    routes
}

/// `server_name`s as Umbra host patterns; empty = any host (nginx's `_` and `""` names, or no
/// name at all, are how a catch-all server is written).
fn host_patterns(names: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for raw in names {
        let n = raw.to_ascii_lowercase();
        if n.is_empty() || n == "_" {
            continue;
        }
        if n.starts_with('~') {
            return Err(format!(
                "server_name `{raw}` is a regular expression; umbra matches exact hosts and `*.domain` wildcards only"
            ));
        }
        let bare = n.strip_prefix("*.").unwrap_or(&n);
        let bare = bare.strip_prefix('.').unwrap_or(bare);
        if bare.is_empty()
            || bare.contains('*')
            || !bare
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(format!(
                "server_name `{raw}` cannot be translated; umbra matches exact hosts and `*.domain` wildcards only"
            ));
        }
        if let Some(domain) = n.strip_prefix('.') {
            // nginx's `.example.com` is example.com and every subdomain.
            out.push(domain.to_string());
            out.push(format!("*.{domain}"));
        } else {
            out.push(n);
        }
    }
    out.dedup();
    Ok(out)
}

fn read_location(
    walk: &mut Walk,
    loc: &Directive,
    hosts: &[String],
    described: &str,
) -> Option<Route> {
    let prefix = match loc.args.as_slice() {
        [p] if p.starts_with('@') => {
            walk.notes.push(Note {
                at: Some(loc.at.clone()),
                message: format!("named location `{p}` is only reachable from nginx's own redirects; not translated"),
            });
            return None;
        }
        [p] | [_, p] if loc.args.len() == 1 || loc.args[0] == "^~" => p.clone(),
        [m, p] if m == "=" => {
            walk.problem(
                &loc.at,
                format!(
                    "`location = {p}` matches one exact path; umbra matches path prefixes only"
                ),
            );
            return None;
        }
        [m, p] if m == "~" || m == "~*" => {
            walk.problem(
                &loc.at,
                format!(
                    "`location {m} {p}` is a regular expression; umbra matches path prefixes only"
                ),
            );
            return None;
        }
        _ => {
            walk.problem(
                &loc.at,
                format!("`location {}` is not understood", loc.args.join(" ")),
            );
            return None;
        }
    };
    if !prefix.starts_with('/') || prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
        walk.problem(
            &loc.at,
            format!("location prefix {prefix:?} must start with '/' and contain no spaces"),
        );
        return None;
    }
    let mut pass = None;
    let mut serves_itself = None;
    let mut notes = Vec::new();
    let before = walk.problems.len();
    for d in loc.block.as_deref().unwrap_or_default() {
        let n = d.name.as_str();
        match n {
            "proxy_pass" => pass = Some(d),
            "location" => walk.problem(&d.at, "nested `location` blocks cannot be translated; write each prefix as its own location"),
            n if ANSWERS_ITSELF.contains(&n) => walk.problem(
                &d.at,
                format!("`{n}` in location {prefix}: nginx answers or rewrites these requests itself, umbra-proxy only forwards them"),
            ),
            n if ACCESS_CONTROL.contains(&n) => walk.problem(
                &d.at,
                format!("`{n}` (access control) in location {prefix} cannot be translated: umbra-proxy would let every request through"),
            ),
            "alias" | "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "grpc_pass" | "memcached_pass" => {
                serves_itself = Some(n)
            }
            n if HARMLESS.contains(&n) => {}
            n => notes.push(match proxy_wide_hint(n) {
                Some(hint) => hint_note(d, hint),
                None => Note {
                    at: Some(d.at.clone()),
                    message: format!("`{n}` in location {prefix} is not translated"),
                },
            }),
        }
    }
    let Some(pass) = pass else {
        if walk.problems.len() == before {
            walk.problem(
                &loc.at,
                format!(
                    "location {prefix} has no `proxy_pass`{}: nginx serves it itself, umbra-proxy only proxies",
                    serves_itself.map(|s| format!(" (it uses `{s}`)")).unwrap_or_default()
                ),
            );
        }
        return None;
    };
    let target = match proxy_target(pass, &prefix) {
        Ok(t) => t,
        Err(m) => {
            walk.problem(&pass.at, m);
            return None;
        }
    };
    let target = match target {
        Target::Direct(host) => match walk.upstreams.get_mut(&host) {
            Some(u) => {
                u.used = true;
                Target::Upstream(host)
            }
            None => match member_address(&host) {
                Ok(addr) => Target::Direct(addr),
                Err(m) => {
                    walk.problem(&pass.at, m);
                    return None;
                }
            },
        },
        other => other,
    };
    if walk.problems.len() != before {
        return None;
    }
    if prefix != "/" && !prefix.ends_with('/') {
        notes.push(Note {
            at: Some(loc.at.clone()),
            message: format!(
                "nginx's `location {prefix}` also matched {prefix}-anything (e.g. {prefix}x); umbra matches {prefix} and {prefix}/... only"
            ),
        });
    }
    Some(Route {
        target,
        hosts: hosts.to_vec(),
        source: format!("{} (server {described}, location {prefix})", loc.at),
        prefix,
        notes,
    })
}

/// `http://NAME`, `http://host:port` or the same with a URI equal to the location's prefix
/// (which nginx forwards unchanged).
fn proxy_target(pass: &Directive, prefix: &str) -> Result<Target, String> {
    let [url] = pass.args.as_slice() else {
        return Err("`proxy_pass` takes exactly one URL".into());
    };
    if url.contains('$') {
        return Err(format!(
            "`proxy_pass {url}` uses variables; umbra needs fixed members"
        ));
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(if url.starts_with("https://") {
            format!(
                "`proxy_pass {url}` talks TLS to the upstream; umbra-proxy connects in plain HTTP"
            )
        } else {
            format!("`proxy_pass {url}` is not an http:// URL")
        });
    };
    let (host, uri) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    if let Some(uri) = uri {
        if uri != prefix {
            return Err(format!(
                "`proxy_pass {url}` replaces the matched prefix {prefix} with {uri}; umbra forwards paths unchanged (drop the URI part, or change the upstream's paths)"
            ));
        }
    }
    if host.is_empty() {
        return Err(format!("`proxy_pass {url}` names no upstream"));
    }
    Ok(Target::Direct(host.to_string()))
}

/// Routes with the same target and prefix become one workload answering all their hosts
/// (a catch-all server's stay apart, since "any host" absorbs every other name).
fn group(walk: &mut Walk, routes: Vec<Route>) -> Vec<Workload> {
    let mut order: Vec<(Target, String, bool)> = Vec::new();
    let mut merged: BTreeMap<(Target, String, bool), Route> = BTreeMap::new();
    for r in routes {
        let key = (r.target.clone(), r.prefix.clone(), r.hosts.is_empty());
        match merged.get_mut(&key) {
            Some(m) => {
                for h in r.hosts {
                    if !m.hosts.contains(&h) {
                        m.hosts.push(h);
                    }
                }
                m.source = format!("{}; {}", m.source, r.source);
                m.notes.extend(r.notes);
            }
            None => {
                order.push(key.clone());
                merged.insert(key, r);
            }
        }
    }
    let base = |t: &Target| match t {
        Target::Upstream(n) => sanitize(n),
        Target::Direct(a) => sanitize(a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h)),
    };
    let mut per_base: BTreeMap<String, usize> = BTreeMap::new();
    for (t, _, _) in &order {
        *per_base.entry(base(t)).or_default() += 1;
    }
    let mut taken = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for key in order {
        let Some(r) = merged.remove(&key) else {
            continue;
        };
        let b = base(&r.target);
        let mut name = if per_base.get(&b).copied().unwrap_or(0) > 1 {
            let path = sanitize(r.prefix.trim_matches('/'));
            let path = if path == "workload" {
                "root".to_string()
            } else {
                path
            };
            truncate(&format!("{b}-{path}"))
        } else {
            b
        };
        if taken.contains(&name) {
            let stem = name.clone();
            let mut i = 2;
            while taken.contains(&name) {
                name = truncate(&format!("{stem}-{i}"));
                i += 1;
            }
        }
        taken.insert(name.clone());
        let (primary, shadow, mut notes) = match &r.target {
            Target::Upstream(u) => match walk.upstreams.get(u) {
                Some(up) => {
                    let mut notes = up.notes.clone();
                    if !up.backup.is_empty() {
                        notes.push(Note {
                            at: Some(up.at.clone()),
                            message: "the `backup` servers are the shadow pool at weight 0: nginx sent them traffic only when every primary server failed; umbra moves traffic to the shadow pool when the controller (or shadow_weight) says so".into(),
                        });
                    }
                    (up.primary.clone(), up.backup.clone(), notes)
                }
                None => continue,
            },
            Target::Direct(addr) => (vec![addr.clone()], Vec::new(), Vec::new()),
        };
        notes.extend(r.notes);
        out.push(Workload {
            name,
            hosts: r.hosts,
            path_prefix: r.prefix,
            primary,
            shadow,
            sources: r.source.split("; ").map(str::to_string).collect(),
            notes,
        });
    }
    out
}

/// A valid workload name from any text: lowercase, `[a-z0-9_-]`, starting alphanumeric.
fn sanitize(text: &str) -> String {
    let mut s: String = text
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.contains("--") {
        s = s.replace("--", "-");
    }
    let s = s.trim_start_matches(['-', '_']).trim_end_matches('-');
    if s.is_empty() {
        "workload".to_string()
    } else {
        truncate(s)
    }
}

fn truncate(s: &str) -> String {
    s.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nginx::syntax::parse;

    fn tr(text: &str) -> Result<Translation, Vec<Problem>> {
        translate(
            Path::new("nginx.conf"),
            &parse(Path::new("nginx.conf"), text).expect("syntax"),
        )
    }

    fn problems(text: &str) -> Vec<String> {
        tr(text)
            .expect_err("untranslatable")
            .iter()
            .map(Problem::to_string)
            .collect()
    }

    #[test]
    fn names_are_valid_workload_names() {
        assert_eq!(sanitize("Shop_Backend.v2"), "shop_backend-v2");
        assert_eq!(sanitize("--x"), "x");
        assert_eq!(sanitize("..."), "workload");
        assert_eq!(sanitize(&"a".repeat(80)).len(), 63);
    }

    #[test]
    fn server_names_become_host_patterns() {
        let hosts =
            |n: &[&str]| host_patterns(&n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            hosts(&["Shop.Example.com", "*.cdn.example.com"]),
            Ok(vec!["shop.example.com".into(), "*.cdn.example.com".into()])
        );
        assert_eq!(
            hosts(&[".example.org"]),
            Ok(vec!["example.org".into(), "*.example.org".into()])
        );
        assert_eq!(hosts(&["_"]), Ok(vec![]));
        assert!(
            hosts(&["~^api\\d+\\.example\\.com$"]).is_err_and(|m| m.contains("regular expression"))
        );
        assert!(hosts(&["www.example.*"]).is_err());
    }

    #[test]
    fn addresses_get_nginx_default_port() {
        assert_eq!(member_address("app1"), Ok("app1:80".into()));
        assert_eq!(member_address("10.0.0.1:8080"), Ok("10.0.0.1:8080".into()));
        assert_eq!(member_address("[::1]:81"), Ok("[::1]:81".into()));
        assert_eq!(member_address("[::1]"), Ok("[::1]:80".into()));
        assert!(member_address("unix:/run/app.sock").is_err());
        assert!(member_address("10.0.0.1:0").is_err());
    }

    #[test]
    fn one_upstream_many_servers_and_prefixes() {
        let t = tr("http {\n\
              upstream shop { server 10.0.0.1:8080; server 10.0.0.2:8080; server 10.0.0.9:8080 backup; }\n\
              upstream search { server search.internal:9200 weight=3; server 10.0.1.2:9200 weight=1 max_fails=3; }\n\
              server { listen 80; server_name shop.example.com; location / { proxy_pass http://shop; } location /search/ { proxy_pass http://search; } }\n\
              server { listen 80; server_name www.shop.example.com; location / { proxy_pass http://shop; } }\n\
              server { listen 8080 default_server; server_name _; location ^~ /api/ { proxy_pass http://shop/api/; } }\n\
            }\n")
            .expect("translates");
        let names: Vec<_> = t.workloads.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, vec!["shop-root", "search", "shop-api"]);
        let shop = &t.workloads[0];
        assert_eq!(shop.hosts, vec!["shop.example.com", "www.shop.example.com"]);
        assert_eq!(shop.primary, vec!["10.0.0.1:8080", "10.0.0.2:8080"]);
        assert_eq!(shop.shadow, vec!["10.0.0.9:8080"]);
        assert_eq!(shop.sources.len(), 2);
        assert!(shop.notes.iter().any(|n| n.message.contains("backup")));
        let search = &t.workloads[1];
        assert_eq!(search.path_prefix, "/search/");
        assert!(
            search
                .notes
                .iter()
                .any(|n| n.message.contains("weights 3, 1")),
            "{:?}",
            search.notes
        );
        assert!(search.notes.iter().any(|n| n.message.contains("max_fails")));
        let api = &t.workloads[2];
        assert!(api.hosts.is_empty());
        assert_eq!(api.path_prefix, "/api/");
        assert_eq!(
            t.notes
                .iter()
                .filter(|n| n.message.contains("set [proxy] listen"))
                .count(),
            3
        );
    }

    #[test]
    fn a_direct_proxy_pass_is_a_one_member_pool() {
        let t = tr("server { server_name a.example; location /status { proxy_pass http://127.0.0.1:9000; } }")
            .expect("translates");
        let w = &t.workloads[0];
        assert_eq!(
            (w.name.as_str(), w.primary.clone()),
            ("127-0-0-1", vec!["127.0.0.1:9000".to_string()])
        );
        assert!(
            w.notes.iter().any(|n| n.message.contains("/statusx")),
            "{:?}",
            w.notes
        );
    }

    #[test]
    fn routing_that_umbra_cannot_reproduce_is_refused_with_file_and_line() {
        let p = problems(
            "http {\n\
            upstream app { server 10.0.0.1:80; }\n\
            server {\n\
              server_name a.example;\n\
              location ~ \\.php$ { proxy_pass http://app; }\n\
              location = /exact { proxy_pass http://app; }\n\
              location /v1/ { proxy_pass http://app/v2/; }\n\
              location /static/ { root /srv; }\n\
              location /admin/ { allow 10.0.0.0/8; deny all; proxy_pass http://app; }\n\
              location /tls/ { proxy_pass https://app; }\n\
              location /var/ { proxy_pass http://$backend; }\n\
              location /old { return 301 /new; }\n\
            }\n\
            stream { server { listen 5432; } }\n\
          }\n",
        );
        let want = [
            ("nginx.conf:5:", "regular expression"),
            ("nginx.conf:6:", "exact path"),
            (
                "nginx.conf:7:",
                "replaces the matched prefix /v1/ with /v2/",
            ),
            ("nginx.conf:8:", "no `proxy_pass`"),
            ("nginx.conf:9:", "`allow` (access control)"),
            ("nginx.conf:10:", "TLS"),
            ("nginx.conf:11:", "variables"),
            ("nginx.conf:12:", "`return`"),
            ("nginx.conf:14:", "`stream`"),
        ];
        for (at, what) in want {
            assert!(
                p.iter().any(|m| m.starts_with(at) && m.contains(what)),
                "no problem {at} {what} in {p:#?}"
            );
        }
    }

    #[test]
    fn an_upstream_of_only_backups_is_refused() {
        let p = problems(
            "upstream b { server 10.0.0.1:80 backup; server 10.0.0.2:80 down; }\n\
                          server { location / { proxy_pass http://b; } }",
        );
        assert!(
            p[0].starts_with("nginx.conf:1:") && p[0].contains("no server"),
            "{p:?}"
        );
    }

    #[test]
    fn a_config_without_proxied_locations_is_refused() {
        let p = problems("events {}\nhttp { server { listen 80; } }\n");
        assert!(p[0].contains("nothing to translate"), "{p:?}");
    }

    #[test]
    fn identical_prefix_uri_is_forwarded_unchanged() {
        let t = tr("server { location /api/ { proxy_pass http://10.1.1.1:81/api/; } }")
            .expect("same URI");
        assert_eq!(t.workloads[0].primary, vec!["10.1.1.1:81"]);
    }
}
