//! Leases and ConfigMaps in the fake API server, with kube-apiserver's concurrency rules:
//! create answers 409 AlreadyExists when the name is taken, update (PUT) answers 409 Conflict
//! when the body's resourceVersion is not the stored one, and server-side apply carrying a
//! resourceVersion treats it as the same precondition. Every write bumps the version.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Cluster;
use super::{not_found, status_failure};

const LEASES: &str = "leases";
const COORDINATION: &str = "coordination.k8s.io";

fn conflict(kind: &str, group: &str, name: &str) -> (StatusCode, Value) {
    let resource = if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    };
    let message = format!(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    );
    (
        StatusCode::CONFLICT,
        status_failure(409, "Conflict", message, name, group, kind),
    )
}

fn stamp(cluster: &mut Cluster, object: &mut Value, namespace: &str, name: &str, uid: Value) {
    cluster.resource_version += 1;
    object["metadata"]["name"] = json!(name);
    object["metadata"]["namespace"] = json!(namespace);
    object["metadata"]["uid"] = uid;
    object["metadata"]["resourceVersion"] = json!(cluster.resource_version.to_string());
}

/// An injected failure, as when the API server is unreachable or overloaded.
fn unavailable(cluster: &mut Cluster) -> Option<(StatusCode, Value)> {
    if cluster.lease_failures_to_inject == 0 {
        return None;
    }
    cluster.lease_failures_to_inject -= 1;
    Some((
        StatusCode::SERVICE_UNAVAILABLE,
        status_failure(
            503,
            "ServiceUnavailable",
            "injected failure".into(),
            "",
            "",
            "",
        ),
    ))
}

/// Lease and ConfigMap calls; `None` for any other path.
pub fn route(
    cluster: &mut Cluster,
    method: &str,
    segments: &[&str],
    query: &BTreeMap<String, String>,
    content_type: Option<&str>,
    body: Option<Value>,
) -> Option<(StatusCode, Value)> {
    Some(match (method, segments) {
        (
            "GET",
            [
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                _,
                "leases",
                name,
            ],
        ) => {
            if let Some(failure) = unavailable(cluster) {
                return Some(failure);
            }
            match cluster.leases.get(*name) {
                Some(l) => (StatusCode::OK, l.clone()),
                None => not_found(LEASES, COORDINATION, name),
            }
        }
        (
            "POST",
            [
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                ns,
                "leases",
            ],
        ) => {
            if let Some(failure) = unavailable(cluster) {
                return Some(failure);
            }
            let mut lease = body.unwrap_or(Value::Null);
            let name = lease["metadata"]["name"].as_str().unwrap_or("").to_string();
            if cluster.leases.contains_key(&name) {
                let message = format!("leases.coordination.k8s.io \"{name}\" already exists");
                return Some((
                    StatusCode::CONFLICT,
                    status_failure(409, "AlreadyExists", message, &name, COORDINATION, LEASES),
                ));
            }
            let uid = json!(format!("uid-lease-{name}"));
            stamp(cluster, &mut lease, ns, &name, uid);
            lease["kind"] = json!("Lease");
            lease["apiVersion"] = json!("coordination.k8s.io/v1");
            cluster.leases.insert(name.clone(), lease.clone());
            (StatusCode::CREATED, lease)
        }
        (
            "PUT",
            [
                "apis",
                "coordination.k8s.io",
                "v1",
                "namespaces",
                ns,
                "leases",
                name,
            ],
        ) => {
            if let Some(failure) = unavailable(cluster) {
                return Some(failure);
            }
            let Some(current) = cluster.leases.get(*name).cloned() else {
                return Some(not_found(LEASES, COORDINATION, name));
            };
            let mut lease = body.unwrap_or(Value::Null);
            if lease["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return Some(conflict(LEASES, COORDINATION, name));
            }
            stamp(
                cluster,
                &mut lease,
                ns,
                name,
                current["metadata"]["uid"].clone(),
            );
            cluster.leases.insert(name.to_string(), lease.clone());
            (StatusCode::OK, lease)
        }
        ("GET", ["api", "v1", "namespaces", _, "configmaps", name]) => {
            match cluster.configmaps.get(*name) {
                Some(c) => (StatusCode::OK, c.clone()),
                None => not_found("configmaps", "", name),
            }
        }
        ("PATCH", ["api", "v1", "namespaces", ns, "configmaps", name]) => {
            apply_configmap(cluster, ns, name, query, content_type, body)
        }
        _ => return None,
    })
}

/// Server-side apply of a ConfigMap: the applied data and labels replace the manager's, a
/// resourceVersion in the body is a precondition, an unchanged object keeps its version.
fn apply_configmap(
    cluster: &mut Cluster,
    namespace: &str,
    name: &str,
    query: &BTreeMap<String, String>,
    content_type: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    if content_type != Some("application/apply-patch+yaml")
        || query.get("fieldManager").is_none_or(|m| m.is_empty())
    {
        let message = "only server-side apply with a fieldManager is served here".to_string();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            status_failure(422, "Invalid", message, name, "", "configmaps"),
        );
    }
    let body = body.unwrap_or(Value::Null);
    let existing = cluster.configmaps.get(name).cloned();
    if let Some(wanted) = body["metadata"]["resourceVersion"].as_str() {
        let current = existing
            .as_ref()
            .and_then(|e| e["metadata"]["resourceVersion"].as_str());
        if current != Some(wanted) {
            return conflict("configmaps", "", name);
        }
    }
    let mut object = json!({
        "kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"labels": body["metadata"]["labels"].clone()},
        "data": body["data"].clone(),
    });
    if let Some(e) = existing.as_ref().filter(|e| {
        e["data"] == object["data"] && e["metadata"]["labels"] == object["metadata"]["labels"]
    }) {
        return (StatusCode::OK, e.clone());
    }
    let uid = existing.as_ref().map_or_else(
        || json!(format!("uid-configmap-{name}")),
        |e| e["metadata"]["uid"].clone(),
    );
    stamp(cluster, &mut object, namespace, name, uid);
    cluster.configmaps.insert(name.to_string(), object.clone());
    let status = if existing.is_some() {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    (status, object)
}
