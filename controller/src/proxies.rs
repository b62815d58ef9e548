//! Client for every proxy's admin API: the controller's only way to touch traffic.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

/// A proxy call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Unreachable, timed out, or an unreadable answer.
    #[error("proxy {proxy}: {action}: {source}")]
    Http {
        /// Admin address.
        proxy: SocketAddr,
        /// What was being done.
        action: String,
        /// Underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The proxy answered with an error status.
    #[error("proxy {proxy}: {action}: {status}: {body}")]
    Status {
        /// Admin address.
        proxy: SocketAddr,
        /// What was being done.
        action: String,
        /// HTTP status.
        status: u16,
        /// Its explanation.
        body: String,
    },
}

/// A workload as one proxy reports it (the fields the controller uses).
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ProxyWorkload {
    /// Name.
    pub name: String,
    /// Current weight.
    pub shadow_weight: f64,
    /// `steady` or `rolled_back`.
    pub state: String,
    /// Last rollback, if any.
    pub last_rollback: Option<ProxyRollback>,
    /// Primary pool.
    pub primary: ProxyPool,
    /// Shadow pool.
    pub shadow: ProxyPool,
}

/// A rollback as a proxy reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ProxyRollback {
    /// Reason label.
    pub reason: String,
    /// Details.
    pub detail: String,
    /// Unix ms.
    pub at_unix_ms: u64,
}

/// One pool as a proxy reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ProxyPool {
    /// Members.
    pub upstreams: Vec<ProxyUpstream>,
    /// Requests in the guard window.
    pub window_requests: u64,
    /// p99 over the window.
    pub p99_ms: Option<f64>,
    /// Failed share over the window.
    pub error_rate: f64,
}

/// One member as a proxy reports it.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ProxyUpstream {
    /// `ip:port`.
    pub address: String,
    /// Takes traffic.
    pub healthy: bool,
}

#[derive(Deserialize)]
struct WorkloadList {
    workloads: Vec<ProxyWorkload>,
}

/// The fleet of proxies the controller drives.
#[derive(Clone)]
pub struct Proxies {
    addrs: Vec<SocketAddr>,
    token: Option<String>,
    http: reqwest::Client,
}

impl Proxies {
    /// Clients for `addrs`, authenticating mutations with `token`.
    pub fn new(addrs: Vec<SocketAddr>, token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_default();
        Proxies { addrs, token, http }
    }

    /// The proxies' admin addresses.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Every workload on every proxy: `(proxy, result)` per proxy.
    pub async fn workloads(&self) -> Vec<(SocketAddr, Result<Vec<ProxyWorkload>, ProxyError>)> {
        let mut out = Vec::with_capacity(self.addrs.len());
        for &proxy in &self.addrs {
            out.push((proxy, self.workloads_of(proxy).await));
        }
        out
    }

    async fn workloads_of(&self, proxy: SocketAddr) -> Result<Vec<ProxyWorkload>, ProxyError> {
        let action = "GET /v1/workloads".to_string();
        let resp = self
            .http
            .get(format!("http://{proxy}/v1/workloads"))
            .send()
            .await
            .map_err(|source| ProxyError::Http {
                proxy,
                action: action.clone(),
                source,
            })?;
        let resp = check(proxy, &action, resp).await?;
        let list: WorkloadList = resp.json().await.map_err(|source| ProxyError::Http {
            proxy,
            action,
            source,
        })?;
        Ok(list.workloads)
    }

    /// `GET /metrics` of one proxy.
    pub async fn metrics(&self, proxy: SocketAddr) -> Result<String, ProxyError> {
        let action = "GET /metrics".to_string();
        let resp = self
            .http
            .get(format!("http://{proxy}/metrics"))
            .send()
            .await
            .map_err(|source| ProxyError::Http {
                proxy,
                action: action.clone(),
                source,
            })?;
        let resp = check(proxy, &action, resp).await?;
        resp.text().await.map_err(|source| ProxyError::Http {
            proxy,
            action,
            source,
        })
    }

    /// Sets the shadow weight on every proxy. Returns the first failure after trying all.
    pub async fn set_weight(&self, workload: &str, weight: f64) -> Result<(), ProxyError> {
        let body = json!({ "weight": weight });
        self.put_all(&format!("/v1/workloads/{workload}/shadow-weight"), &body)
            .await
    }

    /// Announces the shadow pool's members to every proxy.
    pub async fn set_shadow_pool(
        &self,
        workload: &str,
        members: &[SocketAddr],
    ) -> Result<(), ProxyError> {
        let body =
            json!({ "upstreams": members.iter().map(|a| a.to_string()).collect::<Vec<_>>() });
        self.put_all(&format!("/v1/workloads/{workload}/pools/shadow"), &body)
            .await
    }

    async fn put_all(&self, path: &str, body: &serde_json::Value) -> Result<(), ProxyError> {
        let mut first_error = None;
        for &proxy in &self.addrs {
            let action = format!("PUT {path}");
            let mut req = self.http.put(format!("http://{proxy}{path}")).json(body);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let result = match req.send().await {
                Ok(resp) => check(proxy, &action, resp).await.map(drop),
                Err(source) => Err(ProxyError::Http {
                    proxy,
                    action,
                    source,
                }),
            };
            if let Err(e) = result {
                tracing::warn!(%proxy, error = %e, "proxy call failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

async fn check(
    proxy: SocketAddr,
    action: &str,
    resp: reqwest::Response,
) -> Result<reqwest::Response, ProxyError> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Err(ProxyError::Status {
        proxy,
        action: action.to_string(),
        status,
        body: body.chars().take(300).collect(),
    })
}
