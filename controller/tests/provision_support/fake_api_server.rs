//! An in-test Kubernetes API server: a real HTTP server on 127.0.0.1:0 answering the calls
//! the `kubernetes` provisioner makes with the shapes a real kube-apiserver returns
//! (Deployment, autoscaling/v1 Scale, EndpointSliceList, PodList, `Status` errors),
//! resourceVersions that increase, and a stand-in for the Deployment and EndpointSlice
//! controllers. Every request is recorded for golden checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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

#[derive(Default)]
struct Cluster {
    resource_version: u64,
    deployments: BTreeMap<String, Value>,
    services: BTreeMap<String, Value>,
    pods: BTreeMap<String, Value>,
    next_pod: u32,
    not_ready: Vec<String>,
    conflicts_to_inject: u32,
    requests: Vec<Recorded>,
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

/// The `Status` body of a failed call, as kube-apiserver writes it.
pub fn status_failure(
    code: u16,
    reason: &str,
    message: String,
    name: &str,
    group: &str,
    kind: &str,
) -> Value {
    let mut details = json!({"name": name, "kind": kind});
    if !group.is_empty() {
        details["group"] = json!(group);
    }
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code
    })
}

fn not_found(kind: &str, group: &str, name: &str) -> (StatusCode, Value) {
    let resource = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    (
        StatusCode::NOT_FOUND,
        status_failure(
            404,
            "NotFound",
            format!("{resource} \"{name}\" not found"),
            name,
            group,
            kind,
        ),
    )
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

fn list(kind: &str, api_version: &str, resource_version: u64, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version.to_string()}, "items": items})
}

/// Equality-based label selectors (`a=b,c=d`), the only kind the provisioner sends.
fn matches(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').unwrap();
        object["metadata"]["labels"][key] == json!(value)
    })
}

/// Server-side apply, reduced to what the provisioner relies on: the applied fields replace
/// ours, replicas persist when the applied object omits them, and a no-op apply does not
/// bump the resourceVersion.
fn apply(
    cluster: &mut Cluster,
    kind: &str,
    namespace: &str,
    name: &str,
    query: &BTreeMap<String, String>,
    content_type: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let group = if kind == "deployments" { "apps" } else { "" };
    if content_type != Some("application/apply-patch+yaml") {
        let message = format!(
            "the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml (got {content_type:?})"
        );
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            status_failure(415, "UnsupportedMediaType", message, name, group, kind),
        );
    }
    if query.get("fieldManager").is_none_or(|m| m.is_empty()) {
        let message = "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".to_string();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            status_failure(422, "Invalid", message, name, group, kind),
        );
    }
    let Some(mut object) = body else {
        return (
            StatusCode::BAD_REQUEST,
            status_failure(400, "BadRequest", "empty body".into(), name, group, kind),
        );
    };
    let store = if kind == "deployments" {
        &mut cluster.deployments
    } else {
        &mut cluster.services
    };
    let existing = store.get(name).cloned();
    object["metadata"]["namespace"] = json!(namespace);
    object["metadata"]["uid"] = existing.as_ref().map_or(
        json!(format!("uid-{name}-{}", cluster.resource_version + 1)),
        |e| e["metadata"]["uid"].clone(),
    );
    object["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
    if kind == "deployments" {
        let replicas = existing
            .as_ref()
            .map_or(json!(1), |e| e["spec"]["replicas"].clone());
        if object["spec"].get("replicas").is_none() {
            object["spec"]["replicas"] = replicas;
        }
        let generation = existing.as_ref().map_or(1, |e| {
            let same_spec = e["spec"] == object["spec"];
            e["metadata"]["generation"].as_u64().unwrap() + u64::from(!same_spec)
        });
        object["metadata"]["generation"] = json!(generation);
    }
    let unchanged = existing.as_ref().is_some_and(|e| {
        let mut e = e.clone();
        e["metadata"]["resourceVersion"] = Value::Null;
        e.as_object_mut().unwrap().remove("status");
        let mut o = object.clone();
        o["metadata"]["resourceVersion"] = Value::Null;
        e == o
    });
    if unchanged {
        let existing = existing.unwrap();
        return (StatusCode::OK, existing);
    }
    cluster.resource_version += 1;
    object["metadata"]["resourceVersion"] = json!(cluster.resource_version.to_string());
    let store = if kind == "deployments" {
        &mut cluster.deployments
    } else {
        &mut cluster.services
    };
    store.insert(name.to_string(), object);
    reconcile(cluster);
    let store = if kind == "deployments" {
        &cluster.deployments
    } else {
        &cluster.services
    };
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, store[name].clone())
}

fn delete(
    cluster: &mut Cluster,
    kind: &str,
    name: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let group = if kind == "deployments" { "apps" } else { "" };
    let store = if kind == "deployments" {
        &mut cluster.deployments
    } else {
        &mut cluster.services
    };
    let Some(existing) = store.get(name).cloned() else {
        return not_found(kind, group, name);
    };
    let uid = existing["metadata"]["uid"].clone();
    if let Some(wanted) = body
        .as_ref()
        .and_then(|b| b["preconditions"]["uid"].as_str())
    {
        if json!(wanted) != uid {
            let message = format!(
                "Precondition failed: UID in precondition: {wanted}, UID in object meta: {uid}"
            );
            return (
                StatusCode::CONFLICT,
                status_failure(409, "Conflict", message, name, group, kind),
            );
        }
    }
    store.remove(name);
    cluster.resource_version += 1;
    reconcile(cluster);
    (
        StatusCode::OK,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": name, "group": group, "kind": kind, "uid": uid}}),
    )
}

fn scale_of(deployment: &Value) -> Value {
    let labels = &deployment["spec"]["selector"]["matchLabels"];
    let selector: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": deployment["metadata"]["name"], "namespace": deployment["metadata"]["namespace"],
            "uid": deployment["metadata"]["uid"], "resourceVersion": deployment["metadata"]["resourceVersion"],
            "creationTimestamp": deployment["metadata"]["creationTimestamp"]
        },
        "spec": {"replicas": deployment["spec"]["replicas"]},
        "status": {"replicas": deployment["status"]["replicas"], "selector": selector.join(",")}
    })
}

fn put_scale(cluster: &mut Cluster, name: &str, body: Option<Value>) -> (StatusCode, Value) {
    let Some(current) = cluster.deployments.get(name).cloned() else {
        return not_found("deployments", "apps", name);
    };
    let body = body.unwrap_or(Value::Null);
    let stale = body["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|rv| json!(rv) != current["metadata"]["resourceVersion"]);
    if stale || cluster.conflicts_to_inject > 0 {
        cluster.conflicts_to_inject = cluster.conflicts_to_inject.saturating_sub(1);
        cluster.resource_version += 1;
        let rv = cluster.resource_version.to_string();
        cluster.deployments.get_mut(name).unwrap()["metadata"]["resourceVersion"] = json!(rv);
        let message = format!(
            "Operation cannot be fulfilled on deployments.apps \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        );
        return (
            StatusCode::CONFLICT,
            status_failure(409, "Conflict", message, name, "apps", "deployments"),
        );
    }
    cluster.resource_version += 1;
    let rv = cluster.resource_version.to_string();
    let deployment = cluster.deployments.get_mut(name).unwrap();
    deployment["spec"]["replicas"] = body["spec"]["replicas"].clone();
    deployment["metadata"]["resourceVersion"] = json!(rv);
    reconcile(cluster);
    (StatusCode::OK, scale_of(&cluster.deployments[name]))
}

/// The Deployment/ReplicaSet controllers, instantly: each Deployment gets `replicas` pods
/// running its current pod template (pods of an older template are replaced, like a
/// finished rollout); pods of deleted Deployments go away.
fn reconcile(cluster: &mut Cluster) {
    let deployments: Vec<Value> = cluster.deployments.values().cloned().collect();
    cluster.pods.retain(|_, pod| {
        deployments
            .iter()
            .any(|d| pod["metadata"]["annotations"]["fake/owner"] == d["metadata"]["name"])
    });
    for deployment in &deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap().to_string();
        let template = deployment["spec"]["template"].clone();
        let template_text = template.to_string();
        cluster.pods.retain(|_, pod| {
            pod["metadata"]["annotations"]["fake/owner"] != json!(name)
                || pod["metadata"]["annotations"]["fake/template"] == json!(template_text)
        });
        let wanted = deployment["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
        let mine: Vec<String> = cluster
            .pods
            .iter()
            .filter(|(_, p)| p["metadata"]["annotations"]["fake/owner"] == json!(name))
            .map(|(n, _)| n.clone())
            .collect();
        for surplus in mine.iter().skip(wanted) {
            cluster.pods.remove(surplus);
        }
        for _ in mine.len()..wanted {
            cluster.next_pod += 1;
            cluster.resource_version += 1;
            let n = cluster.next_pod;
            let pod_name = format!("{name}-7d4b9c-{n:05}");
            let pod = json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {
                    "name": pod_name, "namespace": deployment["metadata"]["namespace"],
                    "uid": format!("pod-uid-{n}"), "resourceVersion": cluster.resource_version.to_string(),
                    "creationTimestamp": "2026-01-01T00:00:10Z",
                    "labels": template["metadata"]["labels"],
                    "annotations": {"fake/owner": name, "fake/template": template_text}
                },
                "spec": template["spec"],
                "status": {"phase": "Running", "podIP": format!("192.0.2.{n}"), "startTime": "2026-01-01T00:00:11Z"}
            });
            cluster.pods.insert(pod_name, pod);
        }
        let count = cluster
            .pods
            .values()
            .filter(|p| p["metadata"]["annotations"]["fake/owner"] == json!(name))
            .count();
        if let Some(d) = cluster.deployments.get_mut(&name) {
            d["status"] = json!({"replicas": count, "readyReplicas": count, "observedGeneration": d["metadata"]["generation"]});
        }
    }
}

/// The EndpointSlice the EndpointSlice controller would keep for `service`.
fn endpoint_slice(cluster: &Cluster, namespace: &str, service: &Value) -> Value {
    let name = service["metadata"]["name"].as_str().unwrap();
    let selector: Vec<String> = service["spec"]["selector"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    let selector = selector.join(",");
    let endpoints: Vec<Value> = cluster
        .pods
        .values()
        .filter(|p| matches(p, &selector))
        .map(|p| {
            let pod_name = p["metadata"]["name"].as_str().unwrap();
            let ready = !cluster.not_ready.iter().any(|n| n == pod_name);
            json!({
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": ready, "serving": ready, "terminating": false},
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod_name, "uid": p["metadata"]["uid"]},
                "nodeName": "node-1"
            })
        })
        .collect();
    let port = &service["spec"]["ports"][0];
    json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": format!("{name}-x7k2p"), "namespace": namespace,
            "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
            "resourceVersion": cluster.resource_version.to_string()
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": port["name"], "port": port["targetPort"], "protocol": "TCP"}]
    })
}
