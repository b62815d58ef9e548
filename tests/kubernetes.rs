//! `deploy/kubernetes`: every kustomize layout renders (`kubectl kustomize`, offline) and every
//! object in it validates against the Kubernetes API schemas of the oldest and a current
//! supported release (`kubernetes-validate --strict`, offline); the validator rejects a
//! broken manifest; the drain timings, probes and ports agree with the configs the layouts
//! ship; and those configs load in the real `umbra-proxy --check`.
//!
//! The Helm chart (`deploy/helm/umbra`) is rendered and linted by Helm's own Go SDK through
//! the `helm-python-sdk` package (PyPI; no `helm` binary is installable here), validated the
//! same way, and required to produce the edge layout's objects and RBAC.
//!
//! PodMonitors (`monitoring.coreos.com`) are custom resources: kubernetes-validate has no
//! schema for them without the Prometheus Operator's CRDs, so they are left out of the schema
//! validation (and checked here for the ports they scrape instead).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_yaml::Value;
use umbra_e2e::binary;
use umbra_e2e::external::require;

/// Every layout a user applies (`base` renders too: overlays are built on it), and the chart
/// with its default values and with every templated knob changed.
const LAYOUTS: &[&str] = &[
    "base",
    "overlays/edge",
    "overlays/ha",
    "sidecar",
    "helm",
    "helm (variant)",
];
/// Values of the chart renderings in [`LAYOUTS`].
const HELM_VALUES: &[(&str, &str)] = &[
    ("helm", "{}"),
    (
        "helm (variant)",
        r#"{"podMonitor": {"enabled": false}, "proxy": {"shutdownGraceSeconds": 10, "preStopSleepSeconds": 3,
            "service": {"type": "ClusterIP"}}, "controller": {"mode": "observe", "persistence": {"storageClassName": "fast"}},
            "images": {"proxy": {"tag": "dev"}}}"#,
    ),
];
/// 1.30: the oldest release with the `preStop.sleep` action on by default; 1.34: the API level
/// the Kubernetes provisioner is built against (k8s-openapi `v1_34`).
const VERSIONS: &[&str] = &["1.30.0", "1.34.0"];
/// Custom resources without schemas in kubernetes-validate.
const CUSTOM_API_GROUPS: &[&str] = &["monitoring.coreos.com/"];
/// terminationGracePeriodSeconds = preStop sleep + shutdown_grace + this (docs/EDGE.md).
const DRAIN_MARGIN_SECONDS: u64 = 5;

fn kubernetes_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// The objects a user would apply: `kubectl kustomize <layout>`, or the chart rendered by Helm.
fn render(layout: &str) -> Vec<Value> {
    match HELM_VALUES.iter().find(|(name, _)| *name == layout) {
        Some((_, values)) => helm(values).1,
        None => kustomize(layout),
    }
}

/// Helm's Go SDK (through helm-python-sdk) on `deploy/helm/umbra`: `helm lint`'s errors, and
/// the chart rendered as release `umbra` in namespace `umbra` with `values` (JSON).
const HELM: &str = r#"
import json, sys
try:
    import helm_python as helm
except ImportError:
    sys.exit("helm-python-sdk is not installed: python3 -m pip install helm-python-sdk (scripts/deps test installs it)")
chart_dir, values = sys.argv[1], json.loads(sys.argv[2])
lint = helm.lint(chart_dir)
manifests = helm.Chart.load(chart_dir).render(values=values, name="umbra", namespace="umbra")
print(json.dumps({"lint_errors": lint["errors"], "manifests": [manifests[k] for k in sorted(manifests)]}))
"#;

fn helm(values: &str) -> (Vec<String>, Vec<Value>) {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/umbra");
    let out = Command::new(require("python3", "python3"))
        .args(["-c", HELM])
        .arg(&chart)
        .arg(values)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "rendering the chart failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the renderer's JSON");
    let errors = answer["lint_errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e.to_string())
        .collect();
    let objects = answer["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .flat_map(|m| documents(m.as_str().expect("a manifest")))
        .collect();
    (errors, objects)
}

/// `kubectl kustomize <layout>`.
fn kustomize(layout: &str) -> Vec<Value> {
    let kubectl = require("kubectl", "kubectl");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(kubernetes_dir().join(layout))
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {layout} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    documents(&String::from_utf8_lossy(&out.stdout))
}

fn documents(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("YAML document"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn is_custom(object: &Value) -> bool {
    let api = object["apiVersion"].as_str().unwrap_or_default();
    CUSTOM_API_GROUPS.iter().any(|group| api.starts_with(group))
}

/// The path of kubernetes-validate (PyPI), or a panic saying how to install it.
fn kubernetes_validate() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("kubernetes-validate"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`kubernetes-validate` is not installed: python3 -m pip install kubernetes-validate \
             (`scripts/deps test` installs it)"
        )
    })
}

/// Validates each object, one file each, strictly (unknown fields are errors) against every
/// version in [`VERSIONS`]. An object whose kind has no schema fails too: kubernetes-validate
/// only warns about it.
fn validate(objects: &[Value]) -> Result<(), String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        let name = format!(
            "{i:02}-{}-{}.yaml",
            object["kind"].as_str().unwrap_or("unknown"),
            object["metadata"]["name"].as_str().unwrap_or("unnamed")
        );
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            serde_yaml::to_string(object).expect("serialize object"),
        )
        .expect("write object");
        files.push(path);
    }
    let validator = kubernetes_validate();
    for version in VERSIONS {
        let out = Command::new(&validator)
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .args(&files)
            .output()
            .expect("run kubernetes-validate");
        let report = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || report.contains("Couldn't find schema") {
            return Err(format!("against Kubernetes {version}:\n{report}"));
        }
    }
    Ok(())
}

#[test]
fn every_layout_renders_and_validates_against_the_kubernetes_schemas() {
    for layout in LAYOUTS {
        let objects = render(layout);
        let (custom, standard): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(is_custom);
        assert!(standard.len() >= 4, "{layout} renders only {standard:?}");
        assert!(
            custom.iter().all(|o| o["kind"] == "PodMonitor"),
            "{layout}: unexpected custom resources {custom:?}"
        );
        if let Err(report) = validate(&standard) {
            panic!("{layout} does not validate {report}");
        }
        eprintln!(
            "{layout}: {} objects valid against Kubernetes {VERSIONS:?}; {} PodMonitors not schema-checked",
            standard.len(),
            custom.len()
        );
    }
}

#[test]
fn the_validation_rejects_a_broken_manifest() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/kubernetes/broken-deployment.yaml");
    let objects = documents(&std::fs::read_to_string(&fixture).expect("fixture"));
    let report = validate(&objects).expect_err("a misspelt field passed validation");
    assert!(report.contains("readinesProbe"), "{report}");
    // A kind without any schema is not waved through either.
    let unknown = documents("apiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: x\n");
    let report = validate(&unknown).expect_err("an unknown kind passed validation");
    assert!(report.contains("Frobnicator"), "{report}");
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

/// The `umbra.toml` carried by the ConfigMap a pod template mounts (generated names have a
/// hash suffix).
fn mounted_config(objects: &[Value], pod: &Value) -> toml::Table {
    let volumes = pod["volumes"].as_sequence().expect("volumes");
    let text = volumes
        .iter()
        .filter_map(|v| v["configMap"]["name"].as_str())
        .find_map(|name| {
            let map = find(objects, "ConfigMap", name);
            map["data"]["umbra.toml"].as_str()
        })
        .expect("a mounted ConfigMap with umbra.toml");
    text.parse().expect("umbra.toml is TOML")
}

fn duration(config: &toml::Table, table: &str, key: &str, default: &str) -> Duration {
    let text = config
        .get(table)
        .and_then(|t| t.get(key))
        .and_then(|v| v.as_str())
        .unwrap_or(default);
    humantime::parse_duration(text).expect("a humantime duration")
}

fn port_number(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no port named {name}"))
}

fn listen_port(config: &toml::Table, table: &str, key: &str) -> u64 {
    let addr = config[table][key].as_str().expect("an address");
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port")
}

/// The proxy's pod in each layout: terminationGracePeriodSeconds covers the preStop sleep
/// and the proxy's own drain (`shutdown_grace`) plus the margin, the probes ask the admin
/// API, the container ports are the config's, and a PodMonitor scrapes the admin port.
#[test]
fn the_proxy_pods_drain_within_their_grace_period_and_probe_the_admin_api() {
    for (layout, deployment, monitored) in [
        ("overlays/edge", "umbra-proxy", true),
        ("overlays/ha", "umbra-proxy", true),
        ("sidecar", "web", true),
        ("helm", "umbra-proxy", true),
        ("helm (variant)", "umbra-proxy", false),
    ] {
        let objects = render(layout);
        let pod = &find(&objects, "Deployment", deployment)["spec"]["template"]["spec"];
        let proxy = pod["containers"]
            .as_sequence()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == "umbra-proxy")
            .expect("an umbra-proxy container");
        let config = mounted_config(&objects, pod);
        let grace = duration(&config, "proxy", "shutdown_grace", "5s").as_secs();
        let sleep = proxy["lifecycle"]["preStop"]["sleep"]["seconds"]
            .as_u64()
            .expect("a preStop sleep");
        let period = pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds");
        assert_eq!(
            period,
            sleep + grace + DRAIN_MARGIN_SECONDS,
            "{layout}: terminationGracePeriodSeconds must be preStop {sleep}s + shutdown_grace \
             {grace}s + {DRAIN_MARGIN_SECONDS}s"
        );
        assert_eq!(proxy["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(proxy["livenessProbe"]["httpGet"]["path"], "/healthz");
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(proxy[probe]["httpGet"]["port"], "admin", "{layout} {probe}");
        }
        assert_eq!(
            port_number(proxy, "admin"),
            listen_port(&config, "proxy", "admin_listen")
        );
        assert_eq!(
            port_number(proxy, "http"),
            listen_port(&config, "proxy", "listen")
        );
        let scraped = objects
            .iter()
            .filter(|o| o["kind"] == "PodMonitor")
            .any(|m| m["spec"]["podMetricsEndpoints"][0]["port"] == "admin");
        assert_eq!(
            scraped, monitored,
            "{layout}: a PodMonitor scrapes the admin port"
        );
        let budget = objects.iter().any(|o| o["kind"] == "PodDisruptionBudget");
        assert!(budget, "{layout}: no PodDisruptionBudget");
    }
}

/// The edge layout's controller: its Role lives where it creates shadow pools, its
/// ServiceAccount is the one bound, and `controller.proxies` names the admin Service.
#[test]
fn the_controller_is_bound_where_it_provisions_and_drives_the_admin_service() {
    for layout in ["overlays/edge", "overlays/ha", "helm", "helm (variant)"] {
        controller_is_bound(&render(layout));
    }
}

fn controller_is_bound(objects: &[Value]) {
    let deployment = find(objects, "Deployment", "umbra-controller");
    let pod = &deployment["spec"]["template"]["spec"];
    let config = mounted_config(objects, pod);
    let namespace = config["controller"]["kubernetes"]["namespace"]
        .as_str()
        .expect("controller.kubernetes.namespace");
    let role = find(objects, "Role", "umbra-provisioner");
    assert_eq!(role["metadata"]["namespace"].as_str(), Some(namespace));
    let binding = find(objects, "RoleBinding", "umbra-provisioner");
    assert_eq!(binding["roleRef"]["name"], "umbra-provisioner");
    assert_eq!(
        binding["subjects"][0]["name"], pod["serviceAccountName"],
        "the Role is bound to another ServiceAccount than the controller's"
    );
    assert_eq!(
        binding["subjects"][0]["namespace"],
        deployment["metadata"]["namespace"]
    );
    assert_eq!(
        config["controller"]["provisioner"].as_str(),
        Some("kubernetes")
    );
    let proxies = config["controller"]["proxies"].as_array().expect("proxies");
    let admin = find(objects, "Service", "umbra-proxy-admin");
    let want = format!(
        "{}:{}",
        admin["metadata"]["name"].as_str().expect("name"),
        admin["spec"]["ports"][0]["port"].as_u64().expect("port")
    );
    assert_eq!(proxies.len(), 1, "one edge replica, one proxy to drive");
    assert_eq!(proxies[0].as_str(), Some(want.as_str()));
    let data_dir = config["controller"]["data_dir"].as_str().expect("data_dir");
    let mounts = pod["containers"][0]["volumeMounts"]
        .as_sequence()
        .expect("mounts");
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"].as_str() == Some(data_dir) && m["name"] == "data"),
        "data_dir {data_dir} is not the data volume"
    );
}

/// The chart lints without errors and makes the edge layout's objects (by kind and name;
/// Helm leaves the namespace to `--create-namespace`) with the same RBAC rules.
#[test]
fn the_helm_chart_lints_and_makes_the_edge_layout() {
    let (errors, chart) = helm("{}");
    assert!(errors.is_empty(), "helm lint: {errors:?}");
    let edge = render("overlays/edge");
    let names = |objects: &[Value]| -> Vec<String> {
        let mut names: Vec<String> = objects
            .iter()
            .filter(|o| o["kind"] != "Namespace")
            .map(|o| {
                let name = o["metadata"]["name"].as_str().unwrap_or_default();
                // kustomize's ConfigMap name carries a hash of its content.
                let name = if o["kind"] == "ConfigMap" {
                    match name.rsplit_once('-') {
                        Some((stem, hash)) if hash.len() == 10 => stem,
                        _ => name,
                    }
                } else {
                    name
                };
                format!("{} {name}", o["kind"].as_str().unwrap_or_default())
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&chart), names(&edge));
    let rules = |objects: &[Value]| find(objects, "Role", "umbra-provisioner")["rules"].clone();
    assert_eq!(rules(&chart), rules(&edge), "the chart's Role differs");
}

/// Cluster DNS names do not resolve here, and the config loader resolves every address:
/// `host:port` strings become `127.0.0.1:port` for the check, nothing else changes.
fn with_loopback_hosts(config: &str) -> String {
    let mut out = String::new();
    let mut rest = config;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..=start]);
        rest = &rest[start + 1..];
        let Some(end) = rest.find('"') else { break };
        let quoted = &rest[..end];
        let replaced = match quoted.rsplit_once(':') {
            Some((host, port))
                if !port.is_empty()
                    && port.chars().all(|c| c.is_ascii_digit())
                    && host.chars().any(|c| c.is_ascii_alphabetic())
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) =>
            {
                format!("127.0.0.1:{port}")
            }
            _ => quoted.to_string(),
        };
        out.push_str(&replaced);
        out.push('"');
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_shipped_configs_and_policy_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    for layout in [
        "overlays/edge",
        "overlays/ha",
        "sidecar",
        "helm",
        "helm (variant)",
    ] {
        let objects = render(layout);
        for map in objects.iter().filter(|o| o["kind"] == "ConfigMap") {
            let data = map["data"].as_mapping().expect("data");
            for (key, text) in data {
                let (key, text) = (key.as_str().expect("key"), text.as_str().expect("text"));
                let path = dir.path().join(key);
                if key == "umbra.toml" {
                    std::fs::write(&path, with_loopback_hosts(text)).expect("write config");
                    let out = Command::new(binary("umbra-proxy"))
                        .arg("--check")
                        .arg("--config")
                        .arg(&path)
                        .env("UMBRA_ADMIN_TOKEN", "check-token")
                        // The HA layout names each replica from the downward API.
                        .env("POD_NAME", "umbra-controller-0")
                        .output()
                        .expect("run umbra-proxy --check");
                    assert!(
                        out.status.success(),
                        "{layout} {key} is rejected:\n{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                } else {
                    std::fs::write(&path, text).expect("write policy");
                    if let Err(e) = config::load_policy(&path) {
                        panic!("{layout} policy {key} is rejected: {e}");
                    }
                }
            }
        }
    }
}

/// The HA layout: two controller replicas, each named from the downward API, electing on the
/// Lease its config names, each with its own history (no shared volume two pods would fight
/// over), and the leader Role bound to their ServiceAccount.
#[test]
fn the_ha_layout_runs_two_electing_controllers_with_the_leader_role() {
    let objects = render("overlays/ha");
    let deployment = find(&objects, "Deployment", "umbra-controller");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let config = mounted_config(&objects, pod);
    let k8s = &config["controller"]["kubernetes"];
    assert_eq!(k8s["leader_election"].as_bool(), Some(true));
    assert_eq!(k8s["identity"].as_str(), Some("env:POD_NAME"));
    let env = pod["containers"][0]["env"].as_sequence().expect("env");
    assert!(
        env.iter().any(|e| e["name"] == "POD_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"),
        "POD_NAME is not the pod's name: {env:?}"
    );
    let volumes = pod["volumes"].as_sequence().expect("volumes");
    assert!(
        volumes
            .iter()
            .all(|v| v.get("persistentVolumeClaim").is_none())
    );
    assert!(!objects.iter().any(|o| o["kind"] == "PersistentVolumeClaim"));
    let role = find(&objects, "Role", "umbra-leader");
    assert_eq!(role["metadata"]["namespace"], "umbra");
    let binding = find(&objects, "RoleBinding", "umbra-leader");
    assert_eq!(binding["subjects"][0]["name"], pod["serviceAccountName"]);
}

#[test]
fn loopback_substitution_touches_only_host_names() {
    let text = "a = \"web.shop.svc:8080\"\nb = \"0.0.0.0:9901\"\nc = \"env:TOKEN\"\nd = [\"x-y:1\", \"/p\"]\n";
    assert_eq!(
        with_loopback_hosts(text),
        "a = \"127.0.0.1:8080\"\nb = \"0.0.0.0:9901\"\nc = \"env:TOKEN\"\nd = [\"127.0.0.1:1\", \"/p\"]\n"
    );
}
