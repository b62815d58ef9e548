//! The edge's tables: what a good one becomes, and every rejection naming file, line and field.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use config::{AccessLogFormat, AccessLogTarget, ConfigError, UpstreamProtocol, parse};

const EDGE: &str = r#"
[proxy]
listen = ["0.0.0.0:80", "[::]:80"]
admin_listen = "127.0.0.1:9901"

[proxy.tls]
listen = ["0.0.0.0:443", "[::]:443"]
certificates = [
  { cert = "certs/a.pem", key = "certs/a.key" },
  { cert = "/etc/ssl/b.pem", key = "/etc/ssl/b.key" },
]

[proxy.client]
keepalive_timeout = "30s"
keepalive_requests = 0
max_header_bytes = 32768

[proxy.forwarded]
trusted_proxies = ["10.0.0.0/8", "::1"]
rfc7239 = true

[proxy.access_log]
path = "logs/access.log"
format = "combined"

[[workloads]]
name = "site"
redirect_https = true
primary = ["127.0.0.1:7001"]

[workloads.response_headers]
set = { Strict-Transport-Security = "max-age=63072000" }
remove = ["Server"]

[[workloads]]
name = "grpc"
path_prefix = "/echo.Echo"
upstream_protocol = "h2c"
primary = ["127.0.0.1:7002"]
"#;

fn reject(text: &str) -> ConfigError {
    match parse(Path::new("/etc/umbra/umbra.toml"), text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e,
    }
}

fn with(from: &str, to: &str) -> String {
    assert_eq!(EDGE.matches(from).count(), 1, "{from:?} must occur once");
    EDGE.replacen(from, to, 1)
}

fn assert_names(e: &ConfigError, line: usize, field: &str) {
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("/etc/umbra/umbra.toml:{line}")),
        "wrong line in: {text}"
    );
    assert!(text.contains(field), "{field:?} not named in: {text}");
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

#[test]
fn a_full_edge_config_is_understood() {
    let c = parse(Path::new("/etc/umbra/umbra.toml"), EDGE).expect("valid");
    let p = &c.proxy;
    assert_eq!(p.listen, vec![addr("0.0.0.0:80"), addr("[::]:80")]);
    let tls = p.tls.as_ref().expect("tls");
    assert_eq!(tls.listen, vec![addr("0.0.0.0:443"), addr("[::]:443")]);
    assert_eq!(
        tls.certificates[0].cert,
        Path::new("/etc/umbra/certs/a.pem")
    );
    assert_eq!(tls.certificates[1].key, Path::new("/etc/ssl/b.key"));
    assert_eq!(p.client.keepalive_timeout, Duration::from_secs(30));
    assert_eq!(p.client.keepalive_requests, None, "0 means no limit");
    assert_eq!(p.client.max_header_bytes, 32768);
    assert_eq!(p.client.h2_max_concurrent_streams, 128);
    assert!(p.forwarded.rfc7239);
    assert!(p.forwarded.trusted_proxies[0].contains("10.9.8.7".parse().expect("ip")));
    let log = p.access_log.as_ref().expect("access log");
    assert_eq!(
        log.target,
        AccessLogTarget::File("/etc/umbra/logs/access.log".into())
    );
    assert_eq!(log.format, AccessLogFormat::Combined);
    assert_eq!(
        p.upgrade_sock,
        Path::new("/tmp/umbra-proxy-80.upgrade.sock")
    );
    assert_eq!(p.local_address(), addr("127.0.0.1:80"));
    let site = &c.workloads[0];
    assert!(site.redirect_https);
    assert_eq!(
        site.response_headers.set,
        vec![(
            "strict-transport-security".to_string(),
            "max-age=63072000".to_string()
        )]
    );
    assert_eq!(site.response_headers.remove, vec!["server".to_string()]);
    assert_eq!(c.workloads[1].upstream_protocol, UpstreamProtocol::H2c);
    assert!(c.workloads[1].upstream_tls.is_none());
}

#[test]
fn defaults_without_edge_tables() {
    let c = parse(
        Path::new("u.toml"),
        "[[workloads]]\nname = \"a\"\nprimary = [\"127.0.0.1:1\"]\n",
    )
    .expect("valid");
    assert_eq!(c.proxy.listen, vec![addr("127.0.0.1:8080")]);
    assert!(c.proxy.tls.is_none() && c.proxy.access_log.is_none());
    assert_eq!(c.proxy.client.keepalive_requests, Some(1000));
    assert_eq!(c.proxy.client.header_timeout, Duration::from_secs(10));
    assert_eq!(c.proxy.client.max_header_bytes, 64 * 1024);
    assert!(c.proxy.forwarded.trusted_proxies.is_empty());
    assert_eq!(c.workloads[0].upstream_protocol, UpstreamProtocol::H1);
}

#[test]
fn tls_only_needs_no_plain_listener() {
    let text = EDGE.replace("listen = [\"0.0.0.0:80\", \"[::]:80\"]\n", "");
    let c = parse(Path::new("u.toml"), &text).expect("valid");
    assert!(c.proxy.listen.is_empty());
    assert_eq!(c.proxy.local_address(), addr("127.0.0.1:443"));
}

#[test]
fn tls_without_certificates() {
    let e = reject(&with(
        "certificates = [\n  { cert = \"certs/a.pem\", key = \"certs/a.key\" },\n  { cert = \"/etc/ssl/b.pem\", key = \"/etc/ssl/b.key\" },\n]",
        "certificates = []",
    ));
    assert_names(&e, 8, "proxy.tls.certificates");
}

#[test]
fn certificate_without_key() {
    let e = reject(&with(
        "{ cert = \"/etc/ssl/b.pem\", key = \"/etc/ssl/b.key\" }",
        "{ cert = \"/etc/ssl/b.pem\" }",
    ));
    assert_names(&e, 10, "proxy.tls.certificates[1].key");
}

#[test]
fn unknown_key_in_a_certificate() {
    let e = reject(&with("key = \"certs/a.key\"", "keyfile = \"certs/a.key\""));
    assert_names(&e, 9, "proxy.tls.certificates[0].keyfile");
}

#[test]
fn tls_listener_that_is_also_plain() {
    let e = reject(&with(
        "listen = [\"0.0.0.0:443\", \"[::]:443\"]",
        "listen = [\"0.0.0.0:443\", \"[::]:80\"]",
    ));
    assert_names(&e, 7, "proxy.tls.listen");
}

#[test]
fn duplicate_listener() {
    let e = reject(&with(
        "listen = [\"0.0.0.0:80\", \"[::]:80\"]",
        "listen = [\"0.0.0.0:80\", \"0.0.0.0:80\"]",
    ));
    assert_names(&e, 3, "proxy.listen[1]");
}

#[test]
fn admin_on_a_traffic_port() {
    let e = reject(&with(
        "admin_listen = \"127.0.0.1:9901\"",
        "admin_listen = \"0.0.0.0:443\"\nadmin_token = \"x\"",
    ));
    assert_names(&e, 4, "proxy.admin_listen");
}

#[test]
fn no_listener_at_all() {
    let e =
        reject("[proxy]\nlisten = []\n[[workloads]]\nname = \"a\"\nprimary = [\"127.0.0.1:1\"]\n");
    assert!(e.to_string().contains("proxy.listen"), "{e}");
}

#[test]
fn bad_trusted_proxy() {
    let e = reject(&with("\"10.0.0.0/8\"", "\"10.0.0.0/40\""));
    assert_names(&e, 19, "proxy.forwarded.trusted_proxies[0]");
}

#[test]
fn header_limit_below_one_kib() {
    let e = reject(&with("max_header_bytes = 32768", "max_header_bytes = 10"));
    assert_names(&e, 16, "proxy.client.max_header_bytes");
}

#[test]
fn unknown_access_log_format() {
    let e = reject(&with("format = \"combined\"", "format = \"apache\""));
    assert_names(&e, 24, "proxy.access_log.format");
}

#[test]
fn header_rule_on_a_hop_by_hop_header() {
    let e = reject(&with("remove = [\"Server\"]", "remove = [\"Connection\"]"));
    assert_names(&e, 33, "workloads[0].response_headers.remove[0]");
}

#[test]
fn header_value_with_a_line_break() {
    let e = reject(&with(
        "\"max-age=63072000\"",
        "\"max-age=1\\r\\nX-Injected: 1\"",
    ));
    assert_names(
        &e,
        32,
        "workloads[0].response_headers.set.Strict-Transport-Security",
    );
}

#[test]
fn unknown_upstream_protocol() {
    let e = reject(&with(
        "upstream_protocol = \"h2c\"",
        "upstream_protocol = \"http3\"",
    ));
    assert_names(&e, 38, "workloads[1].upstream_protocol");
}

#[test]
fn h2c_with_tls_is_a_contradiction() {
    let e = reject(&format!(
        "{EDGE}\n[workloads.upstream_tls]\nsni = \"api.internal\"\n"
    ));
    assert!(e.to_string().contains("workloads[1].upstream_tls"), "{e}");
}
