//! The `kubernetes` provisioner against an in-test API server with real response shapes:
//! golden checks of every request (method, path, query, content type, key body fields), and
//! a real-cluster end-to-end test that runs only when asked for.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report
#![cfg(feature = "kubernetes")]

#[path = "provision_support/fake_api_server.rs"]
mod fake_api_server;
#[path = "provision_support/fake_cluster.rs"]
mod fake_cluster;

use std::collections::BTreeMap;
use std::time::Duration;

use fake_api_server::{FakeApiServer, Recorded};
use provision::kubernetes::{KubernetesOptions, KubernetesProvisioner};
use provision::{InstanceTemplate, ProvisionError, Provisioner, Resources, ShadowTarget};
use serde_json::json;

const NS: &str = "shop";
const IDLE: Resources = Resources {
    cpu_millis: 250,
    memory_mib: 64,
};
const FULL: Resources = Resources {
    cpu_millis: 1000,
    memory_mib: 256,
};
const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/shop/deployments/web-shadow";
const SCALE: &str = "/apis/apps/v1/namespaces/shop/deployments/web-shadow/scale";
const SERVICE: &str = "/api/v1/namespaces/shop/services/web-shadow";
const APPLY_QUERY: &str = "?fieldManager=umbra&force=true";
const SLICES: &str = "GET /apis/discovery.k8s.io/v1/namespaces/shop/endpointslices?labelSelector=kubernetes.io/service-name=web-shadow";
const PODS: &str =
    "GET /api/v1/namespaces/shop/pods?labelSelector=umbra.dev/pool=shadow,umbra.dev/workload=web";

fn template() -> InstanceTemplate {
    InstanceTemplate {
        workload: "web".into(),
        command: vec![],
        image: Some("registry.example/web:1.4".into()),
        container_port: 8080,
        health_path: Some("/healthz".into()),
        env: BTreeMap::from([("LISTEN".to_string(), "{addr}".to_string())]),
    }
}

fn target(instances: u32, resources: Resources) -> ShadowTarget {
    ShadowTarget {
        instances,
        resources,
    }
}

async fn setup() -> (FakeApiServer, KubernetesProvisioner) {
    let server = FakeApiServer::start().await;
    let options = KubernetesOptions {
        namespace: NS.into(),
        poll_interval: Duration::from_millis(10),
        replace_timeout: Duration::from_secs(2),
        ..KubernetesOptions::default()
    };
    let provisioner = KubernetesProvisioner::new(server.client(), options);
    (server, provisioner)
}

fn lines(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} -> {}", r.line(), r.status))
        .collect()
}

#[tokio::test]
async fn first_scale_applies_server_side_then_scales_through_the_subresource() {
    let (server, provisioner) = setup().await;
    assert_eq!(provisioner.name(), "kubernetes");
    let instances = provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();

    let requests = server.take_requests();
    assert_eq!(
        lines(&requests),
        [
            format!("GET {DEPLOYMENT} -> 404"),
            format!("PATCH {SERVICE}{APPLY_QUERY} -> 201"),
            format!("PATCH {DEPLOYMENT}{APPLY_QUERY} -> 201"),
            format!("GET {SCALE} -> 200"),
            format!("PUT {SCALE} -> 200"),
            format!("{SLICES} -> 200"),
            format!("{PODS} -> 200"),
        ]
    );
    // Server-side apply: the apply content type, and owner labels on everything.
    for apply in requests.iter().filter(|r| r.method == "PATCH") {
        assert_eq!(
            apply.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        let body = apply.body.as_ref().unwrap();
        assert_eq!(body["metadata"]["name"], "web-shadow");
        assert_eq!(body["metadata"]["namespace"], NS);
        assert_eq!(
            body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "umbra"
        );
        assert_eq!(body["metadata"]["labels"]["umbra.dev/workload"], "web");
    }
    let service = requests[1].body.as_ref().unwrap();
    assert_eq!(
        (service["apiVersion"].as_str(), service["kind"].as_str()),
        (Some("v1"), Some("Service"))
    );
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    let deployment = requests[2].body.as_ref().unwrap();
    assert_eq!(
        (
            deployment["apiVersion"].as_str(),
            deployment["kind"].as_str()
        ),
        (Some("apps/v1"), Some("Deployment"))
    );
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "replicas go through /scale only"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/web:1.4");
    assert_eq!(
        container["resources"],
        json!({"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}})
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "umbra"
    );
    // The 404 was a real Status body, and the write to /scale a real Scale carrying the
    // resourceVersion just read (optimistic concurrency).
    let put = requests[4].body.as_ref().unwrap();
    assert_eq!(
        (put["apiVersion"].as_str(), put["kind"].as_str()),
        (Some("autoscaling/v1"), Some("Scale"))
    );
    assert_eq!(put["spec"]["replicas"], 2);
    assert_eq!(put["metadata"]["name"], "web-shadow");
    let deployed = server.deployment("web-shadow").unwrap();
    assert_eq!(deployed["spec"]["replicas"], 2);
    assert_ne!(
        put["metadata"]["resourceVersion"], deployed["metadata"]["resourceVersion"],
        "the PUT bumped it"
    );

    // Members: the ready endpoints, with the size and identity of their pods.
    assert_eq!(instances.len(), 2);
    for instance in &instances {
        assert!(instance.id.starts_with("web-shadow-"), "{}", instance.id);
        assert_eq!(instance.addr.port(), 8080);
        assert!(instance.addr.ip().to_string().starts_with("192.0.2."));
        assert_eq!(instance.resources, IDLE);
    }
    assert!(server.service("web-shadow").is_some());
}

#[tokio::test]
async fn scaling_again_to_the_same_target_writes_nothing() {
    let (server, provisioner) = setup().await;
    let first = provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();
    let version = server.deployment("web-shadow").unwrap()["metadata"]["resourceVersion"].clone();
    server.take_requests();
    let second = provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();
    assert_eq!(second, first);
    let requests = server.take_requests();
    assert_eq!(
        lines(&requests),
        [
            format!("GET {DEPLOYMENT} -> 200"),
            format!("PATCH {SERVICE}{APPLY_QUERY} -> 200"),
            format!("PATCH {DEPLOYMENT}{APPLY_QUERY} -> 200"),
            format!("GET {SCALE} -> 200"),
            format!("{SLICES} -> 200"),
            format!("{PODS} -> 200"),
        ],
        "no PUT to /scale"
    );
    assert_eq!(
        server.deployment("web-shadow").unwrap()["metadata"]["resourceVersion"],
        version
    );
}

#[tokio::test]
async fn resize_rolls_the_pod_template_without_touching_replicas() {
    let (server, provisioner) = setup().await;
    let idle = provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();
    server.take_requests();
    let full = provisioner
        .scale(&template(), target(2, FULL))
        .await
        .unwrap();
    let requests = server.take_requests();
    assert!(
        requests.iter().all(|r| r.method != "PUT"),
        "{:?}",
        lines(&requests)
    );
    let applied = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.path == DEPLOYMENT)
        .unwrap();
    let resources =
        &applied.body.as_ref().unwrap()["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert_eq!(
        resources["limits"],
        json!({"cpu": "1000m", "memory": "256Mi"})
    );
    assert_eq!(full.len(), 2);
    assert!(full.iter().all(|i| i.resources == FULL));
    assert!(
        full.iter().all(|i| idle.iter().all(|old| old.id != i.id)),
        "pods were rolled"
    );
    let deployed = server.deployment("web-shadow").unwrap();
    assert_eq!(deployed["spec"]["replicas"], 2);
    assert_eq!(deployed["metadata"]["generation"], 2);
}

#[tokio::test]
async fn scale_down_and_not_ready_endpoints() {
    let (server, provisioner) = setup().await;
    let three = provisioner
        .scale(&template(), target(3, IDLE))
        .await
        .unwrap();
    assert_eq!(three.len(), 3);
    server.set_not_ready(&three[0].id);
    let members = provisioner.instances("web").await.unwrap();
    assert_eq!(members.len(), 2, "a pod failing readiness is not a member");
    assert!(members.iter().all(|m| m.id != three[0].id));
    server.take_requests();
    provisioner
        .scale(&template(), target(1, IDLE))
        .await
        .unwrap();
    let put = server
        .take_requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    assert_eq!(put.path, SCALE);
    assert_eq!(put.body.unwrap()["spec"]["replicas"], 1);
    assert_eq!(server.pod_names().len(), 1);
}

#[tokio::test]
async fn a_scale_conflict_is_retried_once_with_a_fresh_read() {
    let (server, provisioner) = setup().await;
    provisioner
        .scale(&template(), target(1, IDLE))
        .await
        .unwrap();
    server.take_requests();
    server.inject_scale_conflicts(1);
    provisioner
        .scale(&template(), target(3, IDLE))
        .await
        .unwrap();
    let scale_calls: Vec<String> = lines(&server.take_requests())
        .into_iter()
        .filter(|l| l.contains("/scale"))
        .collect();
    assert_eq!(
        scale_calls,
        [
            format!("GET {SCALE} -> 200"),
            format!("PUT {SCALE} -> 409"),
            format!("GET {SCALE} -> 200"),
            format!("PUT {SCALE} -> 200")
        ]
    );
    assert_eq!(
        server.deployment("web-shadow").unwrap()["spec"]["replicas"],
        3
    );

    server.inject_scale_conflicts(2);
    let err = provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("409"), "{err}");
}

#[tokio::test]
async fn replace_deletes_the_pod_and_returns_its_successor() {
    let (server, provisioner) = setup().await;
    let before = provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();
    server.take_requests();
    let successor = provisioner
        .replace(&template(), &before[0].id)
        .await
        .unwrap();
    let requests = lines(&server.take_requests());
    assert_eq!(requests[0], format!("{PODS} -> 200"));
    assert_eq!(
        requests[1],
        format!(
            "DELETE /api/v1/namespaces/shop/pods/{} -> 200",
            before[0].id
        )
    );
    assert!(before.iter().all(|b| b.id != successor.id));
    assert_eq!(successor.resources, IDLE);
    assert_eq!(successor.addr.port(), 8080);
    assert_eq!(server.pod_names().len(), 2);

    let err = provisioner
        .replace(&template(), "web-shadow-unknown")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no shadow pod web-shadow-unknown"),
        "{err}"
    );
}

#[tokio::test]
async fn stop_all_deletes_what_it_owns_and_treats_404_as_done() {
    let (server, provisioner) = setup().await;
    provisioner
        .scale(&template(), target(2, IDLE))
        .await
        .unwrap();
    let uid = server.deployment("web-shadow").unwrap()["metadata"]["uid"].clone();
    server.take_requests();
    provisioner.stop_all("web").await.unwrap();
    let requests = server.take_requests();
    assert_eq!(
        lines(&requests),
        [
            format!("GET {DEPLOYMENT} -> 200"),
            format!("DELETE {DEPLOYMENT} -> 200"),
            format!("GET {SERVICE} -> 200"),
            format!("DELETE {SERVICE} -> 200"),
        ]
    );
    let delete = requests[1].body.as_ref().unwrap();
    assert_eq!(delete["propagationPolicy"], "Background");
    assert_eq!(delete["preconditions"]["uid"], uid);
    assert!(server.deployment("web-shadow").is_none() && server.service("web-shadow").is_none());
    assert!(server.pod_names().is_empty(), "nothing leaks");

    provisioner.stop_all("web").await.unwrap();
    assert_eq!(
        lines(&server.take_requests()),
        [
            format!("GET {DEPLOYMENT} -> 404"),
            format!("GET {SERVICE} -> 404")
        ]
    );
    assert!(provisioner.instances("web").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deployment_umbra_does_not_own_is_never_taken_over_or_deleted() {
    let (server, provisioner) = setup().await;
    server.seed_deployment(
        "web-shadow",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web-shadow", "namespace": NS, "labels": {"team": "payments"}},
               "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "x"}},
                        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "x", "image": "x"}]}}}}),
    );
    let err = provisioner
        .scale(&template(), target(1, IDLE))
        .await
        .unwrap_err();
    assert!(matches!(err, ProvisionError::Template { .. }), "{err:?}");
    assert!(err.to_string().contains("not managed by umbra"), "{err}");
    let err = provisioner.stop_all("web").await.unwrap_err();
    assert!(err.to_string().contains("not managed by umbra"), "{err}");
    let methods: Vec<String> = server
        .take_requests()
        .into_iter()
        .map(|r| r.method)
        .collect();
    assert_eq!(methods, ["GET", "GET"], "only reads");
    assert_eq!(
        server.deployment("web-shadow").unwrap()["spec"]["replicas"],
        4
    );
}

#[tokio::test]
async fn templates_kubernetes_cannot_run_are_rejected_before_any_call() {
    let (server, provisioner) = setup().await;
    let mut no_image = template();
    no_image.image = None;
    let err = provisioner
        .scale(&no_image, target(1, IDLE))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("template.image"), "{err}");
    let mut bad_name = template();
    bad_name.workload = "Web_API".into();
    let err = provisioner
        .scale(&bad_name, target(1, IDLE))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("a-z0-9-"), "{err}");
    assert!(server.take_requests().is_empty());
}

/// Against a real cluster: `UMBRA_E2E_KUBECONFIG=/path/to/kubeconfig cargo test --release -p
/// controller --test provision_kubernetes -- --ignored`. Optional: `UMBRA_E2E_NAMESPACE`
/// (default `default`), `UMBRA_E2E_IMAGE` and `UMBRA_E2E_PORT` (default `nginx:1.27-alpine`, 80).
#[tokio::test]
#[ignore = "needs a real cluster: set UMBRA_E2E_KUBECONFIG and run with --ignored"]
async fn real_cluster_end_to_end() {
    let path = std::env::var("UMBRA_E2E_KUBECONFIG")
        .expect("UMBRA_E2E_KUBECONFIG must name a kubeconfig file for the real-cluster test");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespace = std::env::var("UMBRA_E2E_NAMESPACE").unwrap_or_else(|_| "default".into());
    let provisioner = KubernetesProvisioner::new(
        client,
        KubernetesOptions {
            namespace,
            ..KubernetesOptions::default()
        },
    );
    let workload = format!("umbra-e2e-{}", std::process::id());
    let template = InstanceTemplate {
        workload: workload.clone(),
        command: vec![],
        image: Some(
            std::env::var("UMBRA_E2E_IMAGE").unwrap_or_else(|_| "nginx:1.27-alpine".into()),
        ),
        container_port: std::env::var("UMBRA_E2E_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(80),
        health_path: Some("/".into()),
        env: BTreeMap::new(),
    };
    let wait_for = |count: usize, size: Resources| {
        let provisioner = &provisioner;
        let workload = workload.clone();
        async move {
            for _ in 0..180 {
                let members = provisioner.instances(&workload).await.unwrap();
                if members.len() == count && members.iter().all(|m| m.resources == size) {
                    return members;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            panic!("{workload}: never reached {count} ready members of size {size:?}");
        }
    };
    let result = async {
        provisioner.scale(&template, target(2, IDLE)).await.unwrap();
        let idle = wait_for(2, IDLE).await;
        provisioner.scale(&template, target(2, FULL)).await.unwrap();
        wait_for(2, FULL).await;
        let successor = provisioner.replace(&template, &idle[0].id).await.unwrap();
        assert_ne!(successor.id, idle[0].id);
        provisioner.scale(&template, target(1, FULL)).await.unwrap();
        wait_for(1, FULL).await;
    };
    result.await;
    provisioner.stop_all(&workload).await.unwrap();
    for _ in 0..60 {
        if provisioner.instances(&workload).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{workload}: members remain after stop_all");
}
