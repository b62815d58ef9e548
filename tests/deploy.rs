//! The shipped Prometheus alerting rules: `promtool` (Debian `prometheus`) checks their syntax
//! and runs their unit tests, and every metric they read is one the binaries export.

use std::path::{Path, PathBuf};
use std::process::Command;

use umbra_e2e::external::require;

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

fn promtool(args: &[&str]) {
    let bin = require("promtool", "prometheus");
    let out = Command::new(bin)
        .args(args)
        .current_dir(rules_dir())
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_alerting_rules_are_valid() {
    promtool(&["check", "rules", "umbra-rules.yml"]);
}

#[test]
fn the_alerting_rules_fire_as_their_unit_tests_say() {
    promtool(&["test", "rules", "umbra-rules.test.yml"]);
}

#[test]
fn every_metric_the_rules_read_is_exported() {
    let rules = std::fs::read_to_string(rules_dir().join("umbra-rules.yml")).expect("rules");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut sources = String::new();
    for dir in ["proxy/src", "controller/src"] {
        collect(&root.join(dir), &mut sources);
    }
    let mut names: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("umbra_"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 5, "the rules read only {names:?}");
    for name in names {
        assert!(
            sources.contains(&format!("\"{name}")),
            "the rules read {name}, which no binary exports"
        );
    }
}

fn collect(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).expect("source dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push_str(&std::fs::read_to_string(&path).expect("source file"));
        }
    }
}
