//! Alerts to a webhook: Alertmanager's `POST /api/v2/alerts` shape or a Slack message.

use std::time::Duration;

use config::AlertFormat;
use serde_json::json;

/// Sends alerts; without a webhook it only logs.
#[derive(Clone)]
pub struct Alerter {
    url: Option<String>,
    format: AlertFormat,
    http: reqwest::Client,
}

impl Alerter {
    /// An alerter for `url` (None: log only).
    pub fn new(url: Option<String>, format: AlertFormat) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Alerter { url, format, http }
    }

    /// The JSON body for one alert.
    pub fn body(&self, kind: &str, workload: &str, message: &str, at_ms: i64) -> serde_json::Value {
        match self.format {
            AlertFormat::Alertmanager => {
                let at = chrono::DateTime::from_timestamp_millis(at_ms)
                    .unwrap_or_default()
                    .to_rfc3339();
                json!([{
                    "labels": {
                        "alertname": format!("Umbra{}", camel(kind)),
                        "workload": workload,
                        "severity": if kind == "rollback" || kind.ends_with("failed") { "warning" } else { "info" },
                        "service": "umbra",
                    },
                    "annotations": { "summary": format!("{workload}: {kind}"), "description": message },
                    "startsAt": at,
                }])
            }
            AlertFormat::Slack => {
                json!({ "text": format!(":warning: umbra {kind} on *{workload}*: {message}") })
            }
        }
    }

    /// Sends one alert; failures are logged and returned (the caller counts them).
    pub async fn send(
        &self,
        kind: &str,
        workload: &str,
        message: &str,
        at_ms: i64,
    ) -> Result<(), String> {
        tracing::warn!(alert = kind, workload, message, "alert");
        let Some(url) = &self.url else { return Ok(()) };
        let body = self.body(kind, workload, message, at_ms);
        match self.http.post(url).json(&body).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("alert webhook answered {}", r.status())),
            Err(e) => Err(format!("alert webhook unreachable: {e}")),
        }
    }
}

fn camel(kind: &str) -> String {
    kind.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alertmanager_shape() {
        let a = Alerter::new(None, AlertFormat::Alertmanager);
        let b = a.body("provisioning_failed", "api", "no capacity", 0);
        assert_eq!(b[0]["labels"]["alertname"], "UmbraProvisioningFailed");
        assert_eq!(b[0]["labels"]["workload"], "api");
        assert_eq!(b[0]["startsAt"], "1970-01-01T00:00:00+00:00");
        let s = Alerter::new(None, AlertFormat::Slack).body("rollback", "api", "p99", 0);
        assert!(s["text"].as_str().is_some_and(|t| t.contains("api")));
    }
}
