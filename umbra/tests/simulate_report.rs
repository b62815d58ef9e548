//! `umbra simulate --report`: the HTML page renders in a real browser (headless Chromium)
//! with its chart and table in the DOM, and needs nothing from the network.

#[path = "../../controller/tests/browser/mod.rs"]
mod browser;
#[path = "simulate_support/mod.rs"]
mod support;

use browser::{chromium, dump_dom};
use support::{umbra, write_slice};

#[test]
fn the_report_renders_its_chart_and_table_in_a_browser() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let trace = write_slice(dir.path(), "elb_request_count_8c0756.csv", 720);
    let page = dir.path().join("report.html");
    let out = umbra(&[
        "simulate",
        "--trace",
        &trace.display().to_string(),
        "--scale",
        "10",
        "--model",
        "snaive",
        "--refit-every",
        "30m",
        "--report",
        &page.display().to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap_or_else(|e| panic!("report: {e}"));
    // Self-contained: no script, stylesheet or image fetched from anywhere.
    for external in ["<script", "src=", "href=\"http", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the report references `{external}`"
        );
    }
    let url = format!("file://{}", page.display());
    let (dom, _) = dump_dom(&browser, &url, &dir.path().join("profile"));
    assert!(dom.contains("<svg id=\"timeline\""), "no chart in the DOM");
    for series in [
        "id=\"demand\"",
        "id=\"forecast-upper\"",
        "id=\"capacity-predictive\"",
        "id=\"capacity-reactive\"",
        "id=\"events\"",
        "id=\"shortages\"",
    ] {
        assert!(dom.contains(series), "{series} missing from the chart");
    }
    assert!(dom.matches("<polyline").count() >= 4, "too few lines drawn");
    assert!(dom.contains("<table id=\"summary\""), "no results table");
    for row in [
        "under-provisioned minutes",
        "instance-hours",
        "scaling actions",
    ] {
        assert!(dom.contains(row), "`{row}` missing from the table");
    }
}
