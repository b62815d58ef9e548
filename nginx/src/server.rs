//! One nginx `server` block: its names, listeners, certificates, https redirect and locations.

use std::path::Path;

use super::directives::{ACCESS_CONTROL, ANSWERS_ITSELF, HARMLESS, hint_note, proxy_wide_hint};
use super::inherit::{self, Inherited};
use super::listen::{Listen, read_listen};
use super::location::read_location;
use super::model::{Certificate, Note};
use super::redirect::{Redirect, certbot_redirect, https_redirect};
use super::syntax::{Directive, Location};
use super::tls;
use super::translate::{Route, Walk, any_level};

/// A server block as read.
pub(crate) struct Server {
    pub at: Location,
    /// Host patterns; empty = any host.
    pub hosts: Vec<String>,
    /// Its own `listen`s (none: nginx's implicit one, added once all servers are read).
    pub listens: Vec<Listen>,
    /// It only redirects plain HTTP to https.
    pub redirect: Option<Redirect>,
    pub routes: Vec<Route>,
    /// The certificate/key pairs in effect for it.
    pub certificates: Vec<Certificate>,
    /// Certificates are named for it, whether or not they translated (problems say why not).
    pub names_certificates: bool,
    /// `ssl_reject_handshake on`: it needs no certificate.
    pub reject_handshake: bool,
}

/// Reads `server { ... }` with the http level's list directives `http` in effect; relative
/// certificate paths start at `base`.
pub(crate) fn read_server(
    walk: &mut Walk,
    server: &Directive,
    http: &Inherited,
    base: &Path,
) -> Server {
    let inner = server.block.as_deref().unwrap_or_default();
    let scope = http.enter(inner);
    let mut names: Vec<String> = Vec::new();
    let mut name_at = server.at.clone();
    let mut locations = Vec::new();
    let mut returns = Vec::new();
    let mut ifs = Vec::new();
    let mut listens = Vec::new();
    let mut ssl_on = false;
    let mut server_notes = Vec::new();
    for d in inner {
        if d.name == "ssl" {
            // The pre-1.15 way to make every listener of the server TLS.
            ssl_on = d.args.first().is_some_and(|a| a == "on");
            continue;
        }
        if inherit::is_list(&d.name) || any_level(walk, d) {
            continue;
        }
        match d.name.as_str() {
            "server_name" => {
                names.extend(d.args.iter().cloned());
                name_at = d.at.clone();
            }
            "listen" => listens.extend(read_listen(walk, d)),
            "location" => locations.push(d),
            "return" => returns.push(d),
            "if" => ifs.push(d),
            n if ANSWERS_ITSELF.contains(&n) => walk.problem(&d.at, answers_itself(n)),
            n if ACCESS_CONTROL.contains(&n) => walk.problem(
                &d.at,
                format!("`{n}` (access control) cannot be translated: umbra-proxy would let every request through"),
            ),
            n if HARMLESS.contains(&n) => {}
            n => server_notes.push(match proxy_wide_hint(n) {
                Some(hint) => hint_note(d, hint),
                None => Note::at(&d.at, format!("server directive `{n}` is not translated")),
            }),
        }
    }
    if ssl_on {
        for l in &mut listens {
            l.tls = true;
        }
    }
    let certificates = tls::certificates(walk, &scope, base);
    let mut read = Server {
        at: server.at.clone(),
        hosts: Vec::new(),
        names_certificates: !scope.get("ssl_certificate").is_empty()
            || !scope.get("ssl_certificate_key").is_empty(),
        reject_handshake: enabled("ssl_reject_handshake", inner, &walk.http),
        listens,
        redirect: None,
        routes: Vec::new(),
        certificates,
    };
    read.hosts = match host_patterns(&names) {
        Ok(h) => h,
        Err(m) => {
            walk.problem(&name_at, m);
            return read;
        }
    };
    // The https redirect: a `return` at server level, or all that `location /` holds.
    let lone_root = match locations.as_slice() {
        [loc] if loc.args == ["/"] => match loc.block.as_deref() {
            Some([ret]) if ret.name == "return" => Some(ret),
            _ => None,
        },
        _ => None,
    };
    let plain_only = read.listens.iter().all(|l| !l.tls);
    let redirect = if !plain_only {
        None
    } else if !ifs.is_empty() {
        certbot_redirect(&ifs, &returns, &read.hosts)
    } else if returns.is_empty() {
        lone_root.and_then(|ret| https_redirect(ret, &read.hosts))
    } else {
        https_redirect(returns[0], &read.hosts)
    };
    if redirect.is_some() {
        // nginx answers before choosing a location: the server's locations are never used.
        read.redirect = redirect;
        return read;
    }
    for d in ifs.iter().chain(&returns) {
        walk.problem(&d.at, answers_itself(&d.name));
    }
    let described = if read.hosts.is_empty() {
        "any host".to_string()
    } else {
        read.hosts.join(" ")
    };
    for loc in locations {
        if let Some(mut route) = read_location(walk, loc, &read.hosts, &described, &scope) {
            route.notes.extend(server_notes.iter().cloned());
            read.routes.push(route);
        }
    }
    read
}

fn answers_itself(n: &str) -> String {
    format!(
        "`{n}` in a server block: nginx answers or rewrites these requests itself, umbra-proxy only forwards them; keep this in front of umbra or remove it"
    )
}

/// Whether the on/off directive `name` is on for a server (its own, else the http level's).
fn enabled(name: &str, inner: &[Directive], http: &[Directive]) -> bool {
    let last = |block: &[Directive]| {
        block
            .iter()
            .rev()
            .find(|d| d.name == name)
            .map(|d| d.args.first().is_some_and(|a| a == "on"))
    };
    last(inner).or_else(|| last(http)).unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
