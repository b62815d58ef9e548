//! `listen` directives as Umbra's plain (`[proxy] listen`) and TLS (`[proxy.tls]`) listeners.

use std::net::SocketAddr;

use super::model::{Edge, Note};
use super::syntax::{Directive, Location};
use super::translate::Walk;

/// nginx's listener when a server block has no `listen` (as root; `*:8000` otherwise).
pub(crate) const IMPLICIT: &str = "0.0.0.0:80";

/// One socket a server block listens on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Listen {
    /// `ip:port` (or `host:port` as written).
    pub addr: String,
    /// `ssl` or `quic`.
    pub tls: bool,
    /// `default_server`: nginx's answer for hosts no `server_name` matches on this socket.
    pub default_server: bool,
    pub at: Location,
}

/// Parameters that tune nginx's socket or protocol and need nothing in Umbra.
const SOCKET_TUNING: &[&str] = &[
    "http2",
    "reuseport",
    "deferred",
    "bind",
    "backlog",
    "rcvbuf",
    "sndbuf",
    "ipv6only",
    "so_keepalive",
    "fastopen",
    "setfib",
    "accept_filter",
];

/// Reads `listen ADDRESS [params]`; problems and notes go to `walk`.
pub(crate) fn read_listen(walk: &mut Walk, d: &Directive) -> Option<Listen> {
    let Some((raw, params)) = d.args.split_first() else {
        walk.problem(&d.at, "`listen` without an address");
        return None;
    };
    let addr = match address(raw) {
        Ok(a) => a,
        Err(m) => {
            walk.problem(&d.at, m);
            return None;
        }
    };
    let mut listen = Listen {
        addr,
        tls: false,
        default_server: false,
        at: d.at.clone(),
    };
    for p in params {
        let key = p.split_once('=').map_or(p.as_str(), |(k, _)| k);
        match key {
            "ssl" => listen.tls = true,
            "quic" => {
                listen.tls = true;
                walk.note_once(
                    "quic",
                    Note::at(
                        &d.at,
                        format!("`listen {}`: umbra-proxy does not serve HTTP/3 (QUIC); clients use HTTP/2 or HTTP/1.1 over TLS on the same port", d.args.join(" ")),
                    ),
                );
            }
            "default_server" | "default" => listen.default_server = true,
            "proxy_protocol" => walk.problem(
                &d.at,
                "`listen ... proxy_protocol`: umbra-proxy does not read the PROXY protocol header and would answer every request 400; turn it off on the load balancer in front first",
            ),
            k if SOCKET_TUNING.contains(&k) => {}
            _ => walk.notes.push(Note::at(
                &d.at,
                format!("`listen` parameter `{p}` is not translated"),
            )),
        }
    }
    Some(listen)
}

/// nginx's `80`, `*:80`, `1.2.3.4`, `[::]:443`, `host:8080` as `ip:port` / `host:port`.
fn address(raw: &str) -> Result<String, String> {
    if raw.starts_with("unix:") {
        return Err(format!(
            "`listen {raw}`: umbra-proxy listens on TCP addresses only"
        ));
    }
    let bad = || format!("`listen {raw}` is not an address Umbra can listen on");
    let port_ok = |p: &str| p.parse::<u16>().is_ok_and(|p| p != 0);
    if raw.bytes().all(|b| b.is_ascii_digit()) {
        return if port_ok(raw) {
            Ok(format!("0.0.0.0:{raw}"))
        } else {
            Err(bad())
        };
    }
    if let Some(port) = raw.strip_prefix("*:") {
        return if port_ok(port) {
            Ok(format!("0.0.0.0:{port}"))
        } else {
            Err(bad())
        };
    }
    if raw.starts_with('[') {
        return match raw.rsplit_once("]:") {
            Some((_, port)) if port_ok(port) => Ok(raw.to_string()),
            Some(_) => Err(bad()),
            None if raw.ends_with(']') => Ok(format!("{raw}:80")),
            None => Err(bad()),
        };
    }
    match raw.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port_ok(port) => Ok(raw.to_string()),
        Some(_) => Err(bad()),
        None => Ok(format!("{raw}:80")),
    }
}

/// Every server's listeners as the proxy's: in order of appearance, each once, TLS where any
/// server said `ssl` (nginx makes the socket TLS for all its servers too), and without an
/// address a wildcard of the same port and family already receives (nginx binds only the
/// wildcard; two binds would collide).
pub(crate) fn fold<'a>(listens: impl Iterator<Item = &'a Listen>, edge: &mut Edge) {
    let all: Vec<&Listen> = listens.collect();
    let tls_addrs: Vec<&str> = all
        .iter()
        .filter(|l| l.tls)
        .map(|l| l.addr.as_str())
        .collect();
    for l in &all {
        let list = if tls_addrs.contains(&l.addr.as_str()) {
            &mut edge.tls_listen
        } else {
            &mut edge.listen
        };
        if !list.contains(&l.addr) {
            list.push(l.addr.clone());
        }
    }
    for list in [&mut edge.listen, &mut edge.tls_listen] {
        let snapshot = list.clone();
        list.retain(|a| covering(a, &snapshot).is_none_or(|w| w == a));
    }
}

/// The wildcard in `among` that receives connections to `addr`, if any.
fn covering<'a>(addr: &str, among: &'a [String]) -> Option<&'a String> {
    let a: SocketAddr = addr.parse().ok()?;
    among.iter().find(|w| {
        w.parse::<SocketAddr>().is_ok_and(|w| {
            w.ip().is_unspecified() && w.port() == a.port() && w.is_ipv4() == a.is_ipv4()
        })
    })
}

/// A note when Umbra answers a server's routes on listeners nginx did not give that server
/// (Umbra's listeners all serve every workload). `redirected`: its plain-HTTP requests are
/// redirected to https, so missing plain listeners make no difference.
pub(crate) fn elsewhere_note(
    at: &Location,
    own: &[Listen],
    edge: &Edge,
    redirected: bool,
) -> Option<Note> {
    let mine = |addr: &String, list: &[String]| {
        own.iter()
            .any(|l| l.addr == *addr || covering(&l.addr, list) == Some(addr))
    };
    let plain: Vec<&String> = if redirected {
        Vec::new()
    } else {
        edge.listen
            .iter()
            .filter(|a| !mine(a, &edge.listen))
            .collect()
    };
    let tls: Vec<&String> = edge
        .tls_listen
        .iter()
        .filter(|a| !mine(a, &edge.tls_listen))
        .collect();
    if plain.is_empty() && tls.is_empty() {
        return None;
    }
    let list = |v: &[&String]| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !plain.is_empty() {
        parts.push(format!(
            "plain HTTP on {} (proxied, not redirected: set redirect_https = true to send them to https)",
            list(&plain)
        ));
    }
    if !tls.is_empty() {
        parts.push(format!("TLS on {}", list(&tls)));
    }
    Some(Note::at(
        at,
        format!(
            "nginx did not serve this server block on every listener; umbra answers every workload on all of them, so these hosts are also answered over {}",
            parts.join(" and over ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn listen(addr: &str, tls: bool) -> Listen {
        Listen {
            addr: addr.into(),
            tls,
            default_server: false,
            at: Location {
                file: Arc::new(PathBuf::from("l.conf")),
                line: 1,
            },
        }
    }

    #[test]
    fn nginx_addresses() {
        assert_eq!(address("443"), Ok("0.0.0.0:443".into()));
        assert_eq!(address("*:80"), Ok("0.0.0.0:80".into()));
        assert_eq!(address("[::]:443"), Ok("[::]:443".into()));
        assert_eq!(address("[::]"), Ok("[::]:80".into()));
        assert_eq!(address("127.0.0.1"), Ok("127.0.0.1:80".into()));
        assert_eq!(address("10.0.0.1:8080"), Ok("10.0.0.1:8080".into()));
        assert!(address("unix:/run/nginx.sock").is_err());
        assert!(address("0").is_err());
        assert!(address("[::]:x").is_err());
    }

    #[test]
    fn listeners_fold_into_plain_and_tls_once_each() {
        let all = [
            listen("0.0.0.0:80", false),
            listen("[::]:80", false),
            listen("0.0.0.0:443", true),
            listen("[::]:443", true),
            listen("0.0.0.0:443", false),
            listen("127.0.0.1:80", false),
            listen("0.0.0.0:80", false),
        ];
        let mut edge = Edge::default();
        fold(all.iter(), &mut edge);
        assert_eq!(edge.listen, vec!["0.0.0.0:80", "[::]:80"]);
        assert_eq!(edge.tls_listen, vec!["0.0.0.0:443", "[::]:443"]);
    }

    #[test]
    fn a_server_missing_listeners_is_noted_unless_redirected() {
        let edge = Edge {
            listen: vec!["0.0.0.0:80".into()],
            tls_listen: vec!["0.0.0.0:443".into()],
            ..Edge::default()
        };
        let at = listen("x", false).at;
        let tls_only = [listen("0.0.0.0:443", true)];
        assert_eq!(elsewhere_note(&at, &tls_only, &edge, true), None);
        let n = elsewhere_note(&at, &tls_only, &edge, false).expect("note");
        assert!(n.message.contains("plain HTTP on 0.0.0.0:80"), "{n:?}");
        let loopback = [listen("127.0.0.1:80", false), listen("0.0.0.0:443", true)];
        assert_eq!(elsewhere_note(&at, &loopback, &edge, false), None);
        let plain_only = [listen("0.0.0.0:80", false)];
        let n = elsewhere_note(&at, &plain_only, &edge, false).expect("note");
        assert!(n.message.contains("TLS on 0.0.0.0:443"), "{n:?}");
    }
}
