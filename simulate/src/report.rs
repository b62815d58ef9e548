//! The replay as one self-contained HTML page: an inline SVG timeline (demand, forecast,
//! both strategies' ready capacity, migration markers) and the results table.

use std::fmt::Write;

use chrono::DateTime;

use super::predictive::Decision;
use super::replay::{Outcome, TimelinePoint};
use super::summary::{Summary, four_numbers};

const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 500.0;
const LEFT: f64 = 110.0;
const RIGHT: f64 = 20.0;
/// Above the plot: four lanes (migrations, rollbacks, shortage of each strategy).
const LANE: f64 = 12.0;
const TOP: f64 = 4.0 * LANE + 16.0;
const BOTTOM: f64 = 50.0;
/// Points drawn at most; longer timelines are bucketed (max demand, min capacity).
const MAX_COLUMNS: usize = 1200;
/// Decisions listed in the page's log at most.
const MAX_LOGGED: usize = 500;

/// Labels for the page.
#[derive(Clone, Debug)]
pub struct ReportInfo {
    /// Page title, e.g. the trace file's name.
    pub title: String,
    /// Lines describing the settings (scale, capacity, primary size, ...).
    pub settings: Vec<String>,
}

/// The page.
pub fn render_html(outcome: &Outcome, info: &ReportInfo) -> String {
    let mut html = String::new();
    let title = escape(&info.title);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>umbra simulate: {title}</title><style>{STYLE}</style></head><body>\n\
         <h1>umbra simulate: {title}</h1>\n<ul class=\"settings\">"
    );
    for line in &info.settings {
        let _ = write!(html, "<li>{}</li>", escape(line));
    }
    html.push_str("</ul>\n");
    html.push_str(&render_svg(outcome));
    html.push_str(&render_table(&outcome.predictive, &outcome.reactive));
    html.push_str(&render_episodes(outcome));
    html.push_str(&render_log(&outcome.decisions));
    html.push_str("</body></html>\n");
    html
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 10px;\
text-align:right}th:first-child,td:first-child{text-align:left}\
.settings{color:#555;font-size:90%}svg text{font-size:11px;fill:#333}";

/// The timeline chart, `<svg id="timeline">`.
pub fn render_svg(outcome: &Outcome) -> String {
    let points = downsample(&outcome.timeline, MAX_COLUMNS);
    let mut svg = format!(
        "<svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" \
         height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"demand, forecast and ready capacity over time\">\n"
    );
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        svg.push_str("<text x=\"20\" y=\"40\">empty trace</text></svg>\n");
        return svg;
    };
    let (t0, t1) = (first.time, last.time.max(first.time + 1));
    let y_max = points
        .iter()
        .flat_map(|p| {
            [
                p.demand,
                p.upper.unwrap_or(0.0),
                p.predictive_capacity,
                p.reactive_capacity,
            ]
        })
        .filter(|v| v.is_finite())
        .fold(1e-9, f64::max)
        * 1.05;
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| HEIGHT - BOTTOM - v / y_max * (HEIGHT - TOP - BOTTOM);

    // Warm-up: simulated but not counted.
    if outcome.counted_from > t0 {
        let _ = writeln!(
            svg,
            "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#eee\">\
             <title>warm-up (not counted)</title></rect>",
            x(outcome.counted_from.min(t1)) - LEFT,
            HEIGHT - TOP - BOTTOM
        );
    }
    axes(&mut svg, t0, t1, y_max, &x, &y);
    type Value = Box<dyn Fn(&TimelinePoint) -> Option<f64>>;
    // Drawn in this order: demand last, on top.
    let series: [(&str, &str, &str, Value); 4] = [
        (
            "capacity-reactive",
            "#c0392b",
            "",
            Box::new(|p| Some(p.reactive_capacity)),
        ),
        (
            "capacity-predictive",
            "#1f6fd1",
            "",
            Box::new(|p| Some(p.predictive_capacity)),
        ),
        ("forecast-upper", "#e08a00", "4 3", Box::new(|p| p.upper)),
        ("demand", "#222", "", Box::new(|p| Some(p.demand))),
    ];
    for (id, colour, dash, value) in &series {
        let mut segment = String::new();
        let mut segments = Vec::new();
        for p in &points {
            match value(p) {
                Some(v) if v.is_finite() => {
                    let _ = write!(segment, "{:.1},{:.1} ", x(p.time), y(v));
                }
                _ if !segment.is_empty() => segments.push(std::mem::take(&mut segment)),
                _ => {}
            }
        }
        if !segment.is_empty() {
            segments.push(segment);
        }
        let _ = write!(svg, "<g id=\"{id}\">");
        for s in segments {
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.3\" \
                 stroke-dasharray=\"{dash}\" points=\"{}\"/>",
                s.trim_end()
            );
        }
        svg.push_str("</g>\n");
    }
    lanes(&mut svg, &outcome.decisions, &points, t0, t1, &x);
    legend(&mut svg);
    svg.push_str("</svg>\n");
    svg
}

fn axes(
    svg: &mut String,
    t0: i64,
    t1: i64,
    y_max: f64,
    x: &dyn Fn(i64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    let (x0, x1, y0) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM);
    let _ = writeln!(
        svg,
        "<g id=\"axes\" stroke=\"#999\"><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x1}\" y2=\"{y0}\"/>\
         <line x1=\"{x0}\" y1=\"{TOP}\" x2=\"{x0}\" y2=\"{y0}\"/></g>"
    );
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let _ = writeln!(
            svg,
            "<line x1=\"{x0}\" y1=\"{yy:.1}\" x2=\"{x1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x0 - 6.0,
            y(v) + 4.0,
            compact(v),
            yy = y(v)
        );
    }
    for i in 0..=6 {
        let t = t0 + (t1 - t0) * i / 6;
        let label = DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| t.to_string());
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            x(t),
            y0 + 18.0
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" \
         text-anchor=\"middle\">requests/s</text>",
        (TOP + y0) / 2.0,
        (TOP + y0) / 2.0
    );
}

/// Event and shortage lanes above the plot: one tick per migration start and rollback, and
/// a bar where each strategy was short (darker = short for more of that stretch).
fn lanes(
    svg: &mut String,
    decisions: &[Decision],
    points: &[TimelinePoint],
    t0: i64,
    t1: i64,
    x: &dyn Fn(i64) -> f64,
) {
    let labels = ["migration start", "rollback", "Umbra short", "HPA short"];
    for (i, label) in labels.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LEFT - 6.0,
            lane_y(i) + LANE - 3.0
        );
    }
    svg.push_str("<g id=\"events\">");
    for d in decisions.iter().filter(|d| d.time >= t0 && d.time <= t1) {
        let (lane, colour) = match d.to {
            "provisioning" => (0, "#2e9e44"),
            "rolled_back" | "proxy_rollback" => (1, "#d62020"),
            _ => continue,
        };
        let xx = x(d.time);
        let _ = write!(
            svg,
            "<line class=\"event {to}\" x1=\"{xx:.1}\" y1=\"{:.1}\" x2=\"{xx:.1}\" \
             y2=\"{:.1}\" stroke=\"{colour}\"><title>{} {} -&gt; {}: {}</title></line>",
            lane_y(lane) + 1.0,
            lane_y(lane) + LANE - 1.0,
            time_label(d.time),
            d.from,
            d.to,
            escape(&d.reason),
            to = d.to
        );
    }
    svg.push_str("</g>\n<g id=\"shortages\">");
    for (i, p) in points.iter().enumerate() {
        let next = points.get(i + 1).map_or(t1, |n| n.time);
        let span = (next - p.time).max(1) as f64;
        for (lane, short_s, colour) in [
            (2, p.predictive_short_s, "#1f6fd1"),
            (3, p.reactive_short_s, "#c0392b"),
        ] {
            if short_s <= 0 {
                continue;
            }
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
                 fill=\"{colour}\" fill-opacity=\"{:.2}\"/>",
                x(p.time),
                lane_y(lane) + 1.0,
                (x(next) - x(p.time)).max(1.0),
                LANE - 2.0,
                (0.25 + 0.75 * short_s as f64 / span).min(1.0)
            );
        }
    }
    svg.push_str("</g>\n");
}

fn lane_y(lane: usize) -> f64 {
    4.0 + lane as f64 * LANE
}

fn legend(svg: &mut String) {
    let items = [
        ("#222", "demand"),
        ("#e08a00", "forecast (upper quantile, as known then)"),
        ("#1f6fd1", "ready capacity: Umbra (primary + shadow)"),
        ("#c0392b", "ready capacity: HPA"),
    ];
    let mut x = LEFT;
    let y = HEIGHT - 14.0;
    svg.push_str("<g id=\"legend\">");
    for (colour, label) in items {
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"14\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{y:.1}\">{label}</text>",
            y - 5.0,
            x + 18.0
        );
        x += 24.0 + label.len() as f64 * 6.2;
    }
    svg.push_str("</g>\n");
}

/// The results table, `<table id="summary">`.
pub fn render_table(predictive: &Summary, reactive: &Summary) -> String {
    let extra = [
        (
            "peak instances",
            predictive.peak_instances,
            reactive.peak_instances,
            1,
        ),
        ("requests", predictive.requests, reactive.requests, 0),
    ];
    let rows = four_numbers(predictive, reactive).into_iter().chain(extra);
    let mut html = String::from(
        "<table id=\"summary\"><thead><tr><th></th><th>predictive (Umbra)</th>\
         <th>reactive (HPA)</th><th>ratio</th></tr></thead><tbody>\n",
    );
    for (name, p, r, decimals) in rows {
        let _ = writeln!(
            html,
            "<tr><td>{name}</td><td>{p:.decimals$}</td><td>{r:.decimals$}</td><td>{}</td></tr>",
            ratio(p, r)
        );
    }
    let count = |v: Option<u64>| v.unwrap_or(0);
    let _ = writeln!(
        html,
        "<tr><td>migrations (attempts) / rollbacks</td><td>{} ({}) / {}</td><td></td><td></td>\
         </tr></tbody></table>",
        count(predictive.migrations),
        count(predictive.migration_attempts),
        count(predictive.rollbacks)
    );
    html
}

/// The predictive strategy's worst shortages, `<table id="episodes">`, and perfect
/// foresight's cost beside both strategies'.
fn render_episodes(outcome: &Outcome) -> String {
    let oracle = outcome.oracle.instance_hours;
    let mut html = format!(
        "<p>Perfect foresight (exact demand, each instance started one start-up ahead): \
         {oracle:.1} instance-hours; predictive {} of it, HPA {}.</p>\n",
        ratio(outcome.predictive.instance_hours, oracle),
        ratio(outcome.reactive.instance_hours, oracle)
    );
    if outcome.episodes.is_empty() {
        html.push_str("<p>The predictive strategy was never short.</p>\n");
        return html;
    }
    let _ = write!(
        html,
        "<h2>Worst shortages ({} of {} episodes)</h2><table id=\"episodes\"><thead><tr>\
         <th>began</th><th>minutes</th><th>unserved requests</th><th>demand / served at worst \
         (rps)</th><th>forecast then (rps)</th><th>phase</th><th>why</th></tr></thead><tbody>\n",
        outcome.episodes.len(),
        outcome.episode_count
    );
    for e in &outcome.episodes {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{:.2}</td><td>{:.0}</td><td>{:.0} / {:.0}</td><td>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            time_label(e.start),
            e.minutes,
            e.unserved_requests,
            e.peak_demand,
            e.served_at_peak,
            e.forecast_at_peak
                .map_or("-".to_string(), |f| format!("{f:.0}")),
            e.phase,
            escape(&e.why)
        );
    }
    html.push_str("</tbody></table>\n");
    html
}

fn render_log(decisions: &[Decision]) -> String {
    let mut html = format!(
        "<details><summary>{} decisions (first {MAX_LOGGED} listed)</summary>\
         <table id=\"decisions\"><thead><tr><th>time</th><th>from</th><th>to</th>\
         <th>reason</th></tr></thead><tbody>\n",
        decisions.len()
    );
    for d in decisions.iter().take(MAX_LOGGED) {
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            time_label(d.time),
            d.from,
            d.to,
            escape(&d.reason)
        );
    }
    html.push_str("</tbody></table></details>\n");
    html
}

/// "ratio" column: predictive / reactive, "-" when the baseline is 0.
pub fn ratio(predictive: f64, reactive: f64) -> String {
    if reactive > 0.0 {
        format!("{:.2}", predictive / reactive)
    } else if predictive > 0.0 {
        "inf".to_string()
    } else {
        "-".to_string()
    }
}

/// At most `columns` points: consecutive points merged (max demand and forecast, min
/// capacity, so neither a spike nor a shortage disappears from the chart).
fn downsample(points: &[TimelinePoint], columns: usize) -> Vec<TimelinePoint> {
    let per = points.len().div_ceil(columns.max(1)).max(1);
    points
        .chunks(per)
        .filter_map(|chunk| {
            let mut merged = chunk.first()?.clone();
            for p in &chunk[1..] {
                merged.demand = merged.demand.max(p.demand);
                merged.upper = match (merged.upper, p.upper) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
                merged.predictive_capacity = merged.predictive_capacity.min(p.predictive_capacity);
                merged.reactive_capacity = merged.reactive_capacity.min(p.reactive_capacity);
                merged.predictive_short_s += p.predictive_short_s;
                merged.reactive_short_s += p.reactive_short_s;
            }
            Some(merged)
        })
        .collect()
}

fn compact(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn time_label(t: i64) -> String {
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| t.to_string())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(time: i64, demand: f64, cap: f64) -> TimelinePoint {
        TimelinePoint {
            time,
            demand,
            upper: None,
            predictive_capacity: cap,
            reactive_capacity: cap,
            predictive_short_s: 0,
            reactive_short_s: 0,
        }
    }

    #[test]
    fn downsampling_keeps_spikes_and_shortfalls() {
        let points: Vec<TimelinePoint> = (0..10)
            .map(|i| {
                point(
                    i * 60,
                    if i == 3 { 99.0 } else { 1.0 },
                    if i == 7 { 0.0 } else { 5.0 },
                )
            })
            .collect();
        let d = downsample(&points, 3);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].demand, 99.0);
        assert_eq!(d[1].predictive_capacity, 0.0);
    }

    #[test]
    fn text_is_escaped_and_ratios_never_divide_by_zero() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(ratio(1.0, 4.0), "0.25");
        assert_eq!(ratio(0.0, 0.0), "-");
        assert_eq!(ratio(2.0, 0.0), "inf");
    }
}
