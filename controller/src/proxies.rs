//! Client for every proxy's admin API: the controller's only way to touch traffic.

use std::net::SocketAddr;
use std::time::Duration;

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
    /// No answer in time.
    #[error("proxy {proxy}: no answer within {timeout:?}")]
    Silent {
        /// Admin address.
        proxy: SocketAddr,
        /// How long it was given.
        timeout: Duration,
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

    /// The same fleet limited to `addrs` (the proxies that answered this tick: a silent one
    /// must not hold up the calls to the others).
    pub fn only(&self, addrs: &[SocketAddr]) -> Proxies {
        Proxies {
            addrs: self
                .addrs
                .iter()
                .copied()
                .filter(|a| addrs.contains(a))
                .collect(),
            token: self.token.clone(),
            http: self.http.clone(),
        }
    }

    /// Every workload on every proxy, `(proxy, result)` per proxy: all asked at once, each
    /// given `timeout` to answer.
    pub async fn workloads(
        &self,
        timeout: Duration,
    ) -> Vec<(SocketAddr, Result<Vec<wire::Workload>, ProxyError>)> {
        let reads = self.addrs.iter().map(|&proxy| async move {
            let read = tokio::time::timeout(timeout, self.workloads_of(proxy)).await;
            (
                proxy,
                read.unwrap_or(Err(ProxyError::Silent { proxy, timeout })),
            )
        });
        futures::future::join_all(reads).await
    }

    async fn workloads_of(&self, proxy: SocketAddr) -> Result<Vec<wire::Workload>, ProxyError> {
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
        let list: wire::WorkloadList = resp.json().await.map_err(|source| ProxyError::Http {
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
        let body = wire::WeightBody { weight };
        self.put_all(&format!("/v1/workloads/{workload}/shadow-weight"), &body)
            .await
    }

    /// Announces the shadow pool's members to every proxy.
    pub async fn set_shadow_pool(
        &self,
        workload: &str,
        members: &[SocketAddr],
    ) -> Result<(), ProxyError> {
        let body = wire::PoolBody {
            upstreams: members.iter().map(|a| a.to_string()).collect(),
        };
        self.put_all(&format!("/v1/workloads/{workload}/pools/shadow"), &body)
            .await
    }

    /// The same call to every proxy at once. Returns the first failure after trying all.
    async fn put_all<B: serde::Serialize + Sync>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<(), ProxyError> {
        let calls = self.addrs.iter().map(|&proxy| async move {
            let action = format!("PUT {path}");
            let mut req = self.http.put(format!("http://{proxy}{path}")).json(body);
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            match req.send().await {
                Ok(resp) => check(proxy, &action, resp).await.map(drop),
                Err(source) => Err(ProxyError::Http {
                    proxy,
                    action,
                    source,
                }),
            }
        });
        let mut first_error = None;
        for result in futures::future::join_all(calls).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "proxy call failed");
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
