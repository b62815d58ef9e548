//! The demo as one self-contained HTML page: the story, a chart of the live run, the clients'
//! numbers, then `umbra simulate`'s chart and table for the same slice of the trace.

use std::fmt::Write as _;

use super::compare::Comparison;
use super::narrative::Line;
use super::observe::Observations;
use super::plan::{DemoPlan, trace_label};
use super::stats::{Bucket, PhaseStats};
use simulate::report::{render_svg, render_table};

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
/// Heights of the rate panel and the latency panel.
const RATE_H: f64 = 260.0;
const LAT_H: f64 = 120.0;
const GAP: f64 = 40.0;
const TOP: f64 = 20.0;

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1250px}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 10px;\
text-align:right}th:first-child,td:first-child{text-align:left}\
.settings{color:#555;font-size:90%}svg text{font-size:11px;fill:#333}\
ol.story li{margin:2px 0}code{background:#f3f3f3;padding:1px 4px}";

/// What the page shows.
pub struct Page<'a> {
    /// The trace file's name.
    pub title: &'a str,
    /// The plan.
    pub plan: &'a DemoPlan,
    /// Lines describing the run's settings.
    pub settings: &'a [String],
    /// The story.
    pub story: &'a [Line],
    /// Per-phase client numbers and the whole run.
    pub phases: &'a [PhaseStats],
    /// See `phases`.
    pub all: Option<&'a PhaseStats>,
    /// Per-second client numbers.
    pub buckets: &'a [Bucket],
    /// Observer polls (weight, forecast) and the fault.
    pub seen: &'a Observations,
    /// The simulated comparison.
    pub comparison: &'a Comparison,
}

/// The page.
pub fn render(p: &Page<'_>) -> String {
    let mut html = String::new();
    let title = escape(p.title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>umbra demo: {title}</title><style>{STYLE}</style></head><body>\n\
         <h1>umbra demo: {title}</h1>\n<ul class=\"settings\">"
    );
    for line in p.settings {
        let _ = write!(html, "<li>{}</li>", escape(line));
    }
    html.push_str("</ul>\n<h2>What happened</h2>\n<ol class=\"story\">");
    for l in p.story {
        let _ = write!(
            html,
            "<li><b>+{:.1} s</b> [{}] {}</li>",
            l.at_ms as f64 / 1000.0,
            escape(&l.trace_time),
            escape(&l.text)
        );
    }
    html.push_str("</ol>\n<h2>What clients saw</h2>\n");
    html.push_str(&live_svg(p));
    html.push_str(&phase_table(p.phases, p.all));
    html.push_str(
        "<h2>The same trace, simulated: Umbra vs the Kubernetes HPA</h2>\n<ul class=\"settings\">",
    );
    for line in &p.comparison.lines {
        let _ = write!(html, "<li>{}</li>", escape(line));
    }
    let _ = writeln!(
        html,
        "<li>the same table: <code>{}</code></li></ul>",
        escape(&p.comparison.command)
    );
    html.push_str(&render_svg(&p.comparison.outcome));
    html.push_str(&render_table(
        &p.comparison.outcome.predictive,
        &p.comparison.outcome.reactive,
    ));
    html.push_str("</body></html>\n");
    html
}

fn phase_table(phases: &[PhaseStats], all: Option<&PhaseStats>) -> String {
    let mut html = String::from(
        "<table id=\"phases\"><thead><tr><th>phase</th><th>wall s</th><th>requests</th>\
         <th>failed</th><th>p50 ms</th><th>p99 ms</th><th>on shadow</th></tr></thead><tbody>\n",
    );
    for s in phases.iter().chain(all) {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{:.1}-{:.1}</td><td>{}</td><td>{}</td><td>{:.1}</td>\
             <td>{:.1}</td><td>{:.0}%</td></tr>",
            s.label,
            f64::from(s.from_ms) / 1000.0,
            f64::from(s.to_ms) / 1000.0,
            s.requests,
            s.failed,
            s.p50_ms,
            s.p99_ms,
            s.on_shadow * 100.0
        );
    }
    html.push_str("</tbody></table>\n");
    html
}

/// Requests/s sent and served by the shadow, primary capacity and the forecast peak above;
/// p99 latency below; the fault and rollback as vertical marks.
fn live_svg(p: &Page<'_>) -> String {
    let height = TOP + RATE_H + GAP + LAT_H + 50.0;
    let mut svg = format!(
        "<svg id=\"live\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"live requests, capacity and latency over the demo\">\n"
    );
    let duration_ms = (p.plan.wall_duration().as_millis() as f64).max(1.0);
    let x = |ms: f64| LEFT + (WIDTH - LEFT - RIGHT) * (ms / duration_ms).clamp(0.0, 1.0);
    let capacity = p.plan.primary_capacity();
    let rate_max = p
        .buckets
        .iter()
        .map(|b| b.sent_rps)
        .chain(p.seen.ticks.iter().filter_map(|t| t.forecast_peak_rps))
        .fold(capacity * 1.2, f64::max);
    let y_rate = |v: f64| TOP + RATE_H * (1.0 - (v / rate_max).clamp(0.0, 1.0));
    let lat_top = TOP + RATE_H + GAP;
    let lat_max = p
        .buckets
        .iter()
        .map(|b| b.p99_ms)
        .fold(100.0, f64::max)
        .min(2_000.0);
    let y_lat = |v: f64| lat_top + LAT_H * (1.0 - (v / lat_max).clamp(0.0, 1.0));

    // Axes and labels.
    for (v, label) in [(0.0, "0"), (capacity, "primary capacity"), (rate_max, "")] {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0} req/s</text>{}",
            LEFT - 6.0,
            y_rate(v) + 4.0,
            v,
            if label.is_empty() {
                String::new()
            } else {
                format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
                    LEFT + 4.0,
                    y_rate(v) - 4.0
                )
            }
        );
    }
    let _ = writeln!(
        svg,
        "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#c00\" \
         stroke-dasharray=\"6 4\"/>",
        WIDTH - RIGHT,
        y = y_rate(capacity)
    );
    for (v, label) in [(0.0, "0 ms"), (lat_max, "")] {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y_lat(v) + 4.0,
            if label.is_empty() {
                format!("{v:.0} ms")
            } else {
                label.to_string()
            }
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{LEFT}\" y=\"{:.1}\">p99 latency per second</text>",
        lat_top - 6.0
    );
    let ticks = 8;
    for i in 0..=ticks {
        let ms = duration_ms * f64::from(i) / f64::from(ticks);
        let label = trace_label(p.plan.trace_at(std::time::Duration::from_millis(ms as u64)));
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">+{:.0}s {label}</text>",
            x(ms),
            lat_top + LAT_H + 18.0,
            ms / 1000.0
        );
    }

    // Shadow-served area, sent line, forecast peak, latency line.
    if let (Some(first), Some(last)) = (p.buckets.first(), p.buckets.last()) {
        let mut area = format!("M{:.1},{:.1}", x(f64::from(first.at_ms)), y_rate(0.0));
        for b in p.buckets {
            let _ = write!(
                area,
                " L{:.1},{:.1}",
                x(f64::from(b.at_ms)),
                y_rate(b.sent_rps * b.on_shadow)
            );
        }
        let _ = write!(
            area,
            " L{:.1},{:.1} Z",
            x(f64::from(last.at_ms)),
            y_rate(0.0)
        );
        let _ = writeln!(
            svg,
            "<path d=\"{area}\" fill=\"#7b5ea7\" fill-opacity=\"0.35\" stroke=\"none\"/>"
        );
        let sent = polyline(
            p.buckets
                .iter()
                .map(|b| (x(f64::from(b.at_ms)), y_rate(b.sent_rps))),
        );
        let _ = writeln!(
            svg,
            "<polyline points=\"{sent}\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"1.5\"/>"
        );
        let lat = polyline(
            p.buckets
                .iter()
                .map(|b| (x(f64::from(b.at_ms)), y_lat(b.p99_ms))),
        );
        let _ = writeln!(
            svg,
            "<polyline points=\"{lat}\" fill=\"none\" stroke=\"#d2691e\" stroke-width=\"1.5\"/>"
        );
    }
    let forecast = polyline(
        p.seen
            .ticks
            .iter()
            .filter_map(|t| t.forecast_peak_rps.map(|v| (x(t.at_ms as f64), y_rate(v)))),
    );
    let _ = writeln!(
        svg,
        "<polyline points=\"{forecast}\" fill=\"none\" stroke=\"#2e8b57\" \
         stroke-dasharray=\"2 3\" stroke-width=\"1.2\"/>"
    );
    if let Some(f) = &p.seen.fault {
        for (at, label, colour) in [
            (Some(f.injected_at_ms), "fault", "#c00"),
            (f.proxy_rollback_at_ms, "rollback", "#2e8b57"),
        ] {
            if let Some(at) = at {
                let _ = writeln!(
                    svg,
                    "<line x1=\"{v:.1}\" x2=\"{v:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"{colour}\"/>\
                     <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">{label}</text>",
                    lat_top + LAT_H,
                    x(at as f64) + 3.0,
                    TOP + 10.0 + if label == "fault" { 0.0 } else { 12.0 },
                    v = x(at as f64)
                );
            }
        }
    }
    let legend = [
        ("#1f5fa8", "requests/s sent"),
        ("#7b5ea7", "served by the shadow pool"),
        (
            "#2e8b57",
            "controller's forecast peak (q0.9, over its horizon)",
        ),
        ("#c00", "primary capacity"),
        ("#d2691e", "p99 latency"),
    ];
    let mut lx = LEFT;
    for (colour, label) in legend {
        let _ = write!(
            svg,
            "<rect x=\"{lx:.1}\" y=\"{:.1}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{label}</text>",
            height - 10.0,
            lx + 18.0,
            height - 5.0
        );
        lx += 30.0 + label.len() as f64 * 6.0;
    }
    svg.push_str("</svg>\n");
    svg
}

fn polyline(points: impl Iterator<Item = (f64, f64)>) -> String {
    points
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
