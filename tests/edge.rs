//! End-to-end: `umbra-proxy` as a drop-in edge. TLS with SNI, HTTP/2 and h2c, forwarded
//! headers, header rules, https redirects, WebSocket, certificate reloads, graceful drain and
//! the hitless binary upgrade, each against the real binary and real upstreams on loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use umbra_e2e::http::eventually;
use umbra_e2e::keepalive::KeepAliveLoad;
use umbra_e2e::proxy::TOKEN;
use umbra_e2e::tls::{TestCert, Validity};
use umbra_e2e::ws::{WsEcho, read_frame, write_frame};
use umbra_e2e::{ProxyProcess, TestUpstream, binary, free_port};

/// A proxy with a TLS listener serving `certs` (the first is the default) plus `body`.
async fn tls_proxy(
    dir: tempfile::TempDir,
    certs: &[&TestCert],
    proxy_extra: &str,
    body: &str,
) -> (ProxyProcess, SocketAddr) {
    let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let list = certs
        .iter()
        .map(|c| c.toml())
        .collect::<Vec<_>>()
        .join(", ");
    let body = format!("[proxy.tls]\nlisten = \"{tls}\"\ncertificates = [{list}]\n\n{body}");
    (ProxyProcess::start_in(dir, proxy_extra, &body).await, tls)
}

/// A proxy whose TLS listener serves one certificate, for `a.test` (the name clients use).
async fn a_test_proxy(proxy_extra: &str, body: &str) -> (ProxyProcess, SocketAddr, TestCert) {
    let dir = tempfile::tempdir().expect("dir");
    let a = TestCert::make(dir.path(), "a", &["a.test"], Validity::Current);
    let (p, tls) = tls_proxy(dir, &[&a], proxy_extra, body).await;
    (p, tls, a)
}

/// An HTTPS client that trusts `roots`, resolves every name in `names` to `addr`, and keeps the
/// certificate the server presented.
fn https_client(roots: &[&TestCert], names: &[&str], addr: SocketAddr) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_info(true)
        .use_rustls_tls();
    for r in roots {
        b = b.add_root_certificate(r.root());
    }
    for n in names {
        b = b.resolve(n, addr);
    }
    b.build().expect("https client")
}

fn presented(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(<[u8]>::to_vec)
        .expect("the server presented a certificate")
}

fn workload(name: &str, upstream: &TestUpstream, extra: &str) -> String {
    format!(
        "[[workloads]]\nname = \"{name}\"\nprimary = [\"{}\"]\n{extra}\n",
        upstream.addr()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_chooses_the_certificate_and_alpn_chooses_http2() {
    let dir = tempfile::tempdir().expect("dir");
    let a = TestCert::make(dir.path(), "a", &["a.test"], Validity::Current);
    let b = TestCert::make(dir.path(), "b", &["*.b.test"], Validity::Current);
    let up = TestUpstream::start("api").await;
    let (p, tls) = tls_proxy(dir, &[&a, &b], "", &workload("api", &up, "")).await;

    let client = https_client(&[&a, &b], &["a.test", "x.b.test", "other.test"], tls);
    let r = client
        .get(format!("https://a.test:{}/", tls.port()))
        .send()
        .await
        .expect("https to a.test");
    assert_eq!(r.version(), reqwest::Version::HTTP_2, "ALPN picked h2");
    assert_eq!(presented(&r), a.der);
    assert_eq!(r.text().await.expect("body"), "api");

    let r = client
        .get(format!("https://x.b.test:{}/", tls.port()))
        .send()
        .await
        .expect("https to a name the wildcard covers");
    assert_eq!(presented(&r), b.der, "*.b.test covers x.b.test");

    // An unknown name gets the first (default) certificate, which does not name it.
    let err = client
        .get(format!("https://other.test:{}/", tls.port()))
        .send()
        .await
        .expect_err("a.test's certificate does not cover other.test");
    let err = format!("{err:?}");
    assert!(
        err.contains("NotValidForName") && err.contains("a.test"),
        "{err}"
    );

    let h1 = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(b.root())
        .resolve("y.b.test", tls)
        .http1_only()
        .build()
        .expect("client");
    let r = h1
        .get(format!("https://y.b.test:{}/", tls.port()))
        .send()
        .await
        .expect("HTTP/1.1 over TLS");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);

    let m = p.metrics().await;
    assert!(
        m.contains("umbra_http_requests_total{version=\"2\"} 2"),
        "{m}"
    );
    assert!(
        m.contains("umbra_tls_certificate_expiry_seconds{cert="),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_and_http1_share_the_plain_listener() {
    let up = TestUpstream::start("api").await;
    let p = ProxyProcess::start(&workload("api", &up, "")).await;
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let r = h2c.get(p.url("/")).send().await.expect("h2c");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.text().await.expect("body"), "api");
    let r = reqwest::get(p.url("/")).await.expect("http/1.1");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_learn_the_client_and_header_rules_apply() {
    let up = TestUpstream::start_echo("echo").await;
    let rules = "[workloads.request_headers]\nset = { x-env = \"prod\" }\nremove = [\"x-debug\"]\n\
                 [workloads.response_headers]\nset = { strict-transport-security = \"max-age=63072000\" }\n";
    let (p, tls, a) = a_test_proxy("", &workload("api", &up, rules)).await;

    let client = https_client(&[&a], &["a.test"], tls);
    let r = client
        .get(format!("https://a.test:{}/x", tls.port()))
        .header("x-forwarded-for", "6.6.6.6")
        .header("x-forwarded-proto", "http")
        .header("x-debug", "1")
        .send()
        .await
        .expect("https");
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=63072000",
        "response rule"
    );
    let seen: serde_json::Value = r.json().await.expect("echoed headers");
    assert_eq!(
        seen["x-forwarded-for"], "127.0.0.1",
        "a client's own chain is not trusted: {seen}"
    );
    assert_eq!(seen["x-forwarded-proto"], "https");
    assert_eq!(seen["x-forwarded-host"], format!("a.test:{}", tls.port()));
    assert!(
        seen["host"]
            .as_str()
            .is_some_and(|h| h.starts_with("a.test")),
        "{seen}"
    );
    assert_eq!(seen["x-env"], "prod");
    assert!(seen.get("x-debug").is_none(), "{seen}");

    let plain: serde_json::Value = reqwest::get(p.url("/"))
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    assert_eq!(plain["x-forwarded-proto"], "http");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_chain_is_extended_and_forwarded_is_sent() {
    let up = TestUpstream::start_echo("echo").await;
    let body = format!(
        "[proxy.forwarded]\ntrusted_proxies = [\"127.0.0.0/8\"]\nrfc7239 = true\n\n{}",
        workload("api", &up, "")
    );
    let p = ProxyProcess::start(&body).await;
    let seen: serde_json::Value = reqwest::Client::new()
        .get(p.url("/"))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    let forwarded = seen["forwarded"].as_str().expect("Forwarded sent");
    assert!(
        forwarded.starts_with("for=127.0.0.1;proto=http;host="),
        "{forwarded}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_redirected_to_https_keeping_the_method() {
    let up = TestUpstream::start("api").await;
    let (p, tls, a) = a_test_proxy("", &workload("api", &up, "redirect_https = true")).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = client
        .post(p.url("/cart?id=7"))
        .header("host", "a.test")
        .send()
        .await
        .expect("plain request");
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://a.test:{}/cart?id=7", tls.port()).as_str()
    );
    assert_eq!(
        up.hits(),
        0,
        "a redirected request never reaches the upstream"
    );
    let https = https_client(&[&a], &["a.test"], tls);
    let r = https
        .get(format!("https://a.test:{}/", tls.port()))
        .send()
        .await
        .expect("https");
    assert_eq!(r.status().as_u16(), 200, "https itself is served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_outlives_the_upstream_read_timeout_and_is_not_a_latency_sample() {
    let ws = WsEcho::start().await;
    let body = format!(
        "[proxy.timeouts]\nread = \"1s\"\n\n[[workloads]]\nname = \"ws\"\nprimary = [\"{}\"]\n",
        ws.addr()
    );
    let p = ProxyProcess::start(&body).await;
    let (mut s, status) = umbra_e2e::ws::connect(p.listen, "/chat").await;
    assert!(status.contains(" 101 "), "upgrade answered {status}");
    write_frame(&mut s, b"one", true).await.expect("send");
    assert_eq!(read_frame(&mut s).await.expect("echo").1, b"echo:one");
    assert!(p.metrics().await.contains("umbra_upgraded_connections 1"));
    // Idle for 2.5 read timeouts: a tunnel is not a slow response.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    write_frame(&mut s, b"two", true)
        .await
        .expect("send after idle");
    assert_eq!(
        read_frame(&mut s).await.expect("echo after idle").1,
        b"echo:two"
    );
    let view = p.workload("ws").await;
    assert_eq!(
        view["primary"]["window_requests"], 0,
        "an open tunnel is not a latency sample: {view}"
    );
    assert_eq!(
        view["primary"]["upstreams"][0]["in_flight"], 0,
        "nor a request in flight for admission: {view}"
    );
    drop(s);
    let closed = eventually(Duration::from_secs(5), || async {
        p.metrics()
            .await
            .contains("umbra_upgraded_connections 0")
            .then_some(())
    })
    .await;
    assert!(closed.is_some(), "the gauge falls when the tunnel closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_reload_on_sighup_on_file_change_and_a_bad_one_is_refused() {
    let up = TestUpstream::start("api").await;
    let (p, tls, first) = a_test_proxy("watch_config = false", &workload("api", &up, "")).await;
    let url = format!("https://a.test:{}/", tls.port());
    // One client keeps its HTTP/2 connection across every change below.
    let kept = https_client(&[&first], &["a.test"], tls);
    assert_eq!(
        presented(&kept.get(&url).send().await.expect("first")),
        first.der
    );

    let second = TestCert::make(p.dir(), "a", &["a.test"], Validity::Current);
    p.sighup();
    let fresh = |c: &TestCert| https_client(&[c], &["a.test"], tls);
    let served = eventually(Duration::from_secs(5), || {
        let c = fresh(&second);
        let url = url.clone();
        async move { c.get(&url).send().await.ok().map(|r| presented(&r)) }
    })
    .await;
    assert_eq!(
        served,
        Some(second.der.clone()),
        "SIGHUP serves the rotated certificate"
    );
    let r = kept
        .get(&url)
        .send()
        .await
        .expect("the old connection still serves");
    assert_eq!(
        presented(&r),
        first.der,
        "connections up before the reload keep theirs"
    );

    // A key that does not match: refused, naming the file; the running certificate stays.
    let stray = TestCert::make(p.dir(), "stray", &["a.test"], Validity::Current);
    std::fs::copy(&stray.key, p.dir().join("a.key")).expect("break the key");
    let answer = reqwest::Client::new()
        .post(p.admin_url("/v1/reload"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("admin");
    assert_eq!(answer.status().as_u16(), 422);
    let text = answer.text().await.expect("body");
    assert!(
        text.contains("a.key") && text.contains("does not match"),
        "{text}"
    );
    assert!(text.contains("proxy.tls.certificates[0].key"), "{text}");
    let r = fresh(&second)
        .get(&url)
        .send()
        .await
        .expect("still serving");
    assert_eq!(presented(&r), second.der);
    assert!(
        p.metrics()
            .await
            .contains("umbra_config_reloads_total{result=\"error\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_picked_up_by_the_file_watch() {
    let up = TestUpstream::start("api").await;
    let (p, tls, _first) = a_test_proxy("", &workload("api", &up, "")).await;
    let second = TestCert::make(p.dir(), "a", &["a.test"], Validity::Current);
    let url = format!("https://a.test:{}/", tls.port());
    let served = eventually(Duration::from_secs(5), || {
        let c = https_client(&[&second], &["a.test"], tls);
        let url = url.clone();
        async move { c.get(&url).send().await.ok().map(|r| presented(&r)) }
    })
    .await;
    assert_eq!(served, Some(second.der), "no signal needed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_certificate_file_and_the_expiry_date() {
    let dir = tempfile::tempdir().expect("dir");
    let old = TestCert::make(dir.path(), "old", &["a.test"], Validity::Expired);
    let text = format!(
        "[proxy.tls]\nlisten = \"127.0.0.1:{}\"\ncertificates = [{}]\n[[workloads]]\nname = \"a\"\nprimary = [\"127.0.0.1:1\"]\n",
        free_port(),
        old.toml()
    );
    let config = dir.path().join("umbra.toml");
    std::fs::write(&config, text).expect("write");
    let out = std::process::Command::new(binary("umbra-proxy"))
        .args(["--check", "--config"])
        .arg(&config)
        .output()
        .expect("run --check");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("old.pem") && err.contains("expired on 2020-01-02"),
        "{err}"
    );
    assert!(
        err.contains("umbra.toml:3: proxy.tls.certificates[0].cert"),
        "{err}"
    );

    let good = TestCert::make(dir.path(), "old", &["a.test"], Validity::Current);
    let out = std::process::Command::new(binary("umbra-proxy"))
        .args(["--check", "--config"])
        .arg(&config)
        .output()
        .expect("run --check");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("certificate {}", good.cert.display())),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_then_exits_once_idle() {
    let up = TestUpstream::start("api").await;
    up.set_delay(Duration::from_millis(1500));
    let mut p = ProxyProcess::start_with_proxy_settings(
        "shutdown_grace = \"20s\"",
        &workload("api", &up, ""),
    )
    .await;
    let url = p.url("/");
    let in_flight = tokio::spawn(async move {
        let r = reqwest::get(url).await?;
        let close = r.headers().get("connection").cloned();
        Ok::<_, reqwest::Error>((r.status().as_u16(), close, r.text().await?))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    p.signal(Signal::SIGTERM);
    let (status, close, body) = in_flight
        .await
        .expect("task")
        .expect("the request in flight is answered");
    assert_eq!((status, body.as_str()), (200, "api"));
    assert_eq!(
        close.as_ref().and_then(|v| v.to_str().ok()),
        Some("close"),
        "a keep-alive client is told to reconnect elsewhere"
    );
    let exit = p.wait_exit(Duration::from_secs(10)).await;
    let took = t0.elapsed();
    assert!(
        exit.is_some_and(|s| s.success()),
        "exit {exit:?}\n{}",
        p.log()
    );
    assert!(
        took < Duration::from_secs(4),
        "exits once idle ({took:?}), not after the 20 s grace"
    );
    assert!(
        std::net::TcpStream::connect(p.listen).is_err(),
        "nothing listens after the exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_and_a_binary_upgrade_under_load_lose_no_request() {
    let up = TestUpstream::start("api").await;
    let shadow = TestUpstream::start("api").await;
    let mut old = ProxyProcess::start(&workload("api", &up, "")).await;
    // What a controller does at run time, which the file does not hold: the upgrade keeps it.
    let announced = reqwest::Client::new()
        .put(old.admin_url("/v1/workloads/api/pools/shadow"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "upstreams": [shadow.addr().to_string()] }))
        .send()
        .await
        .expect("admin");
    assert_eq!(announced.status().as_u16(), 200);
    assert_eq!(old.set_weight("api", 0.25).await, 200);
    let load = KeepAliveLoad::start(old.listen, 32, "/");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = std::fs::read_to_string(&old.config_path).expect("config");
    for i in 0..5 {
        // A real change each time, so every reload rebuilds the route table.
        let changed = format!("{text}\n[workloads.guard]\nmin_requests = {}\n", 20 + i);
        std::fs::write(&old.config_path, changed).expect("rewrite config");
        old.sighup();
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let before = load.totals();
    let new = old.start_upgrade("proxy-upgraded.log");
    // The new process waits on the upgrade socket; the old one hands its sockets over on SIGQUIT.
    tokio::time::sleep(Duration::from_millis(500)).await;
    old.signal(Signal::SIGQUIT);
    new.wait_ready().await;
    let exited = old.wait_exit(Duration::from_secs(15)).await;
    assert!(
        exited.is_some(),
        "the old process drains and exits\n{}",
        old.log()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let totals = load.stop().await;
    eprintln!("reloads {before:?}, after the upgrade {totals:?}");
    assert!(totals.ok > 2_000, "the load ran: {totals:?}");
    let allowed = totals.total() / 100_000;
    assert!(
        totals.errors + totals.non_2xx <= allowed,
        "{totals:?}: {:.1} failures per 100k\n--- old ---\n{}\n--- new ---\n{}",
        totals.failures_per_100k(),
        old.log(),
        new.log()
    );
    assert!(
        reqwest::get(new.admin_url("/v1/workloads"))
            .await
            .is_ok_and(|r| r.status().is_success()),
        "the admin listener moved to the new process"
    );
    let view = new.workload("api").await;
    assert_eq!(
        view["shadow_weight"], 0.25,
        "the run-time weight carried over: {view}"
    );
    assert_eq!(
        view["shadow"]["upstreams"][0]["address"],
        shadow.addr().to_string(),
        "the announced shadow member carried over: {view}"
    );
    assert!(
        shadow.hits() > 0,
        "the shadow took its share before and after"
    );
    let served = new.metrics().await;
    assert!(
        served.contains("umbra_requests_total{code=\"200\",pool=\"primary\",workload=\"api\"}"),
        "the new process serves the load: {served}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_crosses_tls_and_h2c_with_trailers_and_a_failing_shadow_is_rolled_back() {
    use umbra_e2e::grpc::{self, GrpcEcho};
    let primary = GrpcEcho::start("primary", None).await;
    let shadow = GrpcEcho::start("shadow", Some(tonic::Code::Unavailable)).await;
    let body = format!(
        "[[workloads]]\nname = \"echo\"\nupstream_protocol = \"h2c\"\nprimary = [\"{}\"]\nshadow = [\"{}\"]\n\
         [workloads.guard]\nwindow = \"2s\"\nmin_requests = 10\nmax_error_rate = 0.05\n",
        primary.addr(),
        shadow.addr()
    );
    let (p, tls, a) = a_test_proxy("", &body).await;
    let mut client = grpc::tls_client(tls, "a.test", &a.cert_pem).await;

    let reply = grpc::unary(&mut client, "hello").await.expect("unary call");
    assert_eq!(reply.message, "primary:hello");
    let (replies, status) = grpc::stream(&mut client, "tick", 3)
        .await
        .expect("streaming call");
    assert_eq!(
        replies,
        ["primary:tick:0", "primary:tick:1", "primary:tick:2"]
    );
    assert_eq!(
        status.as_deref(),
        Some("0"),
        "the trailers crossed the proxy"
    );

    // A shadow that answers UNAVAILABLE (HTTP 200, grpc-status 14) is failing like a 5xx.
    assert_eq!(p.set_weight("echo", 0.3).await, 200);
    let t0 = Instant::now();
    let hammer = {
        let mut client = client.clone();
        tokio::spawn(async move {
            let mut unavailable = 0u32;
            for _ in 0..2_000 {
                if let Err(s) = grpc::unary(&mut client, "x").await {
                    assert_eq!(s.code(), tonic::Code::Unavailable, "{s:?}");
                    unavailable += 1;
                }
            }
            unavailable
        })
    };
    let rolled_back = eventually(Duration::from_secs(5), || async {
        let v = p.workload("echo").await;
        (v["state"] == "rolled_back").then_some((t0.elapsed(), v))
    })
    .await;
    hammer.abort();
    let (after, view) = rolled_back.expect("the guard rolls the failing shadow back");
    assert!(
        after < Duration::from_secs(1),
        "rolled back after {after:?}"
    );
    assert_eq!(view["shadow_weight"], 0.0);
    assert_eq!(view["last_rollback"]["reason"], "error_rate", "{view}");
    let reply = grpc::unary(&mut client, "again")
        .await
        .expect("served by primary again");
    assert_eq!(reply.message, "primary:again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_serves_ipv4_and_ipv6_and_the_admin_api_lists_them() {
    let up = TestUpstream::start("api").await;
    let v6: SocketAddr = std::net::TcpListener::bind("[::1]:0")
        .and_then(|l| l.local_addr())
        .expect("an IPv6 loopback port");
    let second: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let dir = tempfile::tempdir().expect("dir");
    let p = ProxyProcess::start_listening(dir, &[second, v6], "", &workload("api", &up, "")).await;
    for addr in [p.listen, second, v6] {
        let body = reqwest::get(format!("http://{addr}/"))
            .await
            .unwrap_or_else(|e| panic!("{addr}: {e}"))
            .text()
            .await
            .expect("body");
        assert_eq!(body, "api", "{addr}");
    }
    let edge: serde_json::Value = reqwest::get(p.admin_url("/v1/edge"))
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert_eq!(edge["listen"].as_array().map(Vec::len), Some(3), "{edge}");
    assert_eq!(edge["draining"], false);
    assert!(edge["tls"].is_null(), "{edge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_has_a_line_per_request_and_reopens_on_sigusr1() {
    let up = TestUpstream::start("api").await;
    let dir = tempfile::tempdir().expect("dir");
    let body = format!(
        "[proxy.access_log]\npath = \"access.log\"\n\n{}",
        workload("api", &up, "")
    );
    let p = ProxyProcess::start_in(dir, "", &body).await;
    let log = p.dir().join("access.log");
    let lines = |path: std::path::PathBuf| {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
            .collect::<Vec<_>>()
    };
    for i in 0..3 {
        let r = reqwest::Client::new()
            .get(p.url(&format!("/a?i={i}")))
            .header("user-agent", "edge-test")
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 200);
    }
    let written = eventually(Duration::from_secs(5), || {
        let log = log.clone();
        async move { Some(lines(log)).filter(|l| l.len() == 3) }
    })
    .await
    .expect("three lines within 5 s");
    let first = &written[0];
    assert_eq!(first["method"], "GET");
    assert_eq!(first["path"], "/a?i=0");
    assert_eq!(first["status"], 200);
    assert_eq!(first["client"], "127.0.0.1");
    assert_eq!(first["protocol"], "HTTP/1.1");
    assert_eq!(first["workload"], "api");
    assert_eq!(first["pool"], "primary");
    assert_eq!(first["upstream"], up.addr().to_string());
    assert_eq!(first["bytes"], 3);
    assert!(
        first["duration"].as_f64().is_some_and(|d| d > 0.0),
        "{first}"
    );
    assert!(
        first["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{first}"
    );

    // logrotate's move, then SIGUSR1: new lines go to a new file at the configured path.
    std::fs::rename(&log, p.dir().join("access.log.1")).expect("rotate");
    p.signal(Signal::SIGUSR1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    reqwest::get(p.url("/after")).await.expect("request");
    let reopened = eventually(Duration::from_secs(5), || {
        let log = log.clone();
        async move { Some(lines(log)).filter(|l| l.len() == 1) }
    })
    .await
    .expect("a new file after SIGUSR1");
    assert_eq!(reopened[0]["path"], "/after");
    assert_eq!(
        lines(p.dir().join("access.log.1")).len(),
        3,
        "the rotated file keeps its lines"
    );
}

/// Sends `request` on `conn` and reads the answer's head: (status, lowercase head text).
async fn exchange(
    conn: &mut tokio::io::BufReader<tokio::net::TcpStream>,
    request: &str,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    conn.get_mut().write_all(request.as_bytes()).await.ok()?;
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if conn.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    conn.read_exact(&mut body).await.ok()?;
    Some((status, head))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_limits_end_long_connections_and_refuse_huge_headers() {
    let up = TestUpstream::start("api").await;
    let p = ProxyProcess::start(&format!(
        "[proxy.client]\nkeepalive_requests = 3\nmax_header_bytes = 2048\n\n{}",
        workload("api", &up, "")
    ))
    .await;
    let stream = tokio::net::TcpStream::connect(p.listen)
        .await
        .expect("connect");
    let mut conn = tokio::io::BufReader::new(stream);
    let get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for i in 1..=3 {
        let (status, head) = exchange(&mut conn, get).await.expect("answered");
        assert_eq!(status, 200);
        let closes = head.contains("connection: close");
        assert_eq!(closes, i == 3, "request {i}: {head}");
    }
    assert!(
        exchange(&mut conn, get).await.is_none(),
        "the connection ends after keepalive_requests"
    );

    let stream = tokio::net::TcpStream::connect(p.listen)
        .await
        .expect("connect");
    let mut conn = tokio::io::BufReader::new(stream);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "x".repeat(4096)
    );
    let (status, _) = exchange(&mut conn, &big).await.expect("answered");
    assert_eq!(status, 431, "a header block over max_header_bytes");
    assert_eq!(
        up.hits(),
        3,
        "the refused request never reached the upstream"
    );
}

/// How long until the proxy closes `s` (reads return 0 or fail), reading at most `limit`.
async fn closed_after(
    s: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let t0 = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t0.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_at_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let up = TestUpstream::start("api").await;
    let (p, tls, _a) = a_test_proxy(
        "",
        &format!(
            "[proxy.client]\nheader_timeout = \"1s\"\n\n{}",
            workload("api", &up, "")
        ),
    )
    .await;

    // Trickling a header line every 300 ms never completes the head: cut off ~1 s after its
    // first byte, where nginx-style per-read timeouts would wait forever.
    let trickle = tokio::net::TcpStream::connect(p.listen)
        .await
        .expect("connect");
    let (mut read, mut write) = trickle.into_split();
    write
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .await
        .expect("start the head");
    let writer = tokio::spawn(async move {
        for i in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if write
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let cut = closed_after(&mut read, Duration::from_secs(5)).await;
    writer.abort();
    assert!(
        cut.is_some_and(|t| t < Duration::from_millis(2500)),
        "a trickled head is cut off near the 1 s header timeout, got {cut:?}"
    );

    // A connection that never sends a byte, plain and TLS.
    for addr in [p.listen, tls] {
        let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let cut = closed_after(&mut silent, Duration::from_secs(5)).await;
        assert!(
            cut.is_some_and(|t| t < Duration::from_millis(2500)),
            "{addr}: a silent connection is closed after the header timeout, got {cut:?}"
        );
    }
    assert_eq!(up.hits(), 0);
    let r = reqwest::get(p.url("/"))
        .await
        .expect("a normal client is served");
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_style_daemon_reload_swaps_the_process_without_losing_a_request() {
    // What `deploy/systemd/umbra-proxy.service` runs: ExecStart with --daemon, and ExecReload
    // as SIGQUIT to $MAINPID then --upgrade --daemon; systemd follows the pid file.
    let up = TestUpstream::start("api").await;
    let dir = tempfile::tempdir().expect("dir");
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let config = dir.path().join("umbra.toml");
    std::fs::write(
        &config,
        format!(
            "[proxy]\nlisten = \"{listen}\"\nadmin_listen = \"{admin}\"\nupgrade_sock = \"up.sock\"\n\n{}",
            workload("api", &up, "")
        ),
    )
    .expect("config");
    let pid_file = dir.path().join("umbra-proxy.pid");
    let daemon = |upgrade: bool| {
        let mut cmd = std::process::Command::new(binary("umbra-proxy"));
        cmd.arg("--daemon")
            .arg("--config")
            .arg(&config)
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--log-file")
            .arg(dir.path().join("daemon.log"));
        if upgrade {
            cmd.arg("--upgrade");
        }
        let status = cmd.status().expect("run the daemon command");
        eprintln!("daemon command (upgrade {upgrade}): {status}");
        status
    };
    let pid = || {
        std::fs::read_to_string(&pid_file)
            .expect("pid file")
            .trim()
            .parse::<i32>()
            .expect("a pid")
    };
    let kill = |pid: i32, sig: Signal| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
    assert!(
        daemon(false).success(),
        "the starting command returns once the daemon is ready"
    );
    let first = pid();
    let ready =
        umbra_e2e::http::answers_2xx(&format!("http://{admin}/readyz"), Duration::from_secs(10))
            .await;
    assert!(ready);

    let load = KeepAliveLoad::start(listen, 32, "/");
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(first, Signal::SIGQUIT).expect("SIGQUIT the old daemon");
    let upgraded = daemon(true).success();
    assert!(
        upgraded,
        "the upgrade command returns once the new daemon serves; daemon log:\n{}",
        std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
    );
    let second = pid();
    assert_ne!(first, second, "the pid file names the new process");
    let gone = eventually(Duration::from_secs(20), || async move {
        kill(first, Signal::SIGCONT).is_err().then_some(())
    })
    .await;
    let totals = load.stop().await;
    let log = std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default();
    let _stopped = kill(second, Signal::SIGTERM);
    assert!(gone.is_some(), "the old daemon drains and exits\n{log}");
    assert!(totals.ok > 1_000, "{totals:?}");
    assert!(
        totals.errors + totals.non_2xx <= totals.total() / 100_000,
        "{totals:?}\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http10_and_connection_close_are_honoured() {
    let up = TestUpstream::start_echo("echo").await;
    let p = ProxyProcess::start(&workload("api", &up, "")).await;
    // 18 bytes, shorter than the h2c preface the plain listener also accepts.
    for request in [
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    ] {
        let stream = tokio::net::TcpStream::connect(p.listen)
            .await
            .expect("connect");
        let mut conn = tokio::io::BufReader::new(stream);
        let t0 = Instant::now();
        let (status, head) = exchange(&mut conn, request)
            .await
            .expect("answered at once");
        assert_eq!(status, 200, "{request:?}");
        assert!(head.contains("connection: close"), "{request:?}: {head}");
        let closed = closed_after(&mut conn, Duration::from_secs(5)).await;
        assert!(
            closed.is_some() && t0.elapsed() < Duration::from_secs(2),
            "{request:?}: the connection ends with its answer"
        );
    }
    // The HTTP/1.0 request had no Host: the upstream still gets one, naming it.
    let stream = tokio::net::TcpStream::connect(p.listen)
        .await
        .expect("connect");
    let mut conn = tokio::io::BufReader::new(stream);
    let mut body = String::new();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        conn.get_mut()
            .write_all(b"GET / HTTP/1.0\r\n\r\n")
            .await
            .expect("send");
        conn.read_to_string(&mut body).await.expect("read");
    }
    let json = body.split("\r\n\r\n").nth(1).expect("a body");
    let seen: serde_json::Value = serde_json::from_str(json).expect("echoed headers");
    assert_eq!(seen["host"], up.addr().to_string(), "{seen}");
}
