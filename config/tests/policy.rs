//! Policy files: the example parses, and every rejection names file, line and field.

use std::path::Path;

use config::{WorkloadPolicy, parse_policy};

fn reject(text: &str) -> String {
    match parse_policy(Path::new("policies/p.toml"), text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_shipped_default_matches_the_builtin() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default.toml");
    let shipped = config::load_policy(&path).expect("shipped policy is valid");
    let builtin = WorkloadPolicy::builtin();
    assert_eq!(shipped.sizing, builtin.sizing);
    assert_eq!(shipped.trigger, builtin.trigger);
    assert_eq!(shipped.migration, builtin.migration);
    assert_eq!(shipped.name, "default");
}

#[test]
fn unknown_key() {
    let e = reject("[ramp]\nstep = 0.1\nstepp = 0.2\n");
    assert!(e.starts_with("policies/p.toml:3"), "{e}");
    assert!(e.contains("ramp.stepp"), "{e}");
}

#[test]
fn lead_time_shorter_than_startup() {
    let e = reject("[sizing]\nstartup = \"2m\"\n\n[trigger]\nlead_time = \"1m\"\n");
    assert!(e.starts_with("policies/p.toml:5"), "{e}");
    assert!(e.contains("trigger.lead_time"), "{e}");
}

#[test]
fn no_hysteresis() {
    let e = reject("[trigger]\nthreshold = 0.8\nclear_below = 0.8\n");
    assert!(
        e.starts_with("policies/p.toml:3") && e.contains("trigger.clear_below"),
        "{e}"
    );
}

#[test]
fn idle_bigger_than_full() {
    let e = reject("[sizing]\nidle = { cpu_millis = 2000, memory_mib = 64 }\n");
    assert!(
        e.starts_with("policies/p.toml:2") && e.contains("sizing.idle"),
        "{e}"
    );
}

#[test]
fn min_above_max() {
    let e = reject("[sizing]\nmin_instances = 5\nmax_instances = 2\n");
    assert!(
        e.contains("sizing.min_instances") && e.starts_with("policies/p.toml:2"),
        "{e}"
    );
}

#[test]
fn bad_quantile_and_at_full_and_ramp() {
    assert!(reject("[forecast]\nquantile = 0.3\n").contains("forecast.quantile"));
    assert!(reject("[ramp]\nat_full = \"delete\"\n").contains("ramp.at_full"));
    assert!(reject("[ramp]\nstart_weight = 0\n").contains("ramp.start_weight"));
    assert!(reject("[ramp]\nmax_cpu = 1.5\n").contains("ramp.max_cpu"));
    assert!(reject("[sizing]\ninstance_capacity = -1\n").contains("sizing.instance_capacity"));
    assert!(reject("[trigger]\nlead_time = \"3h\"\n").contains("trigger.lead_time"));
}

#[test]
fn rise_quantile_outside_zero_to_one() {
    let e = reject("[sizing]\nbuffer = 0.2\nrise_quantile = 1.5\n");
    assert!(
        e.contains("sizing.rise_quantile") && e.starts_with("policies/p.toml:3"),
        "{e}"
    );
    let off = parse_policy(Path::new("p.toml"), "[sizing]\nrise_quantile = 0\n").expect("valid");
    assert_eq!(off.sizing.rise_quantile(), 0.0);
}
