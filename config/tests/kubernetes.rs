//! `[controller.kubernetes]`: leader election's defaults, and one test per rejection naming
//! file, line and field.

use std::path::Path;
use std::time::Duration;

use config::{Config, ConfigError, LeaderElection, parse_with_env};

const BASE: &str = r#"
[proxy]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9901"

[[workloads]]
name = "api"
primary = ["127.0.0.1:7001"]

[controller]
provisioner = "kubernetes"
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "POD_NAME" => Some("umbra-7d9f-abcde".into()),
        "MY_ID" => Some("replica-2".into()),
        _ => None,
    }
}

fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    parse_with_env(Path::new("umbra.toml"), text, env)
}

fn with_table(table: &str) -> String {
    format!("{BASE}\n[controller.kubernetes]\n{table}")
}

fn reject(text: &str, line: usize, field: &str) {
    let e = match parse(text, &env) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e,
    };
    let rendered = e.to_string();
    assert!(
        rendered.starts_with(&format!("umbra.toml:{line}")),
        "wrong line in: {rendered}"
    );
    assert!(
        rendered.contains(field),
        "{field:?} not named in: {rendered}"
    );
}

/// Line of the first key of the `[controller.kubernetes]` table in `with_table`.
const TABLE_LINE: usize = 14;

#[test]
fn leader_election_is_off_by_default() {
    let c = parse(BASE, &env).expect("valid");
    assert_eq!(c.controller.leader_election, None);
    assert_eq!(c.controller.kubernetes_namespace, "default");
}

#[test]
fn leader_election_defaults() {
    let c = parse(
        &with_table("namespace = \"shop\"\nleader_election = true"),
        &env,
    )
    .expect("valid");
    assert_eq!(
        c.controller.leader_election,
        Some(LeaderElection {
            lease_name: "umbra-controller".into(),
            lease_duration: Duration::from_secs(15),
            identity: "umbra-7d9f-abcde".into(),
        })
    );
    assert_eq!(c.controller.kubernetes_namespace, "shop");
}

#[test]
fn leader_election_settings() {
    let c = parse(
        &with_table(
            "leader_election = true\nlease_name = \"umbra-a\"\nlease_duration = \"4s\"\nidentity = \"env:MY_ID\"",
        ),
        &env,
    )
    .expect("valid");
    let le = c.controller.leader_election.expect("on");
    assert_eq!(
        (
            le.lease_name.as_str(),
            le.lease_duration,
            le.identity.as_str()
        ),
        ("umbra-a", Duration::from_secs(4), "replica-2")
    );
}

#[test]
fn unknown_key() {
    reject(
        &with_table("leader_elections = true"),
        TABLE_LINE,
        "leader_elections",
    );
}

#[test]
fn leader_election_needs_the_kubernetes_provisioner() {
    let text = with_table("leader_election = true")
        .replace("provisioner = \"kubernetes\"", "provisioner = \"process\"");
    reject(&text, TABLE_LINE, "controller.kubernetes.leader_election");
}

#[test]
fn lease_duration_too_short() {
    reject(
        &with_table("leader_election = true\nlease_duration = \"1s\""),
        TABLE_LINE + 1,
        "controller.kubernetes.lease_duration",
    );
}

#[test]
fn lease_duration_not_whole_seconds() {
    reject(
        &with_table("lease_duration = \"2500ms\""),
        TABLE_LINE,
        "controller.kubernetes.lease_duration",
    );
}

#[test]
fn lease_name_not_a_kubernetes_name() {
    reject(
        &with_table("lease_name = \"Umbra_Controller\""),
        TABLE_LINE,
        "controller.kubernetes.lease_name",
    );
}

#[test]
fn namespace_not_a_kubernetes_name() {
    reject(
        &with_table("namespace = \"-shop\""),
        TABLE_LINE,
        "controller.kubernetes.namespace",
    );
}

#[test]
fn identity_from_a_missing_variable() {
    reject(
        &with_table("leader_election = true\nidentity = \"env:NOPE\""),
        TABLE_LINE + 1,
        "controller.kubernetes.identity",
    );
}

#[test]
fn no_identity_anywhere() {
    let text = with_table("leader_election = true");
    let e = match parse(&text, &|_| None) {
        Ok(_) => panic!("accepted without an identity"),
        Err(e) => e,
    };
    assert!(
        e.to_string().contains("controller.kubernetes.identity"),
        "{e}"
    );
}
