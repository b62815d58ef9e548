//! HTTP client helpers for tests.

use std::time::Duration;

/// A client with short timeouts and no connection reuse surprises.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .expect("reqwest client")
}

/// Sends `req` and reads its body as JSON; panics naming `what` if either fails.
pub async fn json(req: reqwest::RequestBuilder, what: &str) -> serde_json::Value {
    let answer = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what} unreachable: {e}"));
    answer
        .json()
        .await
        .unwrap_or_else(|e| panic!("{what}: no JSON: {e}"))
}

/// Sends `req` and reads its body as text; panics naming `what` if either fails.
pub async fn text(req: reqwest::RequestBuilder, what: &str) -> String {
    let answer = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{what} unreachable: {e}"));
    answer
        .text()
        .await
        .unwrap_or_else(|e| panic!("{what}: no text: {e}"))
}

/// Whether `GET url` answers 2xx within `deadline` (polled every 20 ms).
pub async fn answers_2xx(url: &str, deadline: Duration) -> bool {
    let client = client();
    eventually(deadline, || {
        let req = client.get(url).send();
        async move {
            req.await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        }
    })
    .await
    .is_some()
}

/// Polls `check` every 20 ms until it returns `Some` or `deadline` passes.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if start.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
