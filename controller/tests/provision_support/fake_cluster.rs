//! The state behind the fake API server and what the cluster's controllers do with it:
//! server-side apply, deletes with preconditions, the `/scale` subresource with optimistic
//! concurrency, the Deployment controller (pods follow replicas and the pod template) and the
//! EndpointSlice controller, all with the response shapes of a real kube-apiserver.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::fake_api_server::Recorded;

/// Everything the fake API server knows, behind one lock.
#[derive(Default)]
pub struct Cluster {
    pub resource_version: u64,
    pub deployments: BTreeMap<String, Value>,
    pub services: BTreeMap<String, Value>,
    pub pods: BTreeMap<String, Value>,
    pub next_pod: u32,
    pub not_ready: Vec<String>,
    pub conflicts_to_inject: u32,
    pub requests: Vec<Recorded>,
    /// Leases and ConfigMaps by name (`fake_coordination.rs`).
    pub leases: BTreeMap<String, Value>,
    pub configmaps: BTreeMap<String, Value>,
    /// The next `n` Lease calls fail with 503.
    pub lease_failures_to_inject: u32,
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

pub fn not_found(kind: &str, group: &str, name: &str) -> (StatusCode, Value) {
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

pub fn list(kind: &str, api_version: &str, resource_version: u64, items: Vec<Value>) -> Value {
    json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": resource_version.to_string()}, "items": items})
}

/// Equality-based label selectors (`a=b,c=d`), the only kind the provisioner sends.
pub fn matches(object: &Value, selector: &str) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (key, value) = term.split_once('=').unwrap();
        object["metadata"]["labels"][key] == json!(value)
    })
}

/// Server-side apply, reduced to what the provisioner relies on: the applied fields replace
/// ours, replicas persist when the applied object omits them, and a no-op apply does not
/// bump the resourceVersion.
pub fn apply(
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

pub fn delete(
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

pub fn scale_of(deployment: &Value) -> Value {
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

pub fn put_scale(cluster: &mut Cluster, name: &str, body: Option<Value>) -> (StatusCode, Value) {
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
pub fn reconcile(cluster: &mut Cluster) {
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
pub fn endpoint_slice(cluster: &Cluster, namespace: &str, service: &Value) -> Value {
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
