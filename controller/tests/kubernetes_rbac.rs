//! The controller's Role in `deploy/kubernetes/base/rbac.yaml` grants exactly what the
//! `kubernetes` provisioner calls: every request the provisioner makes through its whole life
//! (create, no-op, resize, a 409 retry, replace, scale down, stop, stop again) is recorded by
//! the fake API server, mapped to the (apiGroup, resource, verb) the API server authorizes,
//! and compared with the Role's rules. A new call without a rule fails here, and so does a
//! rule nothing uses.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report
#![cfg(feature = "kubernetes")]

// Shared with provision_kubernetes.rs, which uses the helpers this test does not.
#[allow(dead_code)]
#[path = "provision_support/fake_api_server.rs"]
mod fake_api_server;
#[allow(dead_code)]
#[path = "provision_support/fake_cluster.rs"]
mod fake_cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use controller::ha::{ConfigMapPhases, ElectionTiming, Elector, LeaseClient};
use controller::orchestrate::PhaseStore;
use controller::store::Store;
use fake_api_server::{FakeApiServer, Recorded};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use policies::Phase;
use provision::kubernetes::{KubernetesOptions, KubernetesProvisioner};
use provision::{InstanceTemplate, Provisioner, Resources, ShadowTarget};
use serde::Deserialize;

const NS: &str = "shop";
const IDLE: Resources = Resources {
    cpu_millis: 250,
    memory_mib: 64,
};
const FULL: Resources = Resources {
    cpu_millis: 1000,
    memory_mib: 256,
};

/// What RBAC authorizes: API group ("" for core), resource (with `/subresource`), verb.
type Permission = (String, String, String);

fn template() -> InstanceTemplate {
    InstanceTemplate {
        workload: "web".into(),
        command: vec![],
        image: Some("registry.example/web:1.4".into()),
        container_port: 8080,
        health_path: Some("/healthz".into()),
        env: BTreeMap::new(),
    }
}

fn target(instances: u32, resources: Resources) -> ShadowTarget {
    ShadowTarget {
        instances,
        resources,
    }
}

/// The permissions one request needs, as the API server's request-info resolver and RBAC see
/// it. A server-side apply that creates the object (201) is also authorized as `create`.
fn permissions(request: &Recorded) -> Vec<Permission> {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("not a resource request: {}", request.line()),
    };
    let (resource, name, subresource) = match rest {
        ["namespaces", ns, resource, tail @ ..] => {
            assert_eq!(
                *ns,
                NS,
                "a call outside the provisioner's namespace: {}",
                request.line()
            );
            (*resource, tail.first(), tail.get(1))
        }
        _ => panic!(
            "a cluster-scoped call, which a Role cannot grant: {}",
            request.line()
        ),
    };
    let resource = match subresource {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource.to_string(),
    };
    let watch = request
        .query
        .get("watch")
        .is_some_and(|w| w == "true" || w == "1");
    let verbs: &[&str] = match (request.method.as_str(), name.is_some()) {
        ("GET", true) => &["get"],
        ("GET", false) if watch => &["watch"],
        ("GET", false) => &["list"],
        ("PATCH", true) if request.status == 201 => &["patch", "create"],
        ("PATCH", true) => &["patch"],
        ("PUT", true) if request.status == 201 => &["update", "create"],
        ("PUT", true) => &["update"],
        ("DELETE", true) => &["delete"],
        ("DELETE", false) => &["deletecollection"],
        ("POST", false) => &["create"],
        _ => panic!("unexpected request {}", request.line()),
    };
    verbs
        .iter()
        .map(|verb| (group.to_string(), resource.clone(), verb.to_string()))
        .collect()
}

/// Every permission the Role named `name` in `file` grants, expanded rule by rule.
fn role_permissions(file: &Path, name: &str) -> BTreeSet<Permission> {
    let text = std::fs::read_to_string(file).unwrap();
    let role = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde_yaml::Value::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == "Role" && doc["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no Role {name} in {}", file.display()));
    let strings = |v: &serde_yaml::Value| -> Vec<String> {
        v.as_sequence()
            .map(|s| s.iter().map(|x| x.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    let mut granted = BTreeSet::new();
    for rule in role["rules"].as_sequence().unwrap() {
        assert!(
            rule.get("resourceNames").is_none(),
            "resourceNames cannot limit create or list: {rule:?}"
        );
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    assert!(
                        ![&group, &resource, &verb].iter().any(|s| s.contains('*')),
                        "wildcards grant more than the provisioner calls: {rule:?}"
                    );
                    granted.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    granted
}

#[tokio::test]
async fn the_role_grants_exactly_what_the_provisioner_calls() {
    let server = FakeApiServer::start().await;
    let options = KubernetesOptions {
        namespace: NS.into(),
        poll_interval: Duration::from_millis(10),
        replace_timeout: Duration::from_secs(2),
        ..KubernetesOptions::default()
    };
    let provisioner = KubernetesProvisioner::new(server.client(), options);

    // The provisioner's whole life, through every path that makes a different call.
    let created = provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();
    provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();
    provisioner
        .scale(&template(), target(2, FULL))
        .await
        .unwrap();
    server.inject_scale_conflicts(1);
    provisioner
        .scale(&template(), target(3, FULL))
        .await
        .unwrap();
    let members = provisioner.instances("web").await.unwrap();
    assert_eq!(members.len(), 3);
    assert!(created.iter().all(|c| members.iter().all(|m| m.id != c.id)));
    provisioner
        .replace(&template(), &members[0].id)
        .await
        .unwrap();
    provisioner
        .scale(&template(), target(1, FULL))
        .await
        .unwrap();
    provisioner.stop_all("web").await.unwrap();
    provisioner.stop_all("web").await.unwrap();

    let role = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes/base/rbac.yaml");
    assert_role_matches(&server, &role, "umbra-provisioner");
}

/// The HA layout's leader Role (`deploy/kubernetes/overlays/ha/rbac-leader.yaml`) grants
/// exactly what leader election and the phase ConfigMaps call: create the Lease, renew it,
/// take it over once it lapsed, release it; read, create and update a workload's phase.
#[tokio::test]
async fn the_leader_role_grants_exactly_what_election_and_the_phase_configmaps_call() {
    const T0: u64 = 1_800_000_000_000;
    let server = FakeApiServer::start().await;
    let lease = |identity: &str| {
        let api: Api<Lease> = Api::namespaced(server.client(), NS);
        LeaseClient::new(api, "umbra-controller", identity, 2)
    };
    let timing = ElectionTiming::for_lease(Duration::from_secs(2));
    let (mut a, _) = Elector::new(lease("a"), timing, None);
    let (mut b, _) = Elector::new(lease("b"), timing, None);
    assert!(a.step(T0).await, "a creates the lease");
    assert!(a.step(T0 + 600).await, "a renews");
    assert!(!b.step(T0 + 700).await, "b follows");
    assert!(b.step(T0 + 10_000).await, "b takes the lapsed lease over");
    lease("b").release().await.unwrap();

    let phases = ConfigMapPhases::new(
        Api::namespaced(server.client(), NS),
        "umbra-controller",
        "umbra",
        "b",
        Arc::new(Store::in_memory().unwrap()),
    );
    assert_eq!(phases.load("web").await.unwrap(), None);
    let ramp = Phase::Ramping {
        weight: 0.1,
        step_since_ms: 1,
    };
    phases
        .save("web", &Phase::Idle, &ramp, "shadow ready", 1)
        .await
        .unwrap();
    phases
        .save("web", &ramp, &Phase::Idle, "returned", 2)
        .await
        .unwrap();
    assert_eq!(phases.load("web").await.unwrap(), Some(Phase::Idle));

    let role = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/kubernetes/overlays/ha/rbac-leader.yaml");
    assert_role_matches(&server, &role, "umbra-leader");
}

/// Everything `server` was asked, as permissions, equals what Role `name` in `role` grants.
fn assert_role_matches(server: &FakeApiServer, role: &Path, name: &str) {
    let requests = server.take_requests();
    let called: BTreeSet<Permission> = requests.iter().flat_map(permissions).collect();
    let granted = role_permissions(role, name);
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty() && unused.is_empty(),
        "{} does not match the calls made\n  called but not granted: {missing:?}\n  \
         granted but never called: {unused:?}\n  requests:\n    {}",
        role.display(),
        requests
            .iter()
            .map(|r| format!("{} -> {}", r.line(), r.status))
            .collect::<Vec<_>>()
            .join("\n    ")
    );
}
