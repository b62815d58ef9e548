//! The status page: one self-contained HTML page (no CDN, no JS) that refreshes itself.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;

use super::ApiState;
use super::status::report;
use crate::store::{Resource, SeriesKey};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"))
}

/// A sparkline of the last hour of demand, the forecast band and primary capacity.
fn chart(state: &ApiState, workload: &str, capacity: f64) -> String {
    let now = crate::clock::unix_ms();
    let history = state
        .store
        .samples(
            &SeriesKey::new(workload, "all", Resource::Rps),
            now - 3_600_000,
            now + 1,
        )
        .unwrap_or_default();
    let f = state.board.demand_forecast(workload);
    let mut points: Vec<(i64, f64)> = history.clone();
    let band: Vec<(i64, f64, f64)> = f
        .as_ref()
        .map(|f| {
            (0..f.upper.len())
                .map(|i| (f.start_ms + i as i64 * f.step_ms, f.lower[i], f.upper[i]))
                .filter(|(_, l, u)| l.is_finite() && u.is_finite())
                .collect()
        })
        .unwrap_or_default();
    points.extend(band.iter().map(|(t, _, u)| (*t, *u)));
    if points.is_empty() {
        return "<p class=muted>no history yet</p>".to_string();
    }
    let (w, h) = (640.0, 140.0);
    let t0 = points.iter().map(|p| p.0).min().unwrap_or(0) as f64;
    let t1 = (points.iter().map(|p| p.0).max().unwrap_or(1) as f64).max(t0 + 1.0);
    let vmax = points.iter().map(|p| p.1).fold(capacity, f64::max).max(1.0) * 1.1;
    let x = |t: i64| (t as f64 - t0) / (t1 - t0) * w;
    let y = |v: f64| h - v / vmax * h;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=img aria-label=\"demand of {}\">",
        esc(workload)
    );
    if !band.is_empty() {
        let mut d = String::new();
        for (t, _, u) in &band {
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if d.is_empty() { "M" } else { "L" },
                x(*t),
                y(*u)
            );
        }
        for (t, l, _) in band.iter().rev() {
            let _ = write!(d, "L{:.1},{:.1} ", x(*t), y(*l));
        }
        let _ = write!(
            svg,
            "<path d=\"{d}Z\" fill=\"#9cc3e6\" opacity=\"0.5\"><title>forecast interval</title></path>"
        );
    }
    let line: String = history
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1} ", x(*t), y(*v)))
        .collect();
    let _ = write!(
        svg,
        "<polyline points=\"{line}\" fill=none stroke=\"#1f4e79\" stroke-width=1.5><title>observed rps</title></polyline>"
    );
    let cy = y(capacity);
    let _ = write!(
        svg,
        "<line x1=0 x2=\"{w}\" y1=\"{cy:.1}\" y2=\"{cy:.1}\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\"><title>primary capacity {capacity:.0} rps</title></line>"
    );
    svg.push_str("</svg>");
    svg
}

/// `GET /`.
pub async fn index(State(state): State<Arc<ApiState>>) -> Html<String> {
    let r = report(&state);
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=5>\
         <title>umbra</title><style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}\
         table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}\
         .muted{color:#888}h2{margin-top:1.5em}</style></head><body>",
    );
    let _ = write!(html, "<h1>umbra</h1><p>mode: <b>{}</b></p>", esc(&r.mode));
    html.push_str("<table id=workloads><tr><th>workload</th><th>state</th><th>shadow weight</th><th>shadow instances</th><th>observed rps</th><th>forecast peak rps</th><th>primary capacity</th><th>model (MASE)</th><th>signals</th><th>last decision</th></tr>");
    for w in &r.workloads {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{} / {}{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            esc(&w.name),
            esc(&w.migration_state),
            w.shadow_weight,
            w.shadow_instances,
            w.planned_instances,
            if w.shadow_warm { " full" } else { " idle" },
            num(w.observed_rps),
            num(w.forecast_peak_rps),
            w.primary_capacity_rps,
            esc(w.forecast_model.as_deref().unwrap_or("–")),
            w.forecast_mase
                .map_or_else(|| "–".into(), |m| format!("{m:.2}")),
            esc(&w.signals_used.join(", ")),
            esc(&w.last_reason),
        );
    }
    html.push_str("</table>");
    for w in &r.workloads {
        let _ = write!(
            html,
            "<h2>{}</h2>{}",
            esc(&w.name),
            chart(&state, &w.name, w.primary_capacity_rps)
        );
        if !w.would_do.is_empty() {
            let _ = write!(
                html,
                "<p>would do (observe mode):</p><ul>{}</ul>",
                w.would_do
                    .iter()
                    .map(|s| format!("<li>{}</li>", esc(s)))
                    .collect::<String>()
            );
        }
    }
    html.push_str("<h2>decisions</h2><table id=transitions><tr><th>time</th><th>workload</th><th>from</th><th>to</th><th>reason</th></tr>");
    for t in state.store.transitions(None, 30).unwrap_or_default() {
        let at = chrono::DateTime::from_timestamp_millis(t.ts_ms)
            .map(|d| d.format("%H:%M:%S").to_string())
            .unwrap_or_default();
        let _ = write!(
            html,
            "<tr><td>{at}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.workload),
            esc(&t.from),
            esc(&t.to),
            esc(&t.reason)
        );
    }
    html.push_str("</table></body></html>");
    Html(html)
}
