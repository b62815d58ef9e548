//! `umbra simulate` from the outside: the JSON and table outputs and flag rejections.

#[path = "simulate_support/mod.rs"]
mod support;

use support::{umbra, write_slice};

const ELB: &str = "elb_request_count_8c0756.csv";

fn replay_args(trace: &str) -> Vec<String> {
    [
        "simulate",
        "--trace",
        trace,
        "--scale",
        "10",
        "--instance-capacity",
        "50",
        "--model",
        "snaive",
        "--refit-every",
        "30m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    umbra(&args)
}

#[test]
fn json_holds_the_four_numbers_for_both_strategies() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let trace = write_slice(dir.path(), ELB, 720);
    let mut args = replay_args(&trace.display().to_string());
    args.push("--json".into());
    let out = run(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    for strategy in ["predictive", "reactive"] {
        for key in [
            "under_provisioned_minutes",
            "unserved_requests",
            "instance_hours",
            "scaling_actions",
        ] {
            let v = json[strategy][key]
                .as_f64()
                .unwrap_or_else(|| panic!("{strategy}.{key} missing in {json}"));
            assert!(v.is_finite() && v >= 0.0, "{strategy}.{key} = {v}");
        }
    }
    for key in ["migrations", "migration_attempts", "rollbacks"] {
        assert!(
            json["predictive"][key].is_u64(),
            "predictive.{key} in {json}"
        );
    }
    // Both strategies faced the same demand; the reactive one scaled at least once.
    assert_eq!(json["predictive"]["requests"], json["reactive"]["requests"]);
    assert!(json["reactive"]["scaling_actions"].as_u64() > Some(0));
    // 1.5 counted days: instance-hours are at least one instance around the clock.
    assert!(json["reactive"]["instance_hours"].as_f64() > Some(36.0));
    // Primary sized from the warm-up day: its median (~570 rps) at 70% of 50 rps.
    let primary = json["settings"]["primary_instances"].as_u64().unwrap_or(0);
    assert!((10..=25).contains(&primary), "primary {primary}");
    assert_eq!(json["settings"]["at_full"], "adopt");
    // Perfect foresight is never short, and costs no more than a strategy that was not
    // short either (neither strategy can beat it without going short).
    let oracle = &json["oracle"];
    assert_eq!(oracle["under_provisioned_minutes"].as_f64(), Some(0.0));
    assert_eq!(oracle["requests"], json["reactive"]["requests"]);
    let oracle_hours = oracle["instance_hours"].as_f64().unwrap_or(f64::NAN);
    for strategy in ["predictive", "reactive"] {
        if json[strategy]["under_provisioned_minutes"].as_f64() == Some(0.0) {
            let hours = json[strategy]["instance_hours"].as_f64().unwrap_or(0.0);
            assert!(
                oracle_hours <= hours + 1e-9,
                "oracle {oracle_hours} vs {strategy} {hours}"
            );
        }
    }
    // Every shortage minute is in some episode; the listed ones are the worst, worst first.
    let episodes = json["episodes"].as_array().cloned().unwrap_or_default();
    let count = json["episode_count"].as_u64().unwrap_or(u64::MAX);
    let short = json["predictive"]["under_provisioned_minutes"]
        .as_f64()
        .unwrap_or(0.0);
    assert_eq!(
        count == 0,
        short == 0.0,
        "{count} episodes, {short} minutes short"
    );
    assert!(episodes.len() as u64 <= count.min(5));
    let listed: f64 = episodes.iter().filter_map(|e| e["minutes"].as_f64()).sum();
    assert!(listed <= short + 1e-9, "{listed} listed of {short} minutes");
    for pair in episodes.windows(2) {
        assert!(pair[0]["unserved_requests"].as_f64() >= pair[1]["unserved_requests"].as_f64());
    }
    for e in &episodes {
        assert!(
            e["why"].as_str().is_some_and(|w| w.contains("ready")),
            "{e}"
        );
    }
}

#[test]
fn the_table_names_each_number_and_the_assumptions() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let trace = write_slice(dir.path(), ELB, 400);
    let out = run(&replay_args(&trace.display().to_string()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for row in [
        "under-provisioned minutes",
        "unserved requests",
        "instance-hours",
        "scaling actions",
        "migrations",
        "rollbacks",
        "predictive",
        "reactive (HPA)",
        "perfect foresight",
        "idle-size instance costs 0.10 of a full one",
        // Which comparison this is: the built-in policy adopts the shadow once migrated.
        "once migrated: adopt",
        "Umbra instead of a fixed primary",
    ] {
        assert!(text.contains(row), "`{row}` missing from:\n{text}");
    }
}

#[test]
fn bad_settings_are_rejected_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let trace = write_slice(dir.path(), ELB, 400);
    let trace = trace.display().to_string();
    for (flag, value, named) in [
        ("--tick", "10s", "tick"),
        ("--warmup", "30d", "warmup"),
        ("--startup", "2 weeks", "startup"),
        ("--scale", "0", "scale"),
        ("--primary-percentile", "120", "primary-percentile"),
    ] {
        let mut args = replay_args(&trace);
        args.extend([flag.to_string(), value.to_string()]);
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(
            err.contains(named),
            "{flag} {value}: `{named}` not named in: {err}"
        );
    }
    let out = umbra(&["simulate", "--trace", "/nonexistent/trace.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/trace.csv"));
}

#[test]
fn a_bad_input_prints_one_line_without_a_backtrace_even_with_rust_backtrace_set() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_umbra"))
        .args(["simulate", "--trace", "/nonexistent/trace.csv"])
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("running umbra: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("umbra: "), "{err}");
    assert!(err.contains("/nonexistent/trace.csv"), "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}
