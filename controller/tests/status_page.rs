//! The controller's status page at 1,000 workloads, in headless Chromium: the overview is usable
//! within a second, lists the first 200 until asked for all, the filter narrows the rows over
//! all of them, and a workload's detail page opens.

mod browser;

use std::sync::Arc;
use std::time::{Duration, Instant};

use browser::{chromium, dump_dom};
use controller::api::{ApiState, router};
use controller::board::{Board, PublishedForecast, WorkloadStatus};
use controller::history::scrape::PoolRate;
use controller::metrics::ControllerMetrics;
use controller::store::{Resource, SeriesKey, Store};
use policies::Phase;

const WORKLOADS: usize = 1000;

fn name(i: usize) -> String {
    format!("w-{i:04}")
}

/// A controller API over a board and a store filled as 1,000 busy workloads would fill them.
fn state(now_ms: i64) -> ApiState {
    let board = Arc::new(Board::default());
    let store = Arc::new(Store::in_memory().expect("store"));
    let mut rates = Vec::new();
    for i in 0..WORKLOADS {
        let (phase, weight) = match i % 100 {
            7 => ("ramping", 0.3),
            13 => ("rolled_back", 0.0),
            _ => ("idle", 0.0),
        };
        board.set_status(
            &name(i),
            WorkloadStatus {
                migration_state: phase.into(),
                shadow_weight: weight,
                shadow_instances: vec!["127.0.0.1:20001".into()],
                planned_instances: 2,
                shadow_warm: false,
                primary_capacity: 100.0,
                last_reason: format!("steady at {i} rps"),
                would_do: Vec::new(),
            },
        );
        rates.push(PoolRate {
            workload: name(i),
            pool: "primary".into(),
            rps: i as f64,
            p99_ms: Some(12.0),
        });
        let horizon = 360;
        board.publish_forecast(PublishedForecast {
            workload: name(i),
            pool: "all".into(),
            resource: "rps".into(),
            start_ms: now_ms + 10_000,
            step_ms: 10_000,
            point: vec![i as f64; horizon],
            lower: vec![i as f64 * 0.8; horizon],
            upper: vec![i as f64 * 1.2; horizon],
            level: 0.8,
            model: "mstl".into(),
            signals_used: if i % 2 == 0 {
                vec!["calendar".into()]
            } else {
                Vec::new()
            },
            mase: Some(0.7),
            members: vec!["mstl 0.61".into(), "ets 0.39".into()],
            interval_coverage: Some(0.71),
            interval_scale: 1.2,
            rise: 0.0,
            made_at_ms: now_ms,
        });
    }
    board.observe(&rates, now_ms);
    // An hour of history for the workload whose page the test opens.
    let key = SeriesKey::new(&name(42), "all", Resource::Rps);
    let samples: Vec<_> = (0..360)
        .map(|k| {
            (
                key.clone(),
                now_ms - 3_600_000 + k * 10_000,
                40.0 + (k % 30) as f64,
            )
        })
        .collect();
    store.append(&samples).expect("samples");
    let ramp = Phase::Ramping {
        weight: 0.1,
        step_since_ms: now_ms as u64,
    };
    store
        .transition(
            &name(42),
            &Phase::Idle,
            &ramp,
            "forecast peak above capacity",
            now_ms,
        )
        .expect("transition");
    ApiState {
        board,
        store,
        metrics: Arc::new(ControllerMetrics::new().expect("metrics")),
        token: None,
        mode: config::Mode::Act,
        workloads: (0..WORKLOADS).map(name).collect(),
    }
}

/// Serves the API on an ephemeral port from a runtime of its own; the browser runs beside it.
fn serve(state: ApiState) -> (std::net::SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(Arc::new(state));
    rt.spawn(async move { axum::serve(listener, app).await });
    (addr, rt)
}

fn data_ready_ms(dom: &str) -> u64 {
    let at = dom
        .find("data-ready-ms=\"")
        .unwrap_or_else(|| panic!("the page script did not run: no data-ready-ms"));
    let rest = &dom[at + "data-ready-ms=\"".len()..];
    rest[..rest.find('"').expect("closing quote")]
        .parse()
        .expect("a number")
}

#[test]
fn the_overview_of_1000_workloads_loads_within_a_second_filters_and_opens_a_detail() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("tempdir");
    let now_ms = controller::clock::unix_ms();
    let (addr, rt) = serve(state(now_ms));

    // The server's part: the whole overview, rendered.
    let started = Instant::now();
    let body = rt
        .block_on(async { reqwest::get(format!("http://{addr}/")).await?.text().await })
        .expect("overview");
    let server_time = started.elapsed();
    assert_eq!(body.matches("<tr data-k=").count(), WORKLOADS);
    assert!(
        server_time < Duration::from_millis(500),
        "the overview took {server_time:?} to render"
    );
    // Urgent phases first: the rolled-back workloads head the table.
    let first_row = &body[body.find("<tr data-k=").expect("a row")..];
    assert!(first_row.starts_with("<tr data-k=\"w-0013 rolled_back"));

    // The browser's part: from navigation to a filtered, usable page. One navigation first, so
    // that what is timed is the page and not the first start of Chromium from a cold disk
    // cache (the first run after a machine restart read 1,298 ms; reruns passed).
    let _ = dump_dom(
        &browser,
        &format!("http://{addr}/?q=w-0001"),
        &dir.path().join("warm"),
    );
    let (dom, wall) = dump_dom(
        &browser,
        &format!("http://{addr}/?q=w-0042"),
        &dir.path().join("p1"),
    );
    let ready = data_ready_ms(&dom);
    assert!(ready < 1000, "filtered: usable after {ready} ms");
    let rows = dom.matches("<tr data-k=").count();
    assert_eq!(rows, WORKLOADS);
    assert_eq!(visible_rows(&dom), vec!["w-0042"]);
    assert!(dom.contains("<span id=\"shown\">1</span>"));

    // Unfiltered: usable as fast, the first 200 listed (urgent first) and a way to list all.
    let (dom, _) = dump_dom(&browser, &format!("http://{addr}/"), &dir.path().join("p0"));
    let unfiltered_ready = data_ready_ms(&dom);
    assert!(
        unfiltered_ready < 1000,
        "unfiltered: usable after {unfiltered_ready} ms"
    );
    let visible = visible_rows(&dom);
    assert_eq!(visible.len(), 200);
    assert_eq!(visible[0], "w-0013", "urgent phases first");
    assert!(dom.contains("<span id=\"shown\">1000</span>"));
    assert!(
        dom.contains("<span id=\"more\" data-listed=\"200\">"),
        "no list-all offer"
    );
    let (dom, _) = dump_dom(
        &browser,
        &format!("http://{addr}/?all=true"),
        &dir.path().join("p4"),
    );
    assert_eq!(visible_rows(&dom).len(), WORKLOADS);
    assert!(dom.contains("<span id=\"more\" data-listed=\"200\" hidden=\"\">"));

    // Filtering by phase: one workload in a hundred is ramping.
    let (dom, _) = dump_dom(
        &browser,
        &format!("http://{addr}/?q=ramping"),
        &dir.path().join("p2"),
    );
    assert_eq!(visible_rows(&dom).len(), WORKLOADS / 100);

    // A detail opens with its figures, chart and decisions.
    let (dom, _) = dump_dom(
        &browser,
        &format!("http://{addr}/workloads/w-0042"),
        &dir.path().join("p3"),
    );
    assert!(dom.contains("<h1 id=\"workload\">w-0042</h1>"));
    assert!(dom.contains("<svg"), "no chart");
    assert!(dom.contains("<polyline"), "no observed line in the chart");
    assert!(dom.contains("mstl 0.61, ets 0.39"), "no combination shown");
    assert!(
        dom.contains("80% band: covered 71% of each backtest fold from the others; widened ×1.20"),
        "no interval check shown"
    );
    assert!(
        dom.contains("forecast peak above capacity"),
        "no decision listed"
    );
    eprintln!(
        "1,000 workloads: server {server_time:?}, browser ready at {ready} ms filtered, \
         {unfiltered_ready} ms unfiltered (wall {wall:?} with start-up)"
    );

    let missing = rt
        .block_on(async { reqwest::get(format!("http://{addr}/workloads/nope")).await })
        .expect("request");
    assert_eq!(missing.status(), 404);
}

/// Names of the rows the browser shows (those without the `hidden` attribute).
fn visible_rows(dom: &str) -> Vec<&str> {
    dom.split("<tr data-k=\"")
        .skip(1)
        .filter(|row| {
            let tag_end = row.find('>').unwrap_or(row.len());
            !row[..tag_end].contains("hidden")
        })
        .map(|row| row.split(' ').next().unwrap_or(""))
        .collect()
}
