//! Client for every proxy's admin API: the controller's only way to touch traffic.

use std::net::SocketAddr;
use std::sync::Arc;
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

/// One proxy's admin API, as the controller uses it: [`HttpAdmin`] over HTTP in production;
/// tests put a fleet in memory behind it (and a paused clock over both).
#[async_trait::async_trait]
pub trait AdminApi: Send + Sync {
    /// `GET /v1/workloads`: every workload the proxy routes, with its guard's view.
    async fn workloads(&self, proxy: SocketAddr) -> Result<Vec<wire::Workload>, ProxyError>;
    /// `GET /metrics`.
    async fn metrics(&self, proxy: SocketAddr) -> Result<String, ProxyError>;
    /// `PUT /v1/workloads/{workload}/shadow-weight`.
    async fn set_weight(
        &self,
        proxy: SocketAddr,
        workload: &str,
        body: &wire::WeightBody,
    ) -> Result<(), ProxyError>;
    /// `PUT /v1/workloads/{workload}/pools/shadow`.
    async fn set_shadow_pool(
        &self,
        proxy: SocketAddr,
        workload: &str,
        body: &wire::PoolBody,
    ) -> Result<(), ProxyError>;
}

/// The fleet of proxies the controller drives: every call fans out to all of them at once.
#[derive(Clone)]
pub struct Proxies {
    addrs: Vec<SocketAddr>,
    api: Arc<dyn AdminApi>,
}

impl Proxies {
    /// Clients for `addrs` over HTTP, authenticating mutations with `token`.
    pub fn new(addrs: Vec<SocketAddr>, token: Option<String>) -> Self {
        Self::over(addrs, Arc::new(HttpAdmin::new(token)))
    }

    /// The fleet at `addrs`, reached through `api`.
    pub fn over(addrs: Vec<SocketAddr>, api: Arc<dyn AdminApi>) -> Self {
        Proxies { addrs, api }
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
            api: Arc::clone(&self.api),
        }
    }

    /// Every workload on every proxy, `(proxy, result)` per proxy: all asked at once, each
    /// given `timeout` to answer.
    pub async fn workloads(
        &self,
        timeout: Duration,
    ) -> Vec<(SocketAddr, Result<Vec<wire::Workload>, ProxyError>)> {
        let reads = self.addrs.iter().map(|&proxy| async move {
            let read = tokio::time::timeout(timeout, self.api.workloads(proxy)).await;
            (
                proxy,
                read.unwrap_or(Err(ProxyError::Silent { proxy, timeout })),
            )
        });
        futures::future::join_all(reads).await
    }

    /// `GET /metrics` of one proxy.
    pub async fn metrics(&self, proxy: SocketAddr) -> Result<String, ProxyError> {
        self.api.metrics(proxy).await
    }

    /// Sets the shadow weight on every proxy. Returns the first failure after trying all.
    pub async fn set_weight(&self, workload: &str, weight: f64) -> Result<(), ProxyError> {
        let body = wire::WeightBody { weight };
        self.on_all(|proxy| self.api.set_weight(proxy, workload, &body))
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
        self.on_all(|proxy| self.api.set_shadow_pool(proxy, workload, &body))
            .await
    }

    /// The same call to every proxy at once. Returns the first failure after trying all.
    async fn on_all<'a, F, Fut>(&'a self, call: F) -> Result<(), ProxyError>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: std::future::Future<Output = Result<(), ProxyError>> + 'a,
    {
        let mut first_error = None;
        for result in futures::future::join_all(self.addrs.iter().map(|&p| call(p))).await {
            if let Err(e) = result {
                tracing::warn!(error = %e, "proxy call failed");
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// [`AdminApi`] over HTTP (reqwest), with a bearer token on every change.
pub struct HttpAdmin {
    token: Option<String>,
    http: reqwest::Client,
}

impl HttpAdmin {
    /// A client authenticating mutations with `token`.
    pub fn new(token: Option<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .build()
            .unwrap_or_default();
        HttpAdmin { token, http }
    }

    async fn get(&self, proxy: SocketAddr, path: &str) -> Result<reqwest::Response, ProxyError> {
        let action = format!("GET {path}");
        let resp = self
            .http
            .get(format!("http://{proxy}{path}"))
            .send()
            .await
            .map_err(|source| ProxyError::Http {
                proxy,
                action: action.clone(),
                source,
            })?;
        check(proxy, &action, resp).await
    }

    async fn put<B: serde::Serialize + Sync>(
        &self,
        proxy: SocketAddr,
        path: &str,
        body: &B,
    ) -> Result<(), ProxyError> {
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
    }
}

#[async_trait::async_trait]
impl AdminApi for HttpAdmin {
    async fn workloads(&self, proxy: SocketAddr) -> Result<Vec<wire::Workload>, ProxyError> {
        let path = "/v1/workloads";
        let list: wire::WorkloadList =
            self.get(proxy, path)
                .await?
                .json()
                .await
                .map_err(|source| ProxyError::Http {
                    proxy,
                    action: format!("GET {path}"),
                    source,
                })?;
        Ok(list.workloads)
    }

    async fn metrics(&self, proxy: SocketAddr) -> Result<String, ProxyError> {
        let path = "/metrics";
        self.get(proxy, path)
            .await?
            .text()
            .await
            .map_err(|source| ProxyError::Http {
                proxy,
                action: format!("GET {path}"),
                source,
            })
    }

    async fn set_weight(
        &self,
        proxy: SocketAddr,
        workload: &str,
        body: &wire::WeightBody,
    ) -> Result<(), ProxyError> {
        self.put(
            proxy,
            &format!("/v1/workloads/{workload}/shadow-weight"),
            body,
        )
        .await
    }

    async fn set_shadow_pool(
        &self,
        proxy: SocketAddr,
        workload: &str,
        body: &wire::PoolBody,
    ) -> Result<(), ProxyError> {
        self.put(
            proxy,
            &format!("/v1/workloads/{workload}/pools/shadow"),
            body,
        )
        .await
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
