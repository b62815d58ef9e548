//! A whole nginx config to Umbra workloads and `[proxy]` settings, notes and problems.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::directives::{hint_note, proxy_wide_hint};
use super::group::group;
use super::headers;
use super::inherit::{self, Inherited};
use super::listen::{self, IMPLICIT, Listen};
use super::model::{Edge, HeaderRules, Note, Problem, Translation, UpstreamProtocol};
use super::redirect::{self, PlainServer};
use super::server::{Server, read_server};
use super::syntax::{Directive, Location};
use super::tls;
use super::upstream::{Upstream, read_upstream};

/// Where a location's `proxy_pass` sends requests.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    Upstream(String),
    Direct(String),
}

/// What a workload sets besides its pools; locations that differ here are different workloads.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Settings {
    pub redirect_https: bool,
    pub protocol: UpstreamProtocol,
    pub request: HeaderRules,
    pub response: HeaderRules,
}

/// One proxied location of one server block.
#[derive(Clone, Debug)]
pub(crate) struct Route {
    pub target: Target,
    pub hosts: Vec<String>,
    pub prefix: String,
    pub source: String,
    pub settings: Settings,
    pub notes: Vec<Note>,
}

/// What the walk over the config has found so far.
#[derive(Default)]
pub(crate) struct Walk {
    pub upstreams: BTreeMap<String, Upstream>,
    /// Server blocks, read after every upstream is known (nginx allows either order).
    servers: Vec<Directive>,
    /// The http level's directives (or a conf.d snippet's top level), for what servers inherit.
    pub http: Vec<Directive>,
    pub edge: Edge,
    pub notes: Vec<Note>,
    pub problems: Vec<Problem>,
    /// Kinds of note already given once for the whole config.
    noted: BTreeSet<String>,
}

impl Walk {
    /// Records a problem (once: an inherited directive is seen by every server).
    pub(crate) fn problem(&mut self, at: &Location, message: impl Into<String>) {
        let p = Problem {
            at: at.clone(),
            message: message.into(),
        };
        if !self.problems.contains(&p) {
            self.problems.push(p);
        }
    }

    /// Records `note` unless a note of this `kind` was given already.
    pub(crate) fn note_once(&mut self, kind: &str, note: Note) {
        if self.noted.insert(kind.to_string()) {
            self.notes.push(note);
        }
    }
}

/// Translates a loaded config (includes already spliced in); `file` names an empty one in
/// errors, and its directory is where relative certificate paths start (as in nginx). Every
/// problem is reported, not just the first, so one run lists all that needs changing.
pub fn translate(file: &Path, config: &[Directive]) -> Result<Translation, Vec<Problem>> {
    let mut walk = Walk::default();
    // Top level: `http { ... }`, or a conf.d snippet holding upstream/server blocks directly.
    collect(&mut walk, config, true);
    let http = Inherited::default().enter(&walk.http);
    let base = file.parent().unwrap_or(Path::new(""));
    let blocks = std::mem::take(&mut walk.servers);
    let mut servers: Vec<Server> = blocks
        .iter()
        .map(|s| read_server(&mut walk, s, &http, base))
        .collect();
    listeners(&mut walk, &mut servers);
    let routes = place(&mut walk, servers);
    let mut translation = Translation {
        workloads: group(&walk, routes),
        ..Translation::default()
    };
    if let Some(first) = blocks.first() {
        if !translation.workloads.is_empty()
            && translation.workloads.iter().all(|w| !w.hosts.is_empty())
        {
            walk.notes.push(Note::at(
                &first.at,
                "nginx sends a request whose Host no server_name matches to the port's default server (this one, or the one marked default_server); umbra answers it 404: give a workload no hosts to catch them",
            ));
        }
    }
    for (name, u) in &walk.upstreams {
        if !u.used {
            walk.notes.push(Note::at(
                &u.at,
                format!("upstream {name} is used by no location; not translated"),
            ));
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
    translation.edge = walk.edge;
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
                walk.http.push(d.clone());
                if inherit::is_list(name) || any_level(walk, d) {
                    continue;
                }
                if let Some(hint) = proxy_wide_hint(name) {
                    walk.notes.push(hint_note(d, hint));
                }
            }
            // `map $http_upgrade $connection_upgrade { ... }` only serves the Connection
            // header WebSockets need, which the proxy handles itself; events, types, geo and
            // other maps decide nothing about where a request is proxied.
            _ => {}
        }
    }
}

/// Directives read the same at http, server and location level (TLS tuning, real IP, HTTP/2
/// and HTTP/3 switches). Returns whether `d` was one.
pub(crate) fn any_level(walk: &mut Walk, d: &Directive) -> bool {
    match d.name.as_str() {
        // HTTP/2 is always on: ALPN on TLS listeners, h2c on plain ones.
        "http2" => true,
        n if n == "http3" || n.starts_with("quic_") => {
            walk.note_once(
                "quic",
                Note::at(
                    &d.at,
                    format!("`{n}`: umbra-proxy does not serve HTTP/3 (QUIC); clients use HTTP/2 or HTTP/1.1 over TLS"),
                ),
            );
            true
        }
        _ => tls::ssl_directive(walk, d) || headers::real_ip(walk, d),
    }
}

/// Folds the servers' `listen`s into `[proxy]`'s listeners and their certificates into
/// `[proxy.tls]`'s. A server without `listen` has nginx's implicit `*:80` once any other
/// server names its listeners (with none anywhere, `[proxy]` keeps Umbra's default).
fn listeners(walk: &mut Walk, servers: &mut [Server]) {
    if servers.iter().all(|s| s.listens.is_empty()) {
        return;
    }
    for s in servers.iter_mut().filter(|s| s.listens.is_empty()) {
        s.listens.push(Listen {
            addr: IMPLICIT.to_string(),
            tls: false,
            default_server: false,
            at: s.at.clone(),
        });
    }
    listen::fold(servers.iter().flat_map(|s| &s.listens), &mut walk.edge);
    let tls_listen = walk.edge.tls_listen.clone();
    let is_tls = |s: &Server| {
        s.listens
            .iter()
            .any(|l| l.tls || tls_listen.contains(&l.addr))
    };
    // The default server's certificate is nginx's answer to clients without (known) SNI; it
    // goes first, where Umbra looks for its default.
    let mut tls_servers: Vec<&Server> = servers.iter().filter(|s| is_tls(s)).collect();
    tls_servers.sort_by_key(|s| !s.listens.iter().any(|l| l.tls && l.default_server));
    for s in tls_servers {
        if s.certificates.is_empty() && !s.reject_handshake && !s.names_certificates {
            let at = s.listens.iter().find(|l| l.tls).map_or(&s.at, |l| &l.at);
            walk.problem(
                at,
                "this server listens with TLS but has no `ssl_certificate` (nor one at http level): umbra-proxy needs a certificate and key for it",
            );
        }
        for c in &s.certificates {
            if !walk.edge.certificates.contains(c) {
                walk.edge.certificates.push(c.clone());
            }
        }
    }
}

/// Gives each route its plain-HTTP fate: redirected to https when nginx handed its hosts'
/// plain requests to a redirect-only server (a route whose hosts fare differently is split),
/// and a note when Umbra's shared listeners answer it where nginx did not.
fn place(walk: &mut Walk, servers: Vec<Server>) -> Vec<Route> {
    let tls_listen = &walk.edge.tls_listen;
    let plain_at: Vec<usize> = (0..servers.len())
        .filter(|&i| {
            let l = &servers[i].listens;
            l.is_empty() || l.iter().any(|l| !l.tls && !tls_listen.contains(&l.addr))
        })
        .collect();
    let plain: Vec<PlainServer> = plain_at
        .iter()
        .map(|&i| PlainServer {
            hosts: servers[i].hosts.clone(),
            default_server: servers[i]
                .listens
                .iter()
                .any(|l| l.default_server && !l.tls),
            redirects: servers[i].redirect.is_some(),
        })
        .collect();
    let redirected = |host: Option<&str>| {
        redirect::handler(&plain, host)
            .filter(|&p| plain[p].redirects)
            .map(|p| plain_at[p])
    };
    let mut used = vec![false; servers.len()];
    let mut routes = Vec::new();
    for s in &servers {
        for route in &s.routes {
            let mut parts: Vec<(Vec<String>, bool)> = Vec::new();
            if route.hosts.is_empty() {
                let by = redirected(None);
                parts.push((Vec::new(), by.is_some()));
                by.into_iter().for_each(|i| used[i] = true);
            } else {
                let (mut to_https, mut kept) = (Vec::new(), Vec::new());
                for h in &route.hosts {
                    match redirected(Some(h)) {
                        Some(i) => {
                            used[i] = true;
                            to_https.push(h.clone());
                        }
                        None => kept.push(h.clone()),
                    }
                }
                parts.extend(
                    [(to_https, true), (kept, false)]
                        .into_iter()
                        .filter(|(h, _)| !h.is_empty()),
                );
            }
            for (hosts, redirect_https) in parts {
                let mut r = route.clone();
                r.hosts = hosts;
                r.settings.redirect_https = redirect_https;
                r.notes.extend(listen::elsewhere_note(
                    &s.at,
                    &s.listens,
                    &walk.edge,
                    redirect_https,
                ));
                routes.push(r);
            }
        }
    }
    for (s, used) in servers.iter().zip(used) {
        let Some(r) = &s.redirect else { continue };
        if used {
            walk.notes.extend(r.notes.iter().cloned());
        } else if !s.hosts.is_empty() {
            walk.notes.push(Note::at(
                &r.at,
                format!("nginx redirected plain HTTP for {} to https, but no translated workload answers these hosts: umbra answers them 404", s.hosts.join(" ")),
            ));
        }
    }
    routes
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;

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
        assert_eq!(t.edge.listen, vec!["0.0.0.0:80", "0.0.0.0:8080"]);
        assert!(t.edge.tls_listen.is_empty());
        // Umbra answers every workload on both listeners; nginx kept the servers apart.
        assert!(
            shop.notes
                .iter()
                .any(|n| n.message.contains("over plain HTTP on 0.0.0.0:8080")),
            "{:?}",
            shop.notes
        );
        assert!(
            api.notes
                .iter()
                .any(|n| n.message.contains("over plain HTTP on 0.0.0.0:80 ")),
            "{:?}",
            api.notes
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

    fn notes_of(t: &Translation) -> Vec<String> {
        t.notes
            .iter()
            .chain(t.workloads.iter().flat_map(|w| w.notes.iter()))
            .map(|n| format!("{}: {}", n.at.as_ref().map_or(0, |a| a.line), n.message))
            .collect()
    }

    #[test]
    fn a_location_setting_one_header_loses_the_servers_headers_as_in_nginx() {
        let t = tr("server {\n\
              server_name app.example;\n\
              proxy_set_header Host $host;\n\
              proxy_set_header X-Env production;\n\
              location / { proxy_pass http://10.0.0.1:80; }\n\
              location /ws/ {\n\
                proxy_pass http://10.0.0.1:80;\n\
                proxy_set_header Upgrade $http_upgrade;\n\
                proxy_set_header Connection $connection_upgrade;\n\
              }\n\
            }\n")
        .expect("translates");
        let root = &t.workloads[0];
        assert_eq!(root.path_prefix, "/");
        assert_eq!(
            root.request_headers.set,
            vec![("X-Env".to_string(), "production".to_string())]
        );
        let ws = &t.workloads[1];
        assert_eq!(ws.path_prefix, "/ws/");
        assert!(ws.request_headers.is_empty(), "{:?}", ws.request_headers);
        assert!(
            ws.notes
                .iter()
                .any(|n| n.at.as_ref().is_some_and(|a| a.line == 6)
                    && n.message.contains("upstream's name as Host")),
            "{:?}",
            ws.notes
        );
    }

    #[test]
    fn the_https_redirect_marks_the_hosts_nginx_sent_to_it() {
        let t = tr("http {\n\
              upstream app { server 10.0.0.1:8080; }\n\
              server { listen 443 ssl http2; server_name a.example b.example;\n\
                ssl_certificate /etc/ssl/ab.pem; ssl_certificate_key /etc/ssl/ab.key;\n\
                location / { proxy_pass http://app; } }\n\
              server { listen 80; server_name a.example; return 301 https://$host$request_uri; }\n\
              server { listen 80 default_server; server_name _; location / { proxy_pass http://10.0.0.9:80; } }\n\
            }\n")
        .expect("translates");
        let summary: Vec<(&str, Vec<String>, bool)> = t
            .workloads
            .iter()
            .map(|w| (w.name.as_str(), w.hosts.clone(), w.redirect_https))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("app", vec!["a.example".to_string()], true),
                ("app-2", vec!["b.example".to_string()], false),
                ("10-0-0-9", vec![], false),
            ]
        );
        let notes = notes_of(&t);
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("6: ") && n.contains("umbra answers 308")),
            "{notes:#?}"
        );
        // b.example's plain requests went to the catch-all server in nginx; umbra proxies them.
        assert!(
            t.workloads[1].notes.iter().any(|n| n
                .message
                .contains("plain HTTP on 0.0.0.0:80 (proxied, not redirected")),
            "{:?}",
            t.workloads[1].notes
        );
        assert_eq!(t.edge.listen, vec!["0.0.0.0:80"]);
        assert_eq!(t.edge.tls_listen, vec!["0.0.0.0:443"]);
        assert_eq!(t.edge.certificates.len(), 1);
    }

    #[test]
    fn grpc_pass_is_an_http2_upstream() {
        let t = tr("upstream grpc_backend { server 10.0.0.5:50051; }\n\
            server { server_name g.example;\n\
              location /pkg.Greeter/ { grpc_pass grpc://grpc_backend; grpc_set_header X-Env prod; }\n\
              location /pkg.Secure/ { grpc_pass grpcs://10.0.0.6; }\n\
            }\n")
        .expect("translates");
        let plain = &t.workloads[0];
        assert_eq!(plain.upstream_protocol, UpstreamProtocol::H2c);
        assert_eq!(plain.primary, vec!["10.0.0.5:50051"]);
        assert_eq!(
            plain.request_headers.set,
            vec![("X-Env".to_string(), "prod".to_string())]
        );
        let secure = &t.workloads[1];
        assert_eq!(secure.upstream_protocol, UpstreamProtocol::H2);
        assert_eq!(secure.primary, vec!["10.0.0.6:443"]);
        assert!(
            secure
                .notes
                .iter()
                .any(|n| n.message.contains("grpc_ssl_verify")),
            "{:?}",
            secure.notes
        );
    }

    #[test]
    fn tls_that_umbra_cannot_serve_is_refused_with_file_and_line() {
        let p = problems(
            "server {\n\
              listen 443 ssl;\n\
              server_name a.example;\n\
              location / { proxy_pass http://10.0.0.1:80; }\n\
            }\n\
            server {\n\
              listen 8443 ssl proxy_protocol;\n\
              server_name b.example;\n\
              ssl_certificate /etc/ssl/$ssl_server_name.pem;\n\
              ssl_certificate_key /etc/ssl/b.key;\n\
              ssl_verify_client on;\n\
              location / { proxy_pass http://10.0.0.1:80; }\n\
            }\n",
        );
        let want = [
            ("nginx.conf:2:", "no `ssl_certificate`"),
            ("nginx.conf:7:", "PROXY protocol"),
            ("nginx.conf:9:", "is not a file"),
            ("nginx.conf:11:", "client certificates"),
        ];
        for (at, what) in want {
            assert!(
                p.iter().any(|m| m.starts_with(at) && m.contains(what)),
                "no problem {at} {what} in {p:#?}"
            );
        }
        assert_eq!(p.len(), want.len(), "{p:#?}");
    }

    #[test]
    fn real_ip_networks_become_trusted_proxies() {
        let t = tr("http {\n\
              set_real_ip_from 10.0.0.0/8;\n\
              set_real_ip_from 2001:db8::/32;\n\
              real_ip_header X-Forwarded-For;\n\
              server { set_real_ip_from 10.0.0.0/8;\n\
                location / { proxy_pass http://10.0.0.1:80; proxy_set_header Forwarded $proxy_add_forwarded; } }\n\
            }\n")
        .expect("translates");
        assert_eq!(t.edge.trusted_proxies, vec!["10.0.0.0/8", "2001:db8::/32"]);
        assert!(t.edge.rfc7239);
        // No listen anywhere: [proxy] keeps Umbra's default listener.
        assert!(t.edge.listen.is_empty() && t.edge.tls_listen.is_empty());
    }
}
