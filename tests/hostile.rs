//! End-to-end: hostile HTTP against the real `umbra-proxy`. Smuggling probes, malformed and
//! oversized requests, path tricks, pipelining and slow readers each get the right answer,
//! never reach an upstream in a form the proxy did not route, and never hold up other clients.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use umbra_e2e::{ProxyProcess, TestUpstream};

/// Sends raw bytes on a fresh connection and reads until the proxy closes it or `wait` passes;
/// returns everything answered.
async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(bytes).await.expect("send");
    let mut out = Vec::new();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Status codes of every answer in `text`, in order.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.")
        .filter_map(|(i, _)| text[i..].split_whitespace().nth(1)?.parse().ok())
        .collect()
}

fn workloads(api: &TestUpstream, admin: &TestUpstream, web: &TestUpstream) -> String {
    format!(
        "[[workloads]]\nname = \"web\"\nprimary = [\"{}\"]\n\n\
         [[workloads]]\nname = \"api\"\npath_prefix = \"/api\"\nprimary = [\"{}\"]\n\n\
         [[workloads]]\nname = \"admin\"\npath_prefix = \"/admin\"\nhosts = [\"admin.test\"]\nprimary = [\"{}\"]\n",
        web.addr(),
        api.addr(),
        admin.addr()
    )
}

struct Site {
    proxy: ProxyProcess,
    web: TestUpstream,
    api: TestUpstream,
    admin: TestUpstream,
}

impl Site {
    async fn start() -> Site {
        let (web, api, admin) = (
            TestUpstream::start_echo("web").await,
            TestUpstream::start_echo("api").await,
            TestUpstream::start_echo("admin").await,
        );
        let proxy = ProxyProcess::start_with_proxy_settings(
            "max_request_body_bytes = 1024",
            &workloads(&api, &admin, &web),
        )
        .await;
        Site {
            proxy,
            web,
            api,
            admin,
        }
    }

    async fn send(&self, bytes: &str) -> String {
        raw(self.proxy.listen, bytes.as_bytes(), Duration::from_secs(3)).await
    }

    /// Every request line any upstream received.
    fn upstream_lines(&self) -> Vec<String> {
        [&self.web, &self.api, &self.admin]
            .iter()
            .flat_map(|u| u.seen())
            .map(|s| s.line)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_probes_are_refused_or_normalised_never_passed_on() {
    let site = Site::start().await;

    // CL.TE: a body that is "0\r\n\r\n" as chunked but 40-odd bytes by Content-Length would
    // hide a second request from whoever trusts the other header. RFC 9112 6.1 allows refusing
    // it, or reading it by Transfer-Encoding alone and closing the connection after the answer
    // (Pingora's choice, as HAProxy's): either way the hidden request is never served.
    let hidden = "GET /admin/secret HTTP/1.1\r\nHost: admin.test\r\n\r\n";
    let cl_te = format!(
        "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{hidden}",
        5 + hidden.len()
    );
    let answer = site.send(&cl_te).await;
    let codes = statuses(&answer);
    let refused = codes == [400];
    let read_by_te_and_closed =
        codes == [200] && answer.to_ascii_lowercase().contains("connection: close");
    assert!(refused || read_by_te_and_closed, "{answer}");
    // Two Content-Length values.
    let answer = site
        .send("POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc")
        .await;
    assert_eq!(statuses(&answer).first(), Some(&400), "{answer}");
    // A Transfer-Encoding that is not chunked last.
    let answer = site
        .send("POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n")
        .await;
    assert_eq!(statuses(&answer).first(), Some(&400), "{answer}");
    // Obsolete line folding.
    let answer = site
        .send("GET /api HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n")
        .await;
    assert_eq!(statuses(&answer).first(), Some(&400), "{answer}");
    // Whitespace between a field name and its colon.
    let answer = site
        .send("GET /api HTTP/1.1\r\nHost : admin.test\r\n\r\n")
        .await;
    assert_eq!(statuses(&answer).first(), Some(&400), "{answer}");

    let lines = site.upstream_lines();
    assert!(
        !lines.iter().any(|l| l.contains("/admin/secret")),
        "nothing smuggled reached an upstream: {lines:?}"
    );
    for seen in site.api.seen() {
        let framing = seen
            .headers
            .iter()
            .filter(|h| {
                let h = h.to_ascii_lowercase();
                h.starts_with("content-length:") || h.starts_with("transfer-encoding:")
            })
            .count();
        assert!(
            framing <= 1,
            "one framing header upstream: {:?}",
            seen.headers
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_get_4xx_and_never_reach_an_upstream() {
    let site = Site::start().await;
    for (what, request, want) in [
        ("a garbage request line", "HELLO\r\n\r\n".to_string(), 400),
        (
            "a control byte in a header name",
            "GET / HTTP/1.1\r\nHost: x\r\nX\u{1}A: b\r\n\r\n".to_string(),
            400,
        ),
        (
            "a header block over 1 MiB",
            format!(
                "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "a".repeat(1_100_000)
            ),
            400,
        ),
        (
            "a declared body over max_request_body_bytes",
            "POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n".to_string(),
            413,
        ),
    ] {
        let answer = site.send(&request).await;
        let code = statuses(&answer).first().copied();
        assert!(
            code == Some(want) || (want == 400 && code.is_some_and(|c| (400..500).contains(&c))),
            "{what}: answered {code:?}: {}",
            answer.chars().take(200).collect::<String>()
        );
    }
    // A chunked body that grows past the limit is cut off with 413 too.
    let mut s = TcpStream::connect(site.proxy.listen)
        .await
        .expect("connect");
    s.write_all(b"POST /api HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .expect("head");
    for _ in 0..4 {
        let chunk = format!("{:x}\r\n{}\r\n", 400, "b".repeat(400));
        if s.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(statuses(&answer).first(), Some(&413), "{answer}");
    assert!(
        site.api.seen().iter().all(|r| r.body.len() <= 1024),
        "no upstream received more than the limit"
    );
    assert_eq!(site.web.hits() + site.admin.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_and_encoded_dots_route_where_the_upstream_will_look() {
    let site = Site::start().await;
    // `/api/../admin` is `/admin` to every server that normalises paths; routing it to `api`
    // (a prefix match on the raw text) while the upstream serves `/admin` is the classic bypass.
    for target in [
        "/api/../admin/x",
        "/api/%2e%2e/admin/x",
        "/api/./../admin/x",
    ] {
        let answer = site
            .send(&format!(
                "GET {target} HTTP/1.1\r\nHost: admin.test\r\nConnection: close\r\n\r\n"
            ))
            .await;
        let code = statuses(&answer).first().copied();
        assert!(code == Some(200) || code == Some(400), "{target}: {answer}");
    }
    let api_paths: Vec<String> = site.api.seen().into_iter().map(|s| s.line).collect();
    assert!(
        api_paths
            .iter()
            .all(|l| !l.contains("..") && !l.contains("%2e")),
        "the api upstream never gets a path that leaves /api: {api_paths:?}"
    );
    let admin_paths: Vec<String> = site.admin.seen().into_iter().map(|s| s.line).collect();
    assert!(
        admin_paths.iter().all(|l| l.starts_with("GET /admin/x ")),
        "what reaches admin is the normalised path it was routed on: {admin_paths:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_form_targets_and_missing_hosts_cannot_confuse_routing() {
    let site = Site::start().await;
    // An absolute-form target names its host (RFC 9112 3.2.2); one whose Host header says
    // otherwise could be routed by one and served by the other, so it is refused.
    let answer = site
        .send("GET http://admin.test/admin/x HTTP/1.1\r\nHost: elsewhere.test\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(statuses(&answer).first(), Some(&400), "{answer}");
    // When they agree, it is routed by that host and the upstream gets the origin form.
    let answer = site
        .send("GET http://admin.test/admin/x?q=1 HTTP/1.1\r\nHost: admin.test\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(statuses(&answer).first(), Some(&200), "{answer}");
    let seen = site.admin.seen();
    assert_eq!(seen.len(), 1, "routed to admin.test's workload");
    assert_eq!(seen[0].line, "GET /admin/x?q=1 HTTP/1.1");
    assert!(
        seen[0]
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("host: admin.test")),
        "{:?}",
        seen[0].headers
    );
    // HTTP/1.1 without Host must be refused (RFC 9112 3.2).
    let answer = site.send("GET /api HTTP/1.1\r\n\r\n").await;
    assert_eq!(statuses(&answer).first(), Some(&400), "{answer}");
    assert_eq!(site.web.hits() + site.api.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let site = Site::start().await;
    let answer = site
        .send(
            "GET /api/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /api/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
    assert_eq!(statuses(&answer), [200, 200, 200], "{answer}");
    let api: Vec<String> = site.api.seen().into_iter().map(|s| s.line).collect();
    assert_eq!(api, ["GET /api/1 HTTP/1.1", "GET /api/3 HTTP/1.1"]);
    assert_eq!(site.web.seen()[0].line, "GET /2 HTTP/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_readers_and_idle_connections_do_not_hold_up_other_clients() {
    let site = Site::start().await;
    // 200 connections that send half a request and stall, and 20 that ask for answers and
    // never read them.
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(site.proxy.listen)
            .await
            .expect("connect");
        s.write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("half");
        stalled.push(s);
    }
    for _ in 0..20 {
        let mut s = TcpStream::connect(site.proxy.listen)
            .await
            .expect("connect");
        let many = "GET /api HTTP/1.1\r\nHost: x\r\n\r\n".repeat(200);
        s.write_all(many.as_bytes()).await.expect("pipelined");
        stalled.push(s);
    }
    let t0 = Instant::now();
    for _ in 0..50 {
        let answer = reqwest::get(site.proxy.url("/")).await.expect("served");
        assert_eq!(answer.status().as_u16(), 200);
    }
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "50 requests beside the stalled clients took {:?}",
        t0.elapsed()
    );
    drop(stalled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_stop_at_the_proxy_and_forwarded_headers_are_its_own() {
    let site = Site::start().await;
    // Hop-by-hop fields (RFC 9110 7.6.1), one nominated by Connection, and a client's attempt
    // to speak for the proxy in X-Forwarded-*: none of it may reach the upstream as sent.
    let answer = site
        .send(
            "GET /api/hop HTTP/1.1\r\nHost: Shop.Test:8080\r\nKeep-Alive: timeout=5\r\n\
             Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: x-t\r\n\
             Proxy-Authorization: Basic eA==\r\nHTTP2-Settings: AAA\r\nConnection: close, x-nominated\r\n\
             X-Nominated: 1\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.test\r\n\
             X-Forwarded-Proto: https\r\nForwarded: for=6.6.6.6\r\nX-Kept: yes\r\n\r\n",
        )
        .await;
    assert_eq!(statuses(&answer), [200], "{answer}");
    // A plain request after it on the same kind of connection still passes untouched.
    let plain = site
        .send("GET /api/plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    assert_eq!(statuses(&plain), [200], "{plain}");

    let seen = site.api.seen();
    let hop = seen
        .iter()
        .find(|s| s.line.contains("/api/hop"))
        .expect("the request reached the api upstream");
    let names: Vec<String> = hop
        .headers
        .iter()
        .map(|h| {
            h.split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .collect();
    for gone in [
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "proxy-authorization",
        "http2-settings",
        "x-nominated",
        "forwarded",
    ] {
        assert!(
            !names.iter().any(|n| n == gone),
            "{gone} reached the upstream: {:?}",
            hop.headers
        );
    }
    assert!(names.iter().any(|n| n == "x-kept"), "{:?}", hop.headers);
    let value = |name: &str| {
        hop.headers
            .iter()
            .filter(|h| h.to_ascii_lowercase().starts_with(&format!("{name}:")))
            .map(|h| h.split_once(':').map_or("", |(_, v)| v).trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(value("x-forwarded-for"), ["127.0.0.1"], "{:?}", hop.headers);
    assert_eq!(value("x-forwarded-proto"), ["http"], "{:?}", hop.headers);
    assert_eq!(
        value("x-forwarded-host"),
        ["Shop.Test:8080"],
        "{:?}",
        hop.headers
    );
    let plain = seen
        .iter()
        .find(|s| s.line.contains("/api/plain"))
        .expect("the plain request reached the api upstream");
    assert!(
        plain
            .headers
            .iter()
            .any(|h| h.to_ascii_lowercase().starts_with("x-forwarded-for:")),
        "{:?}",
        plain.headers
    );
}
