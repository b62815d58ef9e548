//! Prometheus as a history source: `query_range` per workload and resource.

use std::sync::Arc;
use std::time::Duration;

use config::PrometheusSource;
use serde::Deserialize;
use tokio::sync::watch;

use crate::metrics::ControllerMetrics;
use crate::store::{Resource, SeriesKey, Store};

/// A failed Prometheus query.
#[derive(Debug, thiserror::Error)]
pub enum PromError {
    /// Transport or decoding.
    #[error("prometheus {url}: {source}")]
    Http {
        /// The query URL.
        url: String,
        /// Underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// Prometheus answered an error.
    #[error("prometheus {url}: {error_type}: {error}")]
    Api {
        /// The query URL.
        url: String,
        /// `errorType`.
        error_type: String,
        /// `error`.
        error: String,
    },
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    values: Vec<(f64, String)>,
}

/// Runs `query` over `[start, end]` (unix seconds) at `step`; sums every returned series per
/// timestamp (a workload's pods add up). Returns `(unix ms, value)` oldest first.
pub async fn query_range(
    http: &reqwest::Client,
    base: &str,
    query: &str,
    start: i64,
    end: i64,
    step: Duration,
) -> Result<Vec<(i64, f64)>, PromError> {
    let url = format!("{base}/api/v1/query_range");
    let step_s = step.as_secs().max(1).to_string();
    let resp = http
        .get(&url)
        .query(&[
            ("query", query),
            ("start", &start.to_string()),
            ("end", &end.to_string()),
            ("step", &step_s),
        ])
        .send()
        .await
        .map_err(|source| PromError::Http {
            url: url.clone(),
            source,
        })?;
    let answer: Answer = resp.json().await.map_err(|source| PromError::Http {
        url: url.clone(),
        source,
    })?;
    if answer.status != "success" {
        return Err(PromError::Api {
            url,
            error_type: answer.error_type.unwrap_or_default(),
            error: answer.error.unwrap_or_default(),
        });
    }
    let mut sums: std::collections::BTreeMap<i64, f64> = Default::default();
    for m in answer.data.map(|d| d.result).unwrap_or_default() {
        for (ts, v) in m.values {
            if let Ok(v) = v.parse::<f64>() {
                if v.is_finite() {
                    *sums.entry((ts * 1000.0).round() as i64).or_default() += v;
                }
            }
        }
    }
    Ok(sums.into_iter().collect())
}

/// Backfills `lookback` on start, then keeps every configured query's series current.
pub async fn prometheus_loop(
    source: PrometheusSource,
    workloads: Vec<String>,
    store: Arc<Store>,
    metrics: Arc<ControllerMetrics>,
    step: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let mut from = crate::clock::unix_ms() / 1000 - source.lookback.as_secs() as i64;
    loop {
        let now = crate::clock::unix_ms() / 1000;
        // Prometheus caps a query at 11,000 points: walk the range in chunks.
        let chunk = step.as_secs().max(1) as i64 * 10_000;
        for (name, template) in &source.queries {
            let Some(resource) = Resource::parse(name) else {
                continue;
            };
            for w in &workloads {
                let query = template.replace("{workload}", w);
                let key = SeriesKey::new(w, "all", resource);
                let mut start = from;
                while start < now {
                    let end = (start + chunk).min(now);
                    match query_range(&http, &source.url, &query, start, end, step).await {
                        Ok(points) => {
                            let rows: Vec<_> = points
                                .into_iter()
                                .map(|(t, v)| (key.clone(), t, v))
                                .collect();
                            if let Err(e) = store.append(&rows) {
                                metrics.error("store");
                                tracing::error!(error = %e, "storing Prometheus samples failed");
                            }
                        }
                        Err(e) => {
                            metrics.error("prometheus");
                            tracing::warn!(workload = %w, resource = name, error = %e, "Prometheus query failed");
                        }
                    }
                    start = end;
                }
            }
        }
        from = now - step.as_secs() as i64;
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = shutdown.changed() => return,
        }
    }
}
