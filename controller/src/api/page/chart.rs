//! One workload's last hour of demand, its forecast band and primary capacity, as inline SVG.

use std::fmt::Write;

use super::esc;
use crate::api::ApiState;
use crate::store::{Resource, SeriesKey};

/// A sparkline of the last hour of demand, the forecast band and primary capacity.
pub(super) fn chart(state: &ApiState, workload: &str, capacity: f64) -> String {
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
