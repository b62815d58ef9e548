//! nginx's plain-HTTP `return 301 https://$host$request_uri` server as `redirect_https`.

use super::model::Note;
use super::syntax::{Directive, Location};

/// A server block whose every request is redirected to the same URL over https.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Redirect {
    pub at: Location,
    /// What differs from Umbra's redirect (its status, its host), said when it is used.
    pub notes: Vec<Note>,
}

/// Whether `ret`, a `return` in a server answering `hosts`, is the https redirect Umbra has
/// built in: `return 301|302|307|308 https://HOST$request_uri` with HOST `$host`, `$http_host`,
/// `$server_name` or the server's one name.
pub(crate) fn https_redirect(ret: &Directive, hosts: &[String]) -> Option<Redirect> {
    let [code, url] = ret.args.as_slice() else {
        return None;
    };
    let code: u16 = code.parse().ok()?;
    if !matches!(code, 301 | 302 | 307 | 308) {
        return None;
    }
    let host = url.strip_prefix("https://")?.strip_suffix("$request_uri")?;
    let mut notes = Vec::new();
    match host {
        "$host" | "$http_host" => {}
        "$server_name" => {
            if hosts.len() > 1 {
                notes.push(Note::at(
                    &ret.at,
                    format!("nginx redirected every name of this server to https://{}; umbra keeps the host the client asked for", hosts[0]),
                ));
            }
        }
        literal if hosts.len() == 1 && hosts[0].eq_ignore_ascii_case(literal) => {}
        _ => return None,
    }
    if code != 308 {
        notes.push(Note::at(
            &ret.at,
            format!(
                "nginx redirected plain HTTP with {code}; umbra answers 308 (permanent, method and body kept){}",
                if code == 301 {
                    ""
                } else {
                    ", so clients may remember it"
                }
            ),
        ));
    }
    Some(Redirect {
        at: ret.at.clone(),
        notes,
    })
}

/// Certbot's form of the same redirect: `if ($host = NAME) { return 301
/// https://$host$request_uri; }` for every name of the server, then `return 404;` (which only
/// hosts the server does not name reach, and Umbra answers those 404 too).
pub(crate) fn certbot_redirect(
    ifs: &[&Directive],
    returns: &[&Directive],
    hosts: &[String],
) -> Option<Redirect> {
    let ([first, ..], [fallback]) = (ifs, returns) else {
        return None;
    };
    if fallback.args != ["404"] {
        return None;
    }
    let mut named = Vec::new();
    for d in ifs {
        let [open, "=", close] = d.args.iter().map(String::as_str).collect::<Vec<_>>()[..] else {
            return None;
        };
        let name = close.strip_suffix(')').filter(|_| open == "($host")?;
        let [ret] = d.block.as_deref()? else {
            return None;
        };
        if ret.name != "return" {
            return None;
        }
        https_redirect(ret, &[name.to_string()])?;
        named.push(name.to_ascii_lowercase());
    }
    if hosts.is_empty() || !hosts.iter().all(|h| named.contains(h)) {
        return None;
    }
    // Every `if` says the same; the first one's notes stand for all.
    let ret = first.block.as_deref()?.first()?;
    https_redirect(ret, &[])
}

/// A server block that answers plain HTTP, for finding the one nginx handed a request to.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PlainServer {
    /// Its `server_name`s as patterns; empty names nothing (`_`).
    pub hosts: Vec<String>,
    /// Marked `default_server` on a plain `listen`.
    pub default_server: bool,
    /// It only redirects to https.
    pub redirects: bool,
}

/// The plain server nginx hands a request for `host` to (`None`: a host no `server_name`
/// names): the first naming it exactly, else the first whose `*.` wildcard covers it, else the
/// default server (marked `default_server`, else the first). Ports are not told apart: Umbra's
/// listeners all serve the same workloads.
pub(crate) fn handler(servers: &[PlainServer], host: Option<&str>) -> Option<usize> {
    let by_name = host.and_then(|h| {
        servers
            .iter()
            .position(|s| s.hosts.iter().any(|p| p == h))
            .or_else(|| {
                servers.iter().position(|s| {
                    s.hosts.iter().any(|p| {
                        p.strip_prefix('*')
                            .is_some_and(|suffix| h.len() > suffix.len() && h.ends_with(suffix))
                    })
                })
            })
    });
    by_name
        .or_else(|| servers.iter().position(|s| s.default_server))
        .or(if servers.is_empty() { None } else { Some(0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;
    use std::path::Path;

    fn ret(text: &str, hosts: &[&str]) -> Option<Redirect> {
        let d = parse(Path::new("r.conf"), text).expect("parses");
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        https_redirect(&d[0], &hosts)
    }

    #[test]
    fn the_https_redirect_forms() {
        let r = ret("return 308 https://$host$request_uri;", &["a.example"]).expect("redirect");
        assert!(r.notes.is_empty());
        let r = ret("return 301 https://$host$request_uri;", &[]).expect("redirect");
        assert!(
            r.notes[0].message.contains("with 301; umbra answers 308"),
            "{r:?}"
        );
        let r = ret(
            "return 302 https://$server_name$request_uri;",
            &["a.example", "b.example"],
        )
        .expect("redirect");
        assert_eq!(r.notes.len(), 2, "{r:?}");
        assert!(ret("return 301 https://a.example$request_uri;", &["a.example"]).is_some());
        assert!(
            ret(
                "return 301 https://a.example$request_uri;",
                &["a.example", "www.a.example"]
            )
            .is_none()
        );
        assert!(ret("return 301 http://$host$request_uri;", &[]).is_none());
        assert!(ret("return 301 https://$host;", &[]).is_none());
        assert!(ret("return 404;", &[]).is_none());
    }

    #[test]
    fn certbots_if_host_form() {
        let text = "if ($host = www.a.example) { return 301 https://$host$request_uri; }\n\
                    if ($host = a.example) { return 301 https://$host$request_uri; }\n\
                    listen 80;\nserver_name a.example www.a.example;\nreturn 404;\n";
        let block = parse(Path::new("r.conf"), text).expect("parses");
        let pick = |name: &str| block.iter().filter(|d| d.name == name).collect::<Vec<_>>();
        let hosts = |h: &[&str]| h.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        let r = certbot_redirect(
            &pick("if"),
            &pick("return"),
            &hosts(&["a.example", "www.a.example"]),
        )
        .expect("redirect");
        assert_eq!(r.at.line, 1);
        assert_eq!(r.notes.len(), 1, "{r:?}");
        // A name without its `if` would get the 404: not the same as redirecting it.
        let more = hosts(&["a.example", "www.a.example", "b.example"]);
        assert!(certbot_redirect(&pick("if"), &pick("return"), &more).is_none());
        assert!(certbot_redirect(&pick("if"), &[], &hosts(&["a.example"])).is_none());
    }

    #[test]
    fn nginx_picks_the_named_server_then_the_default() {
        let s = |hosts: &[&str], default_server, redirects| PlainServer {
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            default_server,
            redirects,
        };
        let servers = [
            s(&["app.example"], false, false),
            s(&["*.example"], false, true),
            s(&[], true, true),
        ];
        assert_eq!(handler(&servers, Some("app.example")), Some(0));
        assert_eq!(handler(&servers, Some("www.example")), Some(1));
        assert_eq!(handler(&servers, Some("other.test")), Some(2));
        assert_eq!(handler(&servers, None), Some(2));
        assert_eq!(handler(&servers[..2], None), Some(0));
        assert_eq!(handler(&[], Some("a")), None);
    }
}
