//! The Kubernetes objects of a shadow pool, built as plain values (no I/O): the
//! `<workload>-shadow` Deployment and Service, and the reading of sizes and ready members
//! back out of Pods and EndpointSlices.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Service, ServicePort, ServiceSpec, TCPSocketAction,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::ports::substitute_in_container;
use super::{InstanceTemplate, ProvisionError, Resources};

/// Marks every object umbra owns (the Kubernetes convention for the managing tool).
pub(crate) const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "umbra");
/// Names the workload an object belongs to.
pub(crate) const WORKLOAD_LABEL: &str = "umbra.dev/workload";
/// Tells shadow pods from the workload's primary pods, which may carry the same workload label.
pub(crate) const POOL_LABEL: (&str, &str) = ("umbra.dev/pool", "shadow");
/// The port name shared by the Service and the EndpointSlices.
const PORT_NAME: &str = "http";

/// Accepts workload names for which `<workload>-shadow` is a valid Kubernetes object name
/// (a DNS-1123 label): lowercase letters, digits and `-`, starting with a letter or digit, at
/// most 56 characters.
pub(crate) fn check_kubernetes_name(workload: &str) -> Result<(), ProvisionError> {
    let ok = (1..=56).contains(&workload.len())
        && workload
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !workload.starts_with('-');
    ok.then_some(()).ok_or_else(|| ProvisionError::Template {
        backend: "kubernetes",
        workload: workload.to_string(),
        message: "the name must be 1-56 of a-z0-9- not starting with '-', so that \
                  '<workload>-shadow' is a valid object name"
            .into(),
    })
}

/// `<workload>-shadow`: the Deployment's and the Service's name.
pub(crate) fn shadow_name(workload: &str) -> String {
    format!("{workload}-shadow")
}

/// Labels on the Deployment, the Service and every pod.
pub(crate) fn owner_labels(workload: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(workload);
    labels.insert(MANAGED_BY.0.into(), MANAGED_BY.1.into());
    labels
}

/// What selects the shadow pods (kept minimal: a Deployment's selector is immutable).
pub(crate) fn selector_labels(workload: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (WORKLOAD_LABEL.to_string(), workload.to_string()),
        (POOL_LABEL.0.to_string(), POOL_LABEL.1.to_string()),
    ])
}

/// The label selector string for the shadow pods.
pub(crate) fn pod_selector(workload: &str) -> String {
    selector_labels(workload)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether an object's labels say umbra manages it.
pub(crate) fn is_ours(meta: &ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|labels| labels.get(MANAGED_BY.0))
        .is_some_and(|v| v == MANAGED_BY.1)
}

/// The Deployment to server-side apply. It has no `replicas`: those belong to the `/scale`
/// subresource, and a field in the applied object would be set back on every apply.
pub(crate) fn deployment(
    template: &InstanceTemplate,
    image: &str,
    namespace: &str,
    resources: Resources,
) -> Deployment {
    let workload = template.workload.as_str();
    let port = i32::from(template.container_port);
    let readiness = match &template.health_path {
        Some(path) => Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.clone()),
                port: IntOrString::Int(port),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(2),
            ..Probe::default()
        },
        None => Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(port),
                ..TCPSocketAction::default()
            }),
            period_seconds: Some(2),
            ..Probe::default()
        },
    };
    let env = template
        .env
        .iter()
        .map(|(name, value)| EnvVar {
            name: name.clone(),
            value: Some(substitute_in_container(value, template.container_port)),
            ..EnvVar::default()
        })
        .collect::<Vec<_>>();
    let container = Container {
        name: workload.to_string(),
        image: Some(image.to_string()),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: port,
            ..ContainerPort::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        resources: Some(requirements(resources)),
        readiness_probe: Some(readiness),
        ..Container::default()
    };
    Deployment {
        metadata: meta(workload, namespace),
        spec: Some(DeploymentSpec {
            selector: LabelSelector {
                match_labels: Some(selector_labels(workload)),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(owner_labels(workload)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

/// The ClusterIP Service whose EndpointSlices list the ready shadow pods.
pub(crate) fn service(template: &InstanceTemplate, namespace: &str) -> Service {
    let port = i32::from(template.container_port);
    Service {
        metadata: meta(&template.workload, namespace),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector_labels(&template.workload)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port,
                target_port: Some(IntOrString::Int(port)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn meta(workload: &str, namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(shadow_name(workload)),
        namespace: Some(namespace.to_string()),
        labels: Some(owner_labels(workload)),
        ..ObjectMeta::default()
    }
}

/// Requests equal to limits (Guaranteed QoS: a shadow instance is not evicted first under
/// pressure, and its size is exactly what was planned). A 0 leaves that resource unset.
pub(crate) fn requirements(resources: Resources) -> ResourceRequirements {
    let mut quantities = BTreeMap::new();
    if resources.cpu_millis > 0 {
        quantities.insert(
            "cpu".to_string(),
            Quantity(format!("{}m", resources.cpu_millis)),
        );
    }
    if resources.memory_mib > 0 {
        quantities.insert(
            "memory".to_string(),
            Quantity(format!("{}Mi", resources.memory_mib)),
        );
    }
    ResourceRequirements {
        requests: Some(quantities.clone()),
        limits: Some(quantities),
        ..ResourceRequirements::default()
    }
}

/// The size in a container's resources (limits, else requests); unparsable is 0.
pub(crate) fn resources_of(requirements: Option<&ResourceRequirements>) -> Resources {
    let pick = |name: &str| {
        let requirements = requirements?;
        [&requirements.limits, &requirements.requests]
            .into_iter()
            .flatten()
            .find_map(|q| q.get(name))
            .map(|q| q.0.clone())
    };
    Resources {
        cpu_millis: pick("cpu").and_then(|q| parse_cpu_millis(&q)).unwrap_or(0),
        memory_mib: pick("memory")
            .and_then(|q| parse_memory_mib(&q))
            .unwrap_or(0),
    }
}

/// `250m`, `1`, `1.5` -> thousandths of a core.
fn parse_cpu_millis(quantity: &str) -> Option<u32> {
    if let Some(millis) = quantity.strip_suffix('m') {
        return millis.parse().ok();
    }
    let cores: f64 = quantity.parse().ok()?;
    let millis = (cores * 1000.0).round();
    (0.0..=f64::from(u32::MAX))
        .contains(&millis)
        .then_some(millis as u32)
}

/// `64Mi`, `1Gi`, `67108864`, `64M` -> MiB (rounded down).
fn parse_memory_mib(quantity: &str) -> Option<u32> {
    const UNITS: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    let (number, unit) = UNITS
        .iter()
        .find_map(|(suffix, unit)| quantity.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((quantity, 1));
    let bytes = number.parse::<u64>().ok()?.checked_mul(unit)?;
    u32::try_from(bytes >> 20).ok()
}

/// A ready endpoint of the shadow Service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    /// The pod behind it (`None` if the slice names no pod).
    pub pod: Option<String>,
    /// Pod IP and port.
    pub addr: SocketAddr,
}

/// The ready endpoints in `slices`. Kubernetes says a missing `ready` condition means ready;
/// terminating endpoints are reported not ready, so they drop out here.
pub(crate) fn ready_members(slices: &[EndpointSlice]) -> Vec<Member> {
    let mut members = Vec::new();
    for slice in slices {
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(PORT_NAME))
            .or_else(|| slice.ports.iter().flatten().next())
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        for endpoint in &slice.endpoints {
            let ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !ready {
                continue;
            }
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            for address in &endpoint.addresses {
                if let Ok(ip) = address.parse::<IpAddr>() {
                    members.push(Member {
                        pod: pod.clone(),
                        addr: SocketAddr::new(ip, port),
                    });
                }
            }
        }
    }
    members
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // in tests a panic is the failure report
mod tests {
    use super::*;

    fn template() -> InstanceTemplate {
        InstanceTemplate {
            workload: "web".into(),
            command: vec![],
            image: Some("example/web:1".into()),
            container_port: 8080,
            health_path: Some("/healthz".into()),
            env: [("LISTEN".to_string(), "{addr}".to_string())].into(),
        }
    }

    #[test]
    fn deployment_json_has_owner_labels_sizes_and_no_replicas() {
        let size = Resources {
            cpu_millis: 250,
            memory_mib: 64,
        };
        let json =
            serde_json::to_value(deployment(&template(), "example/web:1", "shop", size)).unwrap();
        assert_eq!(json["apiVersion"], "apps/v1");
        assert_eq!(json["kind"], "Deployment");
        assert_eq!(json["metadata"]["name"], "web-shadow");
        assert_eq!(json["metadata"]["namespace"], "shop");
        assert_eq!(
            json["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "umbra"
        );
        assert_eq!(json["metadata"]["labels"]["umbra.dev/workload"], "web");
        assert!(
            json["spec"].get("replicas").is_none(),
            "replicas belong to /scale"
        );
        let pod = &json["spec"]["template"];
        assert_eq!(
            pod["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "umbra"
        );
        let container = &pod["spec"]["containers"][0];
        assert_eq!(container["resources"]["limits"]["cpu"], "250m");
        assert_eq!(container["resources"]["requests"]["memory"], "64Mi");
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(container["env"][0]["value"], "0.0.0.0:8080");
        assert_eq!(
            json["spec"]["selector"]["matchLabels"]["umbra.dev/pool"],
            "shadow"
        );
    }

    #[test]
    fn service_selects_the_shadow_pods() {
        let json = serde_json::to_value(service(&template(), "shop")).unwrap();
        assert_eq!(json["kind"], "Service");
        assert_eq!(json["spec"]["type"], "ClusterIP");
        assert_eq!(json["spec"]["selector"]["umbra.dev/workload"], "web");
        assert_eq!(json["spec"]["ports"][0]["port"], 8080);
    }

    #[test]
    fn quantities_round_trip_and_parse_other_spellings() {
        let size = Resources {
            cpu_millis: 1500,
            memory_mib: 512,
        };
        assert_eq!(resources_of(Some(&requirements(size))), size);
        assert_eq!(parse_cpu_millis("2"), Some(2000));
        assert_eq!(parse_cpu_millis("0.25"), Some(250));
        assert_eq!(parse_memory_mib("1Gi"), Some(1024));
        assert_eq!(parse_memory_mib("67108864"), Some(64));
        assert_eq!(parse_memory_mib("lots"), None);
        assert_eq!(
            resources_of(None),
            Resources {
                cpu_millis: 0,
                memory_mib: 0
            }
        );
    }

    #[test]
    fn only_ready_endpoints_become_members() {
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-shadow-abc"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["192.0.2.1"], "conditions": {"ready": true}, "targetRef": {"kind": "Pod", "name": "p1"}},
                {"addresses": ["192.0.2.2"], "conditions": {"ready": false}, "targetRef": {"kind": "Pod", "name": "p2"}},
                {"addresses": ["192.0.2.3"], "targetRef": {"kind": "Pod", "name": "p3"}}
            ]
        }))
        .unwrap();
        let members = ready_members(&[slice]);
        assert_eq!(
            members,
            [
                Member {
                    pod: Some("p1".into()),
                    addr: "192.0.2.1:8080".parse().unwrap()
                },
                Member {
                    pod: Some("p3".into()),
                    addr: "192.0.2.3:8080".parse().unwrap()
                },
            ]
        );
    }

    #[test]
    fn kubernetes_names_are_dns_labels() {
        assert!(check_kubernetes_name("web-2").is_ok());
        for bad in ["", "Web", "web_2", "-web", &"x".repeat(57)] {
            assert!(check_kubernetes_name(bad).is_err(), "{bad:?}");
        }
    }
}
