//! The Grafana dashboard (`deploy/grafana/umbra.json`): importable as it is, every PromQL
//! expression parses (`promtool check rules`), names only metrics the binaries export (read
//! from the live `/metrics` of two proxies and a controller), and shows data for every panel
//! from a real Prometheus scraping that live stack once the events the panels chart have
//! happened: traffic on both pools, a forecast-driven migration ramped to completion, a guard
//! rollback, shed requests and a served TLS certificate.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use umbra_e2e::controller::Stack;
use umbra_e2e::external::{Prometheus, require};
use umbra_e2e::http::{client, eventually};
use umbra_e2e::load::Load;
use umbra_e2e::tls::{TestCert, Validity};
use umbra_e2e::{ProxyProcess, TestUpstream, free_port};

/// What the issue asks the dashboard to show, by panel title.
const REQUIRED_PANELS: &[&str] = &[
    "Request rate by pool",
    "p99 latency by pool",
    "Shadow weight",
    "Rollbacks by reason",
    "Forecast vs actual (requests/s)",
    "Shadow pool size vs predicted need",
    "Migration state",
    "Migrations by outcome",
    "Shed requests",
    "Certificate expiry",
];
/// Panels whose events the live test causes, so they must show a value above zero, not just
/// a series.
const POSITIVE_PANELS: &[&str] = &[
    "Request rate by pool",
    "Shadow weight",
    "Rollbacks by reason",
    "Migrations by outcome",
    "Shed requests",
    "Certificate expiry",
];
/// Grafana's variables as the live test sets them: every workload, rate windows over five
/// 1 s scrapes, and the test policy's instance capacity.
const VARIABLES: &[(&str, &str)] = &[
    ("$__rate_interval", "5s"),
    ("$workload", ".*"),
    ("$instance_capacity", "10"),
];

fn dashboard_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/umbra.json")
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(dashboard_path()).expect("deploy/grafana/umbra.json");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// One query of one panel.
struct Query {
    panel: String,
    expr: String,
}

fn queries(dashboard: &Value) -> Vec<Query> {
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            let title = p["title"].as_str().expect("a panel title").to_string();
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "panel {title} has no query");
            targets.into_iter().map(move |t| Query {
                panel: title.clone(),
                expr: t["expr"].as_str().expect("a PromQL expr").to_string(),
            })
        })
        .collect()
}

/// The expression with Grafana's variables replaced as [`VARIABLES`] says.
fn concrete(expr: &str) -> String {
    let mut out = expr.to_string();
    for (name, value) in VARIABLES {
        out = out.replace(name, value);
    }
    assert!(!out.contains('$'), "an unknown variable in {expr}");
    out
}

/// Metric names an expression reads: identifiers outside label matchers, ranges, strings and
/// grouping clauses that are neither functions, aggregations nor keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "atan2",
    ];
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut grouping = false;
    while i < chars.len() {
        let c = chars[i];
        let close = match c {
            '"' | '\'' | '`' => {
                i = skip_string(&chars, i);
                continue;
            }
            '{' => Some('}'),
            '[' => Some(']'),
            '(' if grouping => Some(')'),
            _ => None,
        };
        if let Some(close) = close {
            grouping = false;
            i = skip_past(&chars, i + 1, close);
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            grouping = GROUPING.contains(&word.as_str());
            let operator =
                KEYWORDS.contains(&word.as_str()) || AGGREGATIONS.contains(&word.as_str());
            if !operator && next != Some(&'(') {
                names.insert(word);
            }
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            // A number or a duration (5s, 1e3): never a name.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        if !c.is_whitespace() {
            grouping = false;
        }
        i += 1;
    }
    names
}

/// The index after the string literal starting at `i`.
fn skip_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut i = i + 1;
    while i < chars.len() && chars[i] != quote {
        i += if chars[i] == '\\' { 2 } else { 1 };
    }
    i + 1
}

/// The index after `close`, from `i` inside a `{...}`, `[...]` or `(...)`, skipping strings.
fn skip_past(chars: &[char], mut i: usize, close: char) -> usize {
    while i < chars.len() {
        match chars[i] {
            c if c == close => return i + 1,
            '"' | '\'' | '`' => i = skip_string(chars, i),
            _ => i += 1,
        }
    }
    i
}

#[test]
fn metric_names_are_read_from_promql() {
    let expr = r#"sum by (workload, le) (rate(a_total{x="y{z}", w=~"$q"}[5m])) / on(i) group_left(k) b or c_gauge offset 1m - time() > bool 0.5"#;
    assert_eq!(
        metric_names(&concrete(&expr.replace("$q", "$workload"))),
        ["a_total", "b", "c_gauge"]
            .map(String::from)
            .into_iter()
            .collect()
    );
}

/// Importable: a uid, the datasource as a variable (so neither import nor file provisioning
/// needs editing), every panel on it, unique ids, and each panel the issue asks for.
#[test]
fn the_dashboard_is_importable_and_every_query_parses() {
    let d = dashboard();
    assert_eq!(d["uid"], "umbra-overview");
    assert!(
        d["schemaVersion"].as_u64().unwrap_or(0) >= 36,
        "schemaVersion"
    );
    let variables = d["templating"]["list"].as_array().expect("variables");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no variable {name}"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    assert_eq!(variable("workload")["datasource"]["uid"], "${datasource}");
    let panels = d["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("panel id")),
            "duplicate id"
        );
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
            for target in panel["targets"].as_array().expect("targets") {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{target}");
            }
        }
    }
    let titles: BTreeSet<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
    for required in REQUIRED_PANELS {
        assert!(titles.contains(required), "no panel {required}");
    }

    // promtool parses each expression as a recording rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in queries(&d).iter().enumerate() {
        let expr = serde_json::to_string(&concrete(&q.expr)).expect("JSON string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {expr}\n"
        ));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("dashboard-rules.yml");
    std::fs::write(&file, rules).expect("write rules");
    let out = Command::new(require("promtool", "prometheus"))
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool rejects a dashboard query:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sample names on a `/metrics` page.
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect()
}

async fn get_text(url: String) -> String {
    let answer = client().get(&url).send().await;
    let answer = answer.unwrap_or_else(|e| panic!("{url}: {e}"));
    answer.text().await.expect("text")
}

/// Fast clocks (as tests/controller.rs): 1 s grid, ramp steps of 1 s, a shortage predicted
/// from the imported morning history a few seconds ahead.
const CONTROLLER: &str =
    "step = \"1s\"\nscrape_interval = \"500ms\"\nforecast_interval = \"1s\"\ntick = \"250ms\"\n";
const POLICY: &str = "[forecast]\nquantile = 0.9\nhorizon = \"60s\"\n\n\
    [sizing]\ninstance_capacity = 10.0\nbuffer = 0.2\nmin_instances = 1\nmax_instances = 4\nstartup = \"2s\"\n\
    idle = { cpu_millis = 200, memory_mib = 64 }\nfull = { cpu_millis = 1000, memory_mib = 256 }\n\n\
    [trigger]\nthreshold = 0.9\nclear_below = 0.3\nlead_time = \"20s\"\nmin_hold = \"10m\"\n\n\
    [ramp]\nstart_weight = 0.1\nstep = 0.1\ninterval = \"1s\"\nmin_requests = 2\nmax_p99_ms = 500\n\
    at_full = \"keep_warm\"\nprovision_timeout = \"30s\"\nretry_after = \"10m\"\n";

fn controlled_workload() -> String {
    format!(
        "[[workloads]]\nname = \"api\"\nprimary = [\"127.0.0.1:{}\"]\npolicy = \"test\"\n\n\
         [workloads.instance]\ncommand = [\"{{umbra}}\", \"backend\", \"--listen\", \"{{addr}}\", \"--capacity\", \"2000\", \"--name\", \"inst-{{port}}\"]\n\
         health_path = \"/healthz\"\nmanage_primary = true\n\n\
         [workloads.guard]\nwindow = \"2s\"\nmin_requests = 10\nmax_p99_ms = 400\nmax_error_rate = 0.5\ncooldown = \"5s\"\n",
        free_port()
    )
}

/// A second proxy the controller does not drive, for the events a healthy migration never
/// has: a failing shadow the guard rolls back, a low-priority workload shed under contention,
/// and a TLS listener serving a certificate.
async fn edge_proxy(good: &TestUpstream, bad: &TestUpstream, slow: &TestUpstream) -> ProxyProcess {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = TestCert::make(dir.path(), "edge", &["edge.test"], Validity::Current);
    let tls = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let body = format!(
        "[proxy.admission]\nupstream_max_in_flight = 1\n\n\
         [proxy.tls]\nlisten = [\"{tls}\"]\ncertificates = [{}]\n\n\
         [[workloads]]\nname = \"flaky\"\npath_prefix = \"/flaky\"\nprimary = [\"{}\"]\nshadow = [\"{}\"]\nshadow_weight = 0.5\n\n\
         [workloads.guard]\nwindow = \"5s\"\nmin_requests = 5\nmax_error_rate = 0.2\ncooldown = \"10m\"\n\n\
         [[workloads]]\nname = \"batch\"\npath_prefix = \"/batch\"\npriority = \"low\"\nprimary = [\"{}\"]\n",
        cert.toml(),
        good.addr(),
        bad.addr(),
        slow.addr()
    );
    ProxyProcess::start_in(dir, "", &body).await
}

/// `query_range` over `[start, now]` at 1 s: the number of series and the largest value.
async fn range(prom: &Prometheus, expr: &str, start: f64) -> (usize, f64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let req = client()
        .get(format!("http://{}/api/v1/query_range", prom.addr))
        .query(&[
            ("query", expr.to_string()),
            ("start", format!("{start:.3}")),
            ("end", format!("{now:.3}")),
            ("step", "1".to_string()),
        ]);
    let v = umbra_e2e::http::json(req, "prometheus").await;
    assert_eq!(v["status"], "success", "{expr}: {v}");
    let series = v["data"]["result"].as_array().cloned().unwrap_or_default();
    let max = series
        .iter()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p[1].as_str()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    (series.len(), max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_panel_shows_data_from_a_live_stack() {
    let began = Instant::now();
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let (good, bad, slow) = (
        TestUpstream::start("good").await,
        TestUpstream::start("bad").await,
        TestUpstream::start("slow").await,
    );
    bad.set_status(500);
    slow.set_delay(Duration::from_millis(300));
    let edge = edge_proxy(&good, &bad, &slow).await;
    let mut s = Stack::new(CONTROLLER, &controlled_workload(), POLICY);
    let prom = Prometheus::start(
        Prometheus::pick_addr(),
        &[
            ("umbra-proxy", s.admin),
            ("umbra-edge", edge.admin),
            ("umbra-controller", s.api),
        ],
    )
    .await;

    // Prometheus starts scraping a few seconds after it is ready (its discovery updates are
    // throttled): the counters must be seen at zero before the events, or a rate misses them.
    let scraping = eventually(Duration::from_secs(20), || async {
        (prom.query(r#"up{job="umbra-edge"}"#).await == [1.0]).then_some(())
    })
    .await;
    assert!(
        scraping.is_some(),
        "Prometheus never scraped the edge proxy"
    );

    // The migration: imported history predicts the morning rise, light live traffic.
    let history = s.morning_history();
    s.import("api", &history, 0.001);
    s.start_proxy().await;
    s.start_controller().await;
    s.wait_serving().await;
    let load = Load::start(s.listen, 5.0);

    // A rollback: half of /flaky goes to a shadow answering 500.
    for _ in 0..40 {
        let _answer = client().get(edge.url("/flaky")).send().await;
    }
    let rolled = eventually(Duration::from_secs(10), || async {
        (edge.workload("flaky").await["shadow_weight"] == 0.0).then_some(())
    })
    .await;
    assert!(rolled.is_some(), "the guard never rolled flaky back");
    // Shedding: ten low-priority requests at once on a budget of one.
    let burst: Vec<_> = (0..10)
        .map(|_| tokio::spawn(client().get(edge.url("/batch")).send()))
        .collect();
    let mut shed = 0;
    for request in burst {
        if let Ok(Ok(answer)) = request.await {
            shed += usize::from(answer.status() == 503);
        }
    }
    let counted = edge.metrics().await;
    let counted = counted
        .lines()
        .find(|l| l.starts_with(r#"umbra_shed_requests_total{priority="low",workload="batch"}"#))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(
        shed > 0 && counted.is_some_and(|c| c > 0),
        "{shed} of 10 answered 503, the proxy counted {counted:?} shed"
    );

    let migrated = eventually(Duration::from_secs(90), || async {
        (s.status("api").await["migration_state"] == "migrated").then_some(())
    })
    .await;
    assert!(migrated.is_some(), "api never migrated");
    // Scrapes of the final state (1 s interval) and a full rate window after it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (ok, failed) = load.stop().await;
    assert!(ok > 0, "traffic: {ok} ok, {failed} failed");

    // Names: every metric a query reads is on a live /metrics page.
    let mut live = exported(&s.controller_metrics().await);
    live.extend(exported(
        &get_text(format!("http://{}/metrics", s.admin)).await,
    ));
    live.extend(exported(&edge.metrics().await));
    let d = dashboard();
    let queries = queries(&d);
    let mut read = BTreeSet::new();
    for q in &queries {
        read.extend(metric_names(&concrete(&q.expr)));
    }
    read.insert("umbra_requests_total".to_string()); // the $workload variable's label_values()
    let unknown: Vec<_> = read.difference(&live).collect();
    assert!(
        unknown.is_empty(),
        "the dashboard reads metrics no binary exports: {unknown:?}"
    );

    // Data: each query over the test's time range, as the panel would draw it.
    let mut missing = Vec::new();
    for q in &queries {
        let expr = concrete(&q.expr);
        let (series, max) = range(&prom, &expr, start).await;
        eprintln!("{:40} {series} series, max {max:.3}: {expr}", q.panel);
        let positive = POSITIVE_PANELS.contains(&q.panel.as_str());
        if series == 0 || (positive && max <= 0.0) {
            missing.push(format!("{}: {expr} ({series} series, max {max})", q.panel));
        }
    }
    assert!(
        missing.is_empty(),
        "panels without data:\n{}",
        missing.join("\n")
    );
    eprintln!("dashboard test took {:?}", began.elapsed());
}
