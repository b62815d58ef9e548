//! An in-test Kubernetes API server: a real HTTP server on 127.0.0.1:0 answering the calls
//! the `kubernetes` provisioner makes with the shapes a real kube-apiserver returns
//! (Deployment, autoscaling/v1 Scale, EndpointSliceList, PodList, `Status` errors),
//! resourceVersions that increase, and a stand-in for the Deployment and EndpointSlice
//! controllers (in `fake_cluster.rs`). Every request is recorded for golden checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

// Included from each test through `#[path]`: a nested path is relative to this file.
#[path = "fake_coordination.rs"]
mod coordination;

use super::fake_cluster::{
    Cluster, apply, delete, endpoint_slice, list, matches, not_found, put_scale, reconcile,
    scale_of, status_failure,
};

/// One request as the server saw it, with the status it answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub body: Option<Value>,
    pub status: u16,
}

impl Recorded {
    /// `"GET /path?k=v&..."` with the query in sorted, decoded form.
    pub fn line(&self) -> String {
        let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, query.join("&"))
        }
    }
}

/// The running fake; dropping it stops nothing (the test runtime ends it).
#[derive(Clone)]
pub struct FakeApiServer {
    pub addr: SocketAddr,
    cluster: Arc<Mutex<Cluster>>,
}

impl FakeApiServer {
    pub async fn start() -> Self {
        let cluster = Arc::new(Mutex::new(Cluster::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(cluster.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, cluster }
    }

    /// A kube client talking plain HTTP to this server.
    pub fn client(&self) -> kube::Client {
        let url: axum::http::Uri = format!("http://{}", self.addr).parse().unwrap();
        kube::Client::try_from(kube::Config::new(url)).unwrap()
    }

    /// Requests since the last call.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.cluster.lock().unwrap().requests)
    }

    pub fn deployment(&self, name: &str) -> Option<Value> {
        self.cluster.lock().unwrap().deployments.get(name).cloned()
    }

    pub fn service(&self, name: &str) -> Option<Value> {
        self.cluster.lock().unwrap().services.get(name).cloned()
    }

    pub fn pod_names(&self) -> Vec<String> {
        self.cluster.lock().unwrap().pods.keys().cloned().collect()
    }

    /// Puts an object there as if someone else had created it.
    pub fn seed_deployment(&self, name: &str, object: Value) {
        let mut cluster = self.cluster.lock().unwrap();
        cluster.resource_version += 1;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(cluster.resource_version.to_string());
        object["metadata"]["uid"] = json!(format!("uid-{name}-foreign"));
        cluster.deployments.insert(name.to_string(), object);
    }

    /// Makes a pod fail its readiness probe (its endpoint turns `ready: false`).
    pub fn set_not_ready(&self, pod: &str) {
        self.cluster.lock().unwrap().not_ready.push(pod.to_string());
    }
}

// Leases and ConfigMaps: used by the leader election tests, not by the provisioner's.
#[allow(dead_code)]
impl FakeApiServer {
    pub fn lease(&self, name: &str) -> Option<Value> {
        self.cluster.lock().unwrap().leases.get(name).cloned()
    }

    pub fn configmap(&self, name: &str) -> Option<Value> {
        self.cluster.lock().unwrap().configmaps.get(name).cloned()
    }

    /// Puts a Lease there as another replica would have written it.
    pub fn seed_lease(&self, name: &str, spec: Value) {
        let mut cluster = self.cluster.lock().unwrap();
        cluster.resource_version += 1;
        let lease = json!({
            "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-lease-{name}"),
                         "resourceVersion": cluster.resource_version.to_string()},
            "spec": spec,
        });
        cluster.leases.insert(name.to_string(), lease);
    }

    /// The next `n` Lease calls fail with 503, as when the API server is unreachable.
    pub fn inject_lease_failures(&self, n: u32) {
        self.cluster.lock().unwrap().lease_failures_to_inject = n;
    }
}

impl FakeApiServer {
    /// The next `n` writes to `/scale` fail with 409 Conflict, as when an HPA writes between
    /// our read and our write.
    pub fn inject_scale_conflicts(&self, n: u32) {
        self.cluster.lock().unwrap().conflicts_to_inject = n;
    }
}

async fn handle(
    State(cluster): State<Arc<Mutex<Cluster>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: BTreeMap<String, String> = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let body_json: Option<Value> = if body.is_empty() {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let mut cluster = cluster.lock().unwrap();
    let (status, response) = route(
        &mut cluster,
        &method,
        uri.path(),
        &query,
        content_type.as_deref(),
        body_json.clone(),
    );
    cluster.requests.push(Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query,
        content_type,
        body: body_json,
        status: status.as_u16(),
    });
    (
        status,
        [("content-type", "application/json")],
        response.to_string(),
    )
        .into_response()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn route(
    cluster: &mut Cluster,
    method: &Method,
    path: &str,
    query: &BTreeMap<String, String>,
    content_type: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    if let Some(answer) = coordination::route(
        cluster,
        method.as_str(),
        &segments,
        query,
        content_type,
        body.clone(),
    ) {
        return answer;
    }
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
            match cluster.deployments.get(*name) {
                Some(d) => (StatusCode::OK, d.clone()),
                None => not_found("deployments", "apps", name),
            }
        }
        ("PATCH", ["apis", "apps", "v1", "namespaces", ns, "deployments", name]) => {
            apply(cluster, "deployments", ns, name, query, content_type, body)
        }
        ("DELETE", ["apis", "apps", "v1", "namespaces", _, "deployments", name]) => {
            delete(cluster, "deployments", name, body)
        }
        (
            "GET",
            [
                "apis",
                "apps",
                "v1",
                "namespaces",
                _,
                "deployments",
                name,
                "scale",
            ],
        ) => match cluster.deployments.get(*name) {
            Some(d) => (StatusCode::OK, scale_of(d)),
            None => not_found("deployments", "apps", name),
        },
        (
            "PUT",
            [
                "apis",
                "apps",
                "v1",
                "namespaces",
                _,
                "deployments",
                name,
                "scale",
            ],
        ) => put_scale(cluster, name, body),
        ("GET", ["api", "v1", "namespaces", _, "services", name]) => {
            match cluster.services.get(*name) {
                Some(s) => (StatusCode::OK, s.clone()),
                None => not_found("services", "", name),
            }
        }
        ("PATCH", ["api", "v1", "namespaces", ns, "services", name]) => {
            apply(cluster, "services", ns, name, query, content_type, body)
        }
        ("DELETE", ["api", "v1", "namespaces", _, "services", name]) => {
            delete(cluster, "services", name, body)
        }
        ("GET", ["api", "v1", "namespaces", _, "pods"]) => {
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            let items: Vec<Value> = cluster
                .pods
                .values()
                .filter(|p| matches(p, &selector))
                .cloned()
                .collect();
            (
                StatusCode::OK,
                list("PodList", "v1", cluster.resource_version, items),
            )
        }
        ("DELETE", ["api", "v1", "namespaces", _, "pods", name]) => {
            match cluster.pods.remove(*name) {
                Some(mut pod) => {
                    cluster.resource_version += 1;
                    pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
                    pod["metadata"]["resourceVersion"] =
                        json!(cluster.resource_version.to_string());
                    reconcile(cluster);
                    (StatusCode::OK, pod)
                }
                None => not_found("pods", "", name),
            }
        }
        (
            "GET",
            [
                "apis",
                "discovery.k8s.io",
                "v1",
                "namespaces",
                ns,
                "endpointslices",
            ],
        ) => {
            let selector = query.get("labelSelector").cloned().unwrap_or_default();
            let slices: Vec<Value> = cluster
                .services
                .values()
                .map(|s| endpoint_slice(cluster, ns, s))
                .filter(|s| matches(s, &selector))
                .collect();
            (
                StatusCode::OK,
                list(
                    "EndpointSliceList",
                    "discovery.k8s.io/v1",
                    cluster.resource_version,
                    slices,
                ),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            status_failure(
                404,
                "NotFound",
                format!("the server could not find the requested resource ({method} {path})"),
                "",
                "",
                "",
            ),
        ),
    }
}
