//! One nginx `location` with `proxy_pass` or `grpc_pass` as a route with its header rules.

use super::directives::{ACCESS_CONTROL, ANSWERS_ITSELF, HARMLESS, hint_note, proxy_wide_hint};
use super::headers::{Module, location_headers};
use super::inherit::{self, Inherited};
use super::model::{Note, UpstreamProtocol};
use super::syntax::Directive;
use super::translate::{Route, Settings, Target, Walk, any_level};
use super::upstream::member_address;

/// Reads a location of a server answering `hosts` (`described` names them in notes), with the
/// server's list directives `server` in effect.
pub(crate) fn read_location(
    walk: &mut Walk,
    loc: &Directive,
    hosts: &[String],
    described: &str,
    server: &Inherited,
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
    let mut grpc_verifies = false;
    let before = walk.problems.len();
    let block = loc.block.as_deref().unwrap_or_default();
    for d in block {
        let n = d.name.as_str();
        if inherit::is_list(n) || any_level(walk, d) {
            continue;
        }
        match n {
            "proxy_pass" => pass = Some((d, Module::Proxy)),
            "grpc_pass" => pass = Some((d, Module::Grpc)),
            "grpc_ssl_verify" => grpc_verifies = d.args.first().is_some_and(|a| a == "on"),
            "location" => walk.problem(&d.at, "nested `location` blocks cannot be translated; write each prefix as its own location"),
            n if ANSWERS_ITSELF.contains(&n) => walk.problem(
                &d.at,
                format!("`{n}` in location {prefix}: nginx answers or rewrites these requests itself, umbra-proxy only forwards them"),
            ),
            n if ACCESS_CONTROL.contains(&n) => walk.problem(
                &d.at,
                format!("`{n}` (access control) in location {prefix} cannot be translated: umbra-proxy would let every request through"),
            ),
            "alias" | "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "memcached_pass" => {
                serves_itself = Some(n)
            }
            n if HARMLESS.contains(&n) => {}
            n => notes.push(match proxy_wide_hint(n) {
                Some(hint) => hint_note(d, hint),
                None => Note::at(&d.at, format!("`{n}` in location {prefix} is not translated")),
            }),
        }
    }
    let Some((pass, module)) = pass else {
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
    let found = match module {
        Module::Proxy => proxy_target(pass, &prefix).map(|t| (t, UpstreamProtocol::H1, 80)),
        Module::Grpc => grpc_target(pass),
    };
    let (target, protocol, default_port) = match found {
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
            None => match member_address(&host, default_port) {
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
    if protocol == UpstreamProtocol::H2 && !grpc_verifies {
        notes.push(Note::at(
            &pass.at,
            "umbra verifies the upstream's certificate (against the system's roots and the member's address, or [workloads.upstream_tls] sni); nginx did not (grpc_ssl_verify is off by default): set upstream_tls if the certificate would not pass",
        ));
    }
    if prefix != "/" && !prefix.ends_with('/') {
        notes.push(Note::at(
            &loc.at,
            format!(
                "nginx's `location {prefix}` also matched {prefix}-anything (e.g. {prefix}x); umbra matches {prefix} and {prefix}/... only"
            ),
        ));
    }
    let headers = location_headers(&server.enter(block), module, &loc.at);
    walk.edge.rfc7239 |= headers.rfc7239;
    notes.extend(headers.notes);
    Some(Route {
        target,
        hosts: hosts.to_vec(),
        source: format!("{} (server {described}, location {prefix})", loc.at),
        prefix,
        settings: Settings {
            redirect_https: false,
            protocol,
            request: headers.request,
            response: headers.response,
        },
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
                "`proxy_pass {url}` talks TLS to the upstream without checking its certificate (nginx's default); umbra would verify it: write this workload by hand with [workloads.upstream_tls] (sni, verify)"
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

/// `grpc_pass [grpc://|grpcs://]ADDRESS`: gRPC is HTTP/2, in clear text (`h2c`) or over TLS
/// (`h2`); the port nginx assumes is 80, or 443 for `grpcs`.
fn grpc_target(pass: &Directive) -> Result<(Target, UpstreamProtocol, u16), String> {
    let [url] = pass.args.as_slice() else {
        return Err("`grpc_pass` takes exactly one address".into());
    };
    if url.contains('$') {
        return Err(format!(
            "`grpc_pass {url}` uses variables; umbra needs fixed members"
        ));
    }
    let (rest, protocol, port) = match url.strip_prefix("grpcs://") {
        Some(rest) => (rest, UpstreamProtocol::H2, 443),
        None => (
            url.strip_prefix("grpc://").unwrap_or(url),
            UpstreamProtocol::H2c,
            80,
        ),
    };
    if rest.is_empty() || rest.contains('/') {
        return Err(format!("`grpc_pass {url}` is not an upstream address"));
    }
    Ok((Target::Direct(rest.to_string()), protocol, port))
}
