//! `proxy_set_header`, `add_header`, `proxy_hide_header`, `set_real_ip_from` as header rules.

use super::inherit::Inherited;
use super::model::{HeaderRules, Note};
use super::syntax::{Directive, Location};
use super::translate::Walk;

/// Which module's directives a location uses: `proxy_*` for `proxy_pass`, `grpc_*` for
/// `grpc_pass` (nginx keeps their header lists apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Module {
    Proxy,
    Grpc,
}

impl Module {
    fn set_header(self) -> &'static str {
        match self {
            Module::Proxy => "proxy_set_header",
            Module::Grpc => "grpc_set_header",
        }
    }

    fn hide_header(self) -> &'static str {
        match self {
            Module::Proxy => "proxy_hide_header",
            Module::Grpc => "grpc_hide_header",
        }
    }
}

/// What one location's header directives (its own or inherited) become.
#[derive(Debug, Default)]
pub(crate) struct Headers {
    pub request: HeaderRules,
    pub response: HeaderRules,
    /// A `Forwarded` header was set: Umbra builds it when `[proxy.forwarded] rfc7239` is on.
    pub rfc7239: bool,
    pub notes: Vec<Note>,
}

/// The header rules of a location at `location` with `scope` in effect.
pub(crate) fn location_headers(scope: &Inherited, module: Module, location: &Location) -> Headers {
    let mut out = Headers::default();
    let set = scope.get(module.set_header());
    for d in set {
        request_header(d, &mut out);
    }
    let sets_host = set.iter().any(|d| {
        d.args
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case("host"))
    });
    // gRPC sends the client's authority already; only proxy_pass falls back to the upstream's name.
    if module == Module::Proxy && !sets_host {
        out.notes.push(Note::at(
            location,
            "nginx sent the upstream's name as Host here (no `proxy_set_header Host` is in effect for this location); umbra passes the client's Host unchanged",
        ));
    }
    for d in scope.get("add_header") {
        add_header(d, &mut out);
    }
    for d in scope.get(module.hide_header()) {
        hide_header(d, &mut out);
    }
    out
}

/// `proxy_set_header NAME VALUE`.
fn request_header(d: &Directive, out: &mut Headers) {
    let [name, value] = d.args.as_slice() else {
        out.notes.push(Note::at(
            &d.at,
            format!(
                "`{}` takes a header name and a value; not translated",
                d.name
            ),
        ));
        return;
    };
    let lower = name.to_ascii_lowercase();
    let built_in = |what: &str| {
        Note::at(
            &d.at,
            format!(
                "`{} {name} {value}` is not translated: umbra sends its own {name} ({what})",
                d.name
            ),
        )
    };
    match (lower.as_str(), value.as_str()) {
        ("host", "$host" | "$http_host") => {}
        ("host", _) => out.notes.push(Note::at(
            &d.at,
            format!("`{} Host {value}` is not translated: umbra passes the client's Host to the upstream unchanged", d.name),
        )),
        ("x-forwarded-for", "$proxy_add_x_forwarded_for" | "$remote_addr")
        | ("x-forwarded-proto", "$scheme")
        | ("x-forwarded-host", "$host" | "$http_host" | "$server_name") => {}
        ("x-forwarded-for", v) if v.contains('$') => out.notes.push(built_in(
            "the client address appended to a trusted proxy's list, see [proxy.forwarded] trusted_proxies",
        )),
        ("x-forwarded-proto" | "x-forwarded-host", v) if v.contains('$') => out
            .notes
            .push(built_in("the scheme and Host the client used")),
        ("x-real-ip", "$remote_addr") => out.notes.push(Note::at(
            &d.at,
            format!("`{} X-Real-IP $remote_addr` is not translated: umbra does not send X-Real-IP; upstreams read the client address as X-Forwarded-For's last entry", d.name),
        )),
        ("forwarded", _) => out.rfc7239 = true,
        ("upgrade", "$http_upgrade")
        | ("connection", "$connection_upgrade" | "upgrade" | "$http_connection" | "") => {
            // WebSocket and other upgrades pass through by themselves, and the proxy keeps
            // upstream connections alive without being told.
        }
        (n, _) if config::is_connection_header(n) => out.notes.push(Note::at(
            &d.at,
            format!("`{} {name} {value}` is not translated: the proxy manages {name} itself (it describes the connection, not the request)", d.name),
        )),
        (_, "") => match header_name(name) {
            Ok(()) => out.request.drop_header(name),
            Err(m) => out.notes.push(Note::at(&d.at, m)),
        },
        _ => match rule_value(name, value) {
            Ok(()) => out.request.push(name, value),
            Err(why) => out.notes.push(Note::at(
                &d.at,
                format!("`{} {name}` is not sent: {why}", d.name),
            )),
        },
    }
}

/// `add_header NAME VALUE [always]`.
fn add_header(d: &Directive, out: &mut Headers) {
    let (name, value, always) = match d.args.as_slice() {
        [n, v] => (n, v, false),
        [n, v, a] if a == "always" => (n, v, true),
        _ => {
            out.notes.push(Note::at(
                &d.at,
                format!(
                    "`add_header {}` is not understood; not translated",
                    d.args.join(" ")
                ),
            ));
            return;
        }
    };
    if value.is_empty() {
        // nginx adds nothing for an empty value.
        return;
    }
    if name.eq_ignore_ascii_case("alt-svc") && value.contains("h3") {
        out.notes.push(Note::at(
            &d.at,
            "`add_header Alt-Svc` advertises HTTP/3, which umbra-proxy does not serve; not translated",
        ));
        return;
    }
    if let Err(why) = rule_value(name, value) {
        out.notes.push(Note::at(
            &d.at,
            format!("`add_header {name}` is not translated: {why}"),
        ));
        return;
    }
    // nginx's add_header appends beside an upstream header of the same name, but the headers
    // it is used for (HSTS, X-Frame-Options, CSP, ...) take one value: two copies are a
    // conflict browsers resolve inconsistently, so `set` (replace) is what was meant.
    out.response.push(name, value);
    if !always {
        out.notes.push(Note::at(
            &d.at,
            format!("nginx added {name} to 2xx and 3xx responses only (no `always`); umbra sets it on every response"),
        ));
    }
}

/// `proxy_hide_header NAME`.
fn hide_header(d: &Directive, out: &mut Headers) {
    let [name] = d.args.as_slice() else {
        out.notes.push(Note::at(
            &d.at,
            format!("`{}` takes one header name; not translated", d.name),
        ));
        return;
    };
    match header_name(name) {
        Ok(()) => out.response.drop_header(name),
        Err(m) => out.notes.push(Note::at(&d.at, m)),
    }
}

/// Why `name: value` cannot be a fixed header rule, if it cannot.
fn rule_value(name: &str, value: &str) -> Result<(), String> {
    if value.contains('$') {
        return Err(format!(
            "its value `{value}` uses nginx variables, which umbra does not have"
        ));
    }
    header_name(name)?;
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!("its value {value:?} holds a control character"));
    }
    Ok(())
}

/// Whether the config accepts `name` in a header rule.
fn header_name(name: &str) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!(
            "{name:?} is not a header name umbra accepts; not translated"
        ));
    }
    if config::is_connection_header(&name.to_ascii_lowercase()) {
        return Err(format!(
            "{name} describes the connection, not the message: the proxy manages it; not translated"
        ));
    }
    Ok(())
}

/// `set_real_ip_from`, `real_ip_header`, `real_ip_recursive` (any level): whose
/// X-Forwarded-For Umbra keeps. Returns whether `d` was one of them.
pub(crate) fn real_ip(walk: &mut Walk, d: &Directive) -> bool {
    match d.name.as_str() {
        "set_real_ip_from" => {
            match d.args.as_slice() {
                [cidr] if is_network(cidr) => {
                    if !walk.edge.trusted_proxies.contains(cidr) {
                        walk.edge.trusted_proxies.push(cidr.clone());
                    }
                }
                _ => walk.notes.push(Note::at(
                    &d.at,
                    format!(
                        "`set_real_ip_from {}` is not translated: [proxy.forwarded] trusted_proxies takes IP networks",
                        d.args.join(" ")
                    ),
                )),
            }
            true
        }
        "real_ip_header" => {
            let header = d.args.first().map(String::as_str).unwrap_or_default();
            if !header.eq_ignore_ascii_case("x-forwarded-for") {
                walk.note_once(
                    "real_ip_header",
                    Note::at(
                        &d.at,
                        format!("`real_ip_header {header}` is not translated: umbra takes the client address from a trusted proxy's X-Forwarded-For only"),
                    ),
                );
            }
            true
        }
        "real_ip_recursive" => true,
        _ => false,
    }
}

/// `10.0.0.0/8`, `2001:db8::/32` or a bare address.
fn is_network(text: &str) -> bool {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let Ok(ip) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::parse;
    use std::path::Path;

    fn headers(text: &str, module: Module) -> Headers {
        let block = parse(Path::new("h.conf"), text).expect("parses");
        let scope = Inherited::default().enter(&block);
        let at = block[0].at.clone();
        location_headers(&scope, module, &at)
    }

    fn messages(h: &Headers) -> Vec<String> {
        h.notes
            .iter()
            .map(|n| format!("{}: {}", n.at.as_ref().map_or(0, |a| a.line), n.message))
            .collect()
    }

    #[test]
    fn the_usual_proxy_headers_need_nothing_but_x_real_ip_is_noted() {
        let h = headers(
            "proxy_set_header Host $host;\n\
             proxy_set_header X-Real-IP $remote_addr;\n\
             proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
             proxy_set_header X-Forwarded-Proto $scheme;\n\
             proxy_set_header X-Forwarded-Host $host;\n\
             proxy_set_header Upgrade $http_upgrade;\n\
             proxy_set_header Connection $connection_upgrade;\n",
            Module::Proxy,
        );
        assert!(h.request.is_empty() && h.response.is_empty(), "{h:?}");
        assert!(!h.rfc7239);
        let m = messages(&h);
        assert_eq!(m.len(), 1, "{m:#?}");
        assert!(
            m[0].starts_with("2: ") && m[0].contains("X-Real-IP"),
            "{m:?}"
        );
    }

    #[test]
    fn literals_are_set_empty_values_removed_and_variables_noted() {
        let h = headers(
            "proxy_set_header Host $host;\n\
             proxy_set_header X-Env production;\n\
             proxy_set_header Accept-Encoding \"\";\n\
             proxy_set_header X-Port $server_port;\n\
             proxy_set_header Forwarded \"for=$remote_addr\";\n\
             proxy_set_header X-Env canary;\n",
            Module::Proxy,
        );
        assert_eq!(
            h.request.set,
            vec![("X-Env".to_string(), "production".to_string())]
        );
        assert_eq!(
            h.request.add,
            vec![("X-Env".to_string(), "canary".to_string())]
        );
        assert_eq!(h.request.remove, vec!["Accept-Encoding".to_string()]);
        assert!(h.rfc7239);
        let m = messages(&h);
        assert!(
            m.iter()
                .any(|n| n.starts_with("4: ") && n.contains("X-Port") && n.contains("variables")),
            "{m:#?}"
        );
    }

    #[test]
    fn a_host_other_than_the_clients_is_noted() {
        let m = messages(&headers(
            "proxy_set_header Host $proxy_host;\n",
            Module::Proxy,
        ));
        assert!(
            m.iter()
                .any(|n| n.starts_with("1: ") && n.contains("client's Host")),
            "{m:#?}"
        );
        let m = messages(&headers("proxy_set_header X-A a;\n", Module::Proxy));
        assert!(
            m.iter().any(|n| n.contains("upstream's name as Host")),
            "{m:#?}"
        );
        let m = messages(&headers("grpc_set_header X-A a;\n", Module::Grpc));
        assert!(m.is_empty(), "{m:#?}");
    }

    #[test]
    fn add_header_sets_and_hide_header_removes() {
        let h = headers(
            "proxy_set_header Host $host;\n\
             add_header Strict-Transport-Security \"max-age=63072000; includeSubDomains\" always;\n\
             add_header X-Frame-Options SAMEORIGIN;\n\
             add_header X-Request $request_id always;\n\
             add_header Alt-Svc 'h3=\":443\"; ma=86400' always;\n\
             proxy_hide_header X-Powered-By;\n",
            Module::Proxy,
        );
        assert_eq!(
            h.response.set,
            vec![
                (
                    "Strict-Transport-Security".to_string(),
                    "max-age=63072000; includeSubDomains".to_string()
                ),
                ("X-Frame-Options".to_string(), "SAMEORIGIN".to_string()),
            ]
        );
        assert_eq!(h.response.remove, vec!["X-Powered-By".to_string()]);
        let m = messages(&h);
        assert_eq!(m.len(), 3, "{m:#?}");
        assert!(
            m[0].starts_with("3: ") && m[0].contains("2xx and 3xx"),
            "{m:?}"
        );
        assert!(
            m[1].starts_with("4: ") && m[1].contains("variables"),
            "{m:?}"
        );
        assert!(m[2].starts_with("5: ") && m[2].contains("HTTP/3"), "{m:?}");
    }

    #[test]
    fn networks() {
        assert!(is_network("10.0.0.0/8"));
        assert!(is_network("2001:db8::/32"));
        assert!(is_network("192.168.1.1"));
        assert!(!is_network("10.0.0.0/33"));
        assert!(!is_network("unix:"));
        assert!(!is_network("lb.example.com"));
    }
}
