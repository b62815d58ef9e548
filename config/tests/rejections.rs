//! One test per rejection: every bad config names its file, line and field.

use std::path::Path;

use config::{ConfigError, parse};

const GOOD: &str = r#"
[proxy]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9901"
admin_token = "secret-token"

[[workloads]]
name = "api"
hosts = ["api.example.com"]
path_prefix = "/"
priority = "critical"
stateless = true
shadow_weight = 0.0
primary = ["127.0.0.1:7001", "127.0.0.1:7002"]
shadow = ["127.0.0.1:7101"]

[workloads.guard]
window = "2s"
min_requests = 20
max_p99_ms = 250
max_p99_ratio = 2.0
max_error_rate = 0.05
cooldown = "30s"

[[workloads]]
name = "batch"
path_prefix = "/batch"
priority = "low"
primary = ["127.0.0.1:7001"]
"#;

fn reject(text: &str) -> ConfigError {
    match parse(Path::new("umbra.toml"), text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e,
    }
}

/// Replaces exactly one occurrence, so each test changes what it says it changes.
fn with(from: &str, to: &str) -> String {
    assert_eq!(
        GOOD.matches(from).count(),
        1,
        "{from:?} must occur once in GOOD"
    );
    GOOD.replacen(from, to, 1)
}

/// Asserts the rendered error names the file, the line and the field.
fn assert_names(e: &ConfigError, line: usize, field: &str) {
    let text = e.to_string();
    assert!(
        text.starts_with(&format!("umbra.toml:{line}")),
        "wrong line in: {text}"
    );
    assert!(text.contains(field), "{field:?} not named in: {text}");
    assert_eq!(e.line(), Some(line), "{text}");
}

#[test]
fn the_good_config_is_accepted() {
    let c = parse(Path::new("umbra.toml"), GOOD).expect("valid");
    assert_eq!(c.workloads.len(), 2);
    assert_eq!(c.workloads[0].name.as_str(), "api");
    assert_eq!(c.workloads[0].guard.thresholds.max_p99_ratio(), Some(2.0));
    assert_eq!(c.workloads[1].priority, policies::Priority::Low);
    assert!(
        c.proxy
            .admin_token
            .as_ref()
            .is_some_and(|t| t.matches("secret-token"))
    );
}

#[test]
fn unknown_key_in_guard() {
    let e = reject(&with("max_p99_ms = 250", "max_p99_msx = 250"));
    assert_names(&e, 20, "workloads[0].guard.max_p99_msx");
}

#[test]
fn unknown_top_level_section() {
    let e = reject(&format!("{GOOD}\n[proxyy]\nlisten = \"x\"\n"));
    assert!(e.to_string().contains("proxyy"), "{e}");
}

#[test]
fn wrong_type() {
    let e = reject(&with("min_requests = 20", "min_requests = \"twenty\""));
    assert_names(&e, 19, "workloads[0].guard.min_requests");
}

#[test]
fn toml_syntax_error() {
    let e = reject(&with("stateless = true", "stateless = tru"));
    assert_eq!(e.line(), Some(12), "{e}");
}

#[test]
fn weight_out_of_range() {
    let e = reject(&with("shadow_weight = 0.0", "shadow_weight = 1.5"));
    assert_names(&e, 13, "workloads[0].shadow_weight");
}

#[test]
fn weight_without_shadow_members() {
    let e = reject(
        &with("shadow = [\"127.0.0.1:7101\"]", "shadow = []")
            .replace("shadow_weight = 0.0", "shadow_weight = 0.5"),
    );
    assert_names(&e, 13, "workloads[0].shadow_weight");
}

#[test]
fn unknown_priority() {
    let e = reject(&with("priority = \"critical\"", "priority = \"urgent\""));
    assert_names(&e, 11, "workloads[0].priority");
}

#[test]
fn bad_upstream_address() {
    let e = reject(&with("\"127.0.0.1:7002\"", "\"127.0.0.1\""));
    assert_names(&e, 14, "workloads[0].primary[1]");
}

#[test]
fn upstream_in_both_pools() {
    let e = reject(&with(
        "shadow = [\"127.0.0.1:7101\"]",
        "shadow = [\"127.0.0.1:7002\"]",
    ));
    assert_names(&e, 15, "workloads[0].shadow[0]");
}

#[test]
fn duplicate_upstream() {
    let e = reject(&with("\"127.0.0.1:7002\"", "\"127.0.0.1:7001\""));
    assert_names(&e, 14, "workloads[0].primary[1]");
}

#[test]
fn empty_primary() {
    let e = reject(&with("primary = [\"127.0.0.1:7001\"]\n", "primary = []\n"));
    assert_names(&e, 29, "workloads[1].primary");
}

#[test]
fn missing_name() {
    let e = reject(&with("name = \"batch\"\n", ""));
    assert_names(&e, 25, "workloads[1].name");
}

#[test]
fn invalid_name() {
    let e = reject(&with("name = \"batch\"", "name = \"Batch Jobs\""));
    assert_names(&e, 26, "workloads[1].name");
}

#[test]
fn duplicate_name() {
    let e = reject(&with("name = \"batch\"", "name = \"api\""));
    assert_names(&e, 26, "workloads[1].name");
}

#[test]
fn duplicate_route() {
    let e = reject(
        &with("path_prefix = \"/batch\"", "path_prefix = \"/\"")
            .replace("hosts = [\"api.example.com\"]\n", ""),
    );
    assert!(e.to_string().contains("workloads[1].path_prefix"), "{e}");
}

#[test]
fn the_same_hosts_in_another_order_are_the_same_route() {
    let text = with(
        "hosts = [\"api.example.com\"]",
        "hosts = [\"api.example.com\", \"www.example.com\"]",
    )
    .replace(
        "name = \"batch\"\npath_prefix = \"/batch\"",
        "name = \"batch\"\nhosts = [\"www.example.com\", \"api.example.com\", \"www.example.com\"]\npath_prefix = \"/\"",
    );
    let e = reject(&text);
    let msg = e.to_string();
    assert!(msg.contains("workloads[1].path_prefix"), "{msg}");
    assert!(msg.contains("workloads[0] (api) already answers"), "{msg}");
}

#[test]
fn a_thousand_workloads_are_checked_for_duplicates_at_once() {
    let mut text =
        String::from("[proxy]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:9901\"\n");
    for i in 0..1000 {
        text.push_str(&format!(
            "\n[[workloads]]\nname = \"w{i}\"\nhosts = [\"w{i}.example.com\", \"*.w{i}.example.com\"]\nprimary = [\"127.0.0.1:7001\"]\n"
        ));
    }
    let c = parse(Path::new("umbra.toml"), &text).expect("valid");
    assert_eq!(c.workloads.len(), 1000);
    // The last one named like the first: the error points at both.
    let dup = text.replacen("name = \"w999\"", "name = \"w0\"", 1);
    let e = reject(&dup);
    assert!(
        e.to_string()
            .contains("is already the name of workloads[0]"),
        "{e}"
    );
}

#[test]
fn path_prefix_without_slash() {
    let e = reject(&with("path_prefix = \"/batch\"", "path_prefix = \"batch\""));
    assert_names(&e, 27, "workloads[1].path_prefix");
}

#[test]
fn host_with_port() {
    let e = reject(&with(
        "hosts = [\"api.example.com\"]",
        "hosts = [\"api.example.com:80\"]",
    ));
    assert_names(&e, 9, "workloads[0].hosts[0]");
}

#[test]
fn bad_duration() {
    let e = reject(&with("window = \"2s\"", "window = \"2\""));
    assert_names(&e, 18, "workloads[0].guard.window");
}

#[test]
fn window_too_short() {
    let e = reject(&with("window = \"2s\"", "window = \"10ms\""));
    assert_names(&e, 18, "workloads[0].guard.window");
}

#[test]
fn ratio_below_one() {
    let e = reject(&with("max_p99_ratio = 2.0", "max_p99_ratio = 0.5"));
    assert_names(&e, 21, "workloads[0].guard.max_p99_ratio");
}

#[test]
fn error_rate_above_one() {
    let e = reject(&with("max_error_rate = 0.05", "max_error_rate = 5"));
    assert_names(&e, 22, "workloads[0].guard.max_error_rate");
}

#[test]
fn zero_min_requests() {
    let e = reject(&with("min_requests = 20", "min_requests = 0"));
    assert_names(&e, 19, "workloads[0].guard.min_requests");
}

#[test]
fn negative_p99_ceiling() {
    let e = reject(&with("max_p99_ms = 250", "max_p99_ms = -1"));
    assert_names(&e, 20, "workloads[0].guard.max_p99_ms");
}

#[test]
fn token_from_missing_env_var() {
    let e = reject(&with(
        "admin_token = \"secret-token\"",
        "admin_token = \"env:UMBRA_TEST_SURELY_UNSET_VAR\"",
    ));
    assert_names(&e, 5, "proxy.admin_token");
    assert!(e.to_string().contains("UMBRA_TEST_SURELY_UNSET_VAR"));
}

#[test]
fn public_admin_without_token() {
    let e = reject(
        &with(
            "admin_listen = \"127.0.0.1:9901\"",
            "admin_listen = \"0.0.0.0:9901\"",
        )
        .replace("admin_token = \"secret-token\"\n", ""),
    );
    assert_names(&e, 4, "proxy.admin_listen");
}

#[test]
fn inverted_admission_shares() {
    let e = reject(&format!(
        "{GOOD}\n[proxy.admission]\nlow = 0.9\nnormal = 0.5\n"
    ));
    assert!(e.to_string().contains("proxy.admission.low"), "{e}");
}

#[test]
fn unreadable_file_is_named() {
    let e = config::load(Path::new("/nonexistent/umbra.toml")).expect_err("no such file");
    assert!(e.to_string().contains("/nonexistent/umbra.toml"), "{e}");
}

#[test]
fn bad_session_cookie_name() {
    let e = reject(&with(
        "stateless = true",
        "stateless = false\nsession_cookie = \"a b\"",
    ));
    assert_names(&e, 13, "workloads[0].session_cookie");
}
