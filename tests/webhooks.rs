//! Signal webhooks over HTTP against a running `umbra run`: CI/CD deployments (generic JSON and
//! GitHub's `deployment` delivery), sentiment posts, and every refusal (token, malformed input,
//! size). What is accepted is checked in the SQLite store, where the forecaster reads events.

use std::path::Path;

use umbra_e2e::controller::{Stack, TOKEN};
use umbra_e2e::http::client;
use umbra_e2e::store::StoreReader;

/// A controller alone (observe mode, no proxies): webhooks need nothing else.
async fn controller() -> Stack {
    let mut s = Stack::new(
        "mode = \"observe\"\nproxies = []\n",
        "[[workloads]]\nname = \"checkout\"\nprimary = [\"127.0.0.1:9\"]\n",
        "",
    );
    s.start_controller().await;
    s
}

fn store(s: &Stack) -> StoreReader {
    StoreReader::open(&s.dir.path().join("data"))
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../signals/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// POSTs `body` to `path` with the given `Authorization` and extra header; returns status,
/// headers and the JSON answer.
async fn post(
    s: &Stack,
    path: &str,
    auth: Option<&str>,
    header: Option<(&str, &str)>,
    body: impl Into<reqwest::Body>,
) -> (u16, reqwest::header::HeaderMap, serde_json::Value) {
    let mut req = client()
        .post(format!("http://{}{path}", s.api))
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    let resp = req.send().await.expect("controller reachable");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, headers, json)
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generic_deployment_event_is_stored_as_a_window_around_now() {
    let s = controller().await;
    let before = now_ms();
    let (status, _, answer) = post(
        &s,
        "/v1/events/deployments",
        Some(&bearer()),
        None,
        r#"{"id": "rel-7", "workload": "checkout", "status": "started", "description": "v2.4.0"}"#,
    )
    .await;
    assert_eq!(
        (status, answer["stored"].as_u64()),
        (202, Some(1)),
        "{answer}"
    );
    let got = store(&s).events("deployment");
    assert_eq!(got.len(), 1, "{got:?}");
    let e = &got[0];
    assert_eq!(
        (e.source.as_str(), e.name.as_str(), e.workloads.as_str()),
        ("webhook", "v2.4.0", "checkout")
    );
    assert_eq!(e.dedup_key.as_deref(), Some("deploy:rel-7"));
    // No `at`: it started when it was received, and lasts the default 30 minutes.
    assert!(
        (before - 1000..=now_ms()).contains(&e.start_ms),
        "{e:?} not received now"
    );
    assert_eq!(e.end_ms - e.start_ms, 30 * 60 * 1000, "{e:?}");

    // A redelivery of the same event changes nothing.
    let (status, _, _) = post(
        &s,
        "/v1/events/deployments",
        Some(&bearer()),
        None,
        r#"{"id": "rel-7", "workload": "checkout", "status": "started", "description": "v2.4.0", "at": "2030-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let again = store(&s).events("deployment");
    assert_eq!(again.len(), 1, "redelivery stored twice: {again:?}");

    // A start and its outcome in one JSON Lines body become one deployment, start to finish.
    let (status, _, answer) = post(
        &s,
        "/v1/events/deployments",
        Some(&bearer()),
        None,
        "{\"id\": 8, \"workload\": \"checkout;search\", \"status\": \"started\", \"at\": \"2024-11-28T09:00:00Z\"}\n\
         {\"id\": 8, \"workload\": \"checkout;search\", \"status\": \"succeeded\", \"at\": \"2024-11-28T09:12:00Z\"}\n",
    )
    .await;
    assert_eq!(
        (status, answer["stored"].as_u64()),
        (202, Some(1)),
        "{answer}"
    );
    let paired = store(&s)
        .events("deployment")
        .into_iter()
        .find(|e| e.dedup_key.as_deref() == Some("deploy:8"))
        .expect("paired deployment stored");
    assert_eq!(paired.workloads, "checkout,search");
    assert_eq!(
        paired.end_ms - paired.start_ms,
        12 * 60 * 1000,
        "{paired:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_deployment_delivery_is_stored_with_its_workloads() {
    let s = controller().await;
    let (status, _, answer) = post(
        &s,
        "/v1/events/deployments",
        Some(&bearer()),
        Some(("x-github-event", "deployment")),
        fixture("github_deployment_created.json"),
    )
    .await;
    assert_eq!(
        (status, answer["stored"].as_u64()),
        (202, Some(1)),
        "{answer}"
    );
    let got = store(&s).events("deployment");
    assert_eq!(got.len(), 1, "{got:?}");
    let e = &got[0];
    assert_eq!(e.source, "webhook:github");
    assert_eq!(e.workloads, "checkout,checkout-worker");
    assert_eq!(e.dedup_key.as_deref(), Some("deploy:1893345120"));
    // deployment.created_at = 2024-11-26T14:02:11Z
    assert_eq!(e.start_ms, 1_732_629_731_000);

    // The matching deployment_status delivery is accepted and refers to the same deployment.
    let (status, _, answer) = post(
        &s,
        "/v1/events/deployments",
        Some(&bearer()),
        Some(("x-github-event", "deployment_status")),
        fixture("github_deployment_status_success.json"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(store(&s).events("deployment").len(), 1);

    // Other GitHub events (a `ping` when the hook is created) are accepted and ignored.
    let (status, _, answer) = post(
        &s,
        "/v1/events/deployments",
        Some(&bearer()),
        Some(("x-github-event", "ping")),
        r#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#,
    )
    .await;
    assert_eq!(
        (status, answer["stored"].as_u64()),
        (202, Some(0)),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_refuse_a_missing_or_wrong_token_and_store_nothing() {
    let s = controller().await;
    let body = r#"{"workload": "checkout", "status": "started"}"#;
    for path in ["/v1/events/deployments", "/v1/signals/posts"] {
        for auth in [
            None,
            Some("Bearer wrong-token".to_string()),
            Some(format!("Token {TOKEN}")),
            Some(format!("Bearer {TOKEN}x")),
        ] {
            let (status, headers, answer) = post(&s, path, auth.as_deref(), None, body).await;
            assert_eq!(status, 401, "{path} with {auth:?}: {answer}");
            assert_eq!(
                headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Bearer"),
                "{path}"
            );
        }
    }
    assert_eq!(store(&s).event_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_400_naming_line_and_field_and_store_nothing() {
    let s = controller().await;
    // (path, extra header, body, words the error must contain)
    type Case<'a> = (&'a str, Option<(&'a str, &'a str)>, String, &'a [&'a str]);
    let cases: [Case; 5] = [
        (
            "/v1/events/deployments",
            None,
            "{\"id\": \"a\", \"workload\": \"checkout\", \"status\": \"started\"}\n\
             {\"id\": \"b\", \"workload\": \"checkout\", \"status\": \"exploded\"}\n"
                .to_string(),
            &[":2", "`status`", "exploded"],
        ),
        (
            "/v1/events/deployments",
            None,
            "{\"workload\": \"checkout\", \"status\": \"started\", \"timestmap\": 1}\n".to_string(),
            &[":1", "timestmap"],
        ),
        (
            "/v1/events/deployments",
            None,
            "{\"workload\": \"checkout\", \"status\": \"started\"}\n{not json\n".to_string(),
            &[":2"],
        ),
        (
            "/v1/events/deployments",
            Some(("x-github-event", "deployment")),
            fixture("github_deployment_created.json")
                .replace("\"created_at\": \"2024-11-26T14:02:11Z\",", ""),
            &["deployment.created_at", "missing"],
        ),
        (
            "/v1/signals/posts",
            None,
            "{\"timestamp\": 1732867500, \"text\": \"fine\"}\n{\"timestamp\": \"yesterday-ish\", \"text\": \"x\"}\n"
                .to_string(),
            &[":2", "timestamp"],
        ),
    ];
    for (path, header, body, wants) in cases {
        let (status, _, answer) = post(&s, path, Some(&bearer()), header, body.clone()).await;
        let error = answer["error"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{path} {body}: {answer}");
        for want in wants {
            assert!(error.contains(want), "{path}: {error:?} lacks {want:?}");
        }
    }
    assert_eq!(
        store(&s).event_count(),
        0,
        "a refused body stored something"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let s = controller().await;
    // One JSON Lines feed of valid events, just over the 1 MiB limit.
    let line = "{\"workload\": \"checkout\", \"status\": \"started\"}\n";
    let body = line.repeat(1024 * 1024 / line.len() + 1);
    for path in ["/v1/events/deployments", "/v1/signals/posts"] {
        let (status, _, answer) = post(&s, path, Some(&bearer()), None, body.clone()).await;
        assert_eq!(status, 413, "{path}: {answer}");
    }
    assert_eq!(store(&s).event_count(), 0);
    // Just under the limit is fine: the limit is the size, not the content.
    let under = line.repeat(1000);
    let (status, _, _) = post(&s, "/v1/events/deployments", Some(&bearer()), None, under).await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentiment_posts_become_volume_and_score_events() {
    let s = controller().await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/signals/sentiment.jsonl");
    let posts = std::fs::read_to_string(&path).expect("example posts");
    let n_posts = posts.lines().filter(|l| !l.trim().is_empty()).count();
    let (status, _, answer) = post(&s, "/v1/signals/posts", Some(&bearer()), None, posts).await;
    assert_eq!(status, 202, "{answer}");
    let db = store(&s);
    let volume = db.events("sentiment_volume");
    let score = db.events("sentiment_compound");
    assert!(!volume.is_empty(), "no volume buckets stored");
    assert_eq!(
        answer["stored"].as_u64(),
        Some((volume.len() + score.len()) as u64)
    );
    let total: f64 = volume.iter().filter_map(|e| e.value).sum();
    assert_eq!(
        total as usize, n_posts,
        "every post counted once: {volume:?}"
    );
    assert!(
        volume
            .iter()
            .all(|e| e.end_ms - e.start_ms == 300_000 && e.source == "webhook:sentiment")
    );
    assert!(
        score
            .iter()
            .all(|e| e.value.is_some_and(|v| (-1.0..=1.0).contains(&v))),
        "{score:?}"
    );
}
