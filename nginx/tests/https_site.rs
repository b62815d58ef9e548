//! A standard HTTPS site (redirect on 80, TLS with HSTS on 443, a WebSocket location) converted
//! and then validated by Umbra's own config loader.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/https-site/nginx.conf")
}

fn addrs(list: &[&str]) -> Vec<SocketAddr> {
    list.iter().map(|a| a.parse().expect("addr")).collect()
}

#[test]
fn a_standard_https_site_converts_without_problems_and_validates() {
    let c = nginx_convert::convert(&fixture()).unwrap_or_else(|e| panic!("{e}"));
    let config = config::parse(Path::new("/etc/umbra/umbra.toml"), &c.toml)
        .unwrap_or_else(|e| panic!("{e}\n{}", c.toml));

    assert_eq!(
        config.proxy.listen,
        addrs(&["0.0.0.0:80", "[::]:80"]),
        "{}",
        c.toml
    );
    let tls = config.proxy.tls.as_ref().expect("[proxy.tls]");
    assert_eq!(tls.listen, addrs(&["0.0.0.0:443", "[::]:443"]));
    assert_eq!(tls.certificates.len(), 1);
    assert_eq!(
        tls.certificates[0].cert,
        Path::new("/etc/letsencrypt/live/example.com/fullchain.pem")
    );
    assert_eq!(
        tls.certificates[0].key,
        Path::new("/etc/letsencrypt/live/example.com/privkey.pem")
    );
    // Nothing in the site asks for more than Umbra's built-in forwarded headers.
    assert_eq!(config.proxy.forwarded, config::ForwardedSettings::default());

    let names: Vec<&str> = config.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, vec!["app-root", "app-ws"]);
    for w in &config.workloads {
        assert_eq!(w.hosts.len(), 2, "{}", w.name.as_str());
        assert_eq!(w.primary, addrs(&["127.0.0.1:3000", "127.0.0.1:3001"]));
        assert!(w.shadow.is_empty());
        assert!(
            w.redirect_https,
            "{} should redirect plain HTTP",
            w.name.as_str()
        );
        assert_eq!(w.upstream_protocol, config::UpstreamProtocol::H1);
        assert!(w.request_headers.is_empty(), "{:?}", w.request_headers);
        assert_eq!(
            w.response_headers.set,
            vec![(
                "strict-transport-security".to_string(),
                "max-age=63072000; includeSubDomains".to_string()
            )]
        );
    }
    assert_eq!(config.workloads[0].path_prefix, "/");
    assert_eq!(config.workloads[1].path_prefix, "/ws/");
}

#[test]
fn a_standard_https_site_only_notes_what_does_not_carry_over() {
    let c = nginx_convert::convert(&fixture()).unwrap_or_else(|e| panic!("{e}"));
    let expected = [
        ("/nginx.conf:18:", "`ssl_protocols` has no equivalent"),
        ("/nginx.conf:19:", "`ssl_ciphers` has no equivalent"),
        (
            "/nginx.conf:20:",
            "`ssl_prefer_server_ciphers` has no equivalent",
        ),
        ("/nginx.conf:21:", "`ssl_session_*` has no equivalent"),
        ("/example.com.conf:11:", "with 301; umbra answers 308"),
        ("/example.com.conf:7:", "default server"),
        ("/example.com.conf:29:", "X-Real-IP"),
    ];
    for (at, what) in expected {
        assert!(
            c.notes.iter().any(|n| n.contains(at) && n.contains(what)),
            "no note {at} {what} in {:#?}",
            c.notes
        );
    }
    assert_eq!(c.notes.len(), expected.len(), "{:#?}", c.notes);
}
