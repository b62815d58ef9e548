//! Hand-written SVG chart: history, forecast, interval band, shaded event windows, axes.

use std::fmt::Write;

use chrono::DateTime;

use crate::{EventWindow, Forecast, Series};

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 48.0;

/// Renders the last `history_points` of `history`, the forecast with its band, and the events
/// that fall in view, as a standalone SVG document.
pub fn render_svg(
    history: &Series,
    forecast: &Forecast,
    events: &[EventWindow],
    history_points: usize,
    title: &str,
) -> String {
    let from = history.len().saturating_sub(history_points);
    let hist: Vec<(i64, f64)> = (from..history.len())
        .map(|i| (history.time_at(i), history.values[i]))
        .collect();
    let fc_t: Vec<i64> = (0..forecast.point.len())
        .map(|i| forecast.time_at(i))
        .collect();
    let t0 = hist.first().map_or(forecast.start, |p| p.0);
    let t1 = fc_t.last().copied().unwrap_or(history.end()).max(t0 + 1);
    let all_values = hist
        .iter()
        .map(|p| p.1)
        .chain(forecast.lower.iter().copied())
        .chain(forecast.upper.iter().copied())
        .chain(forecast.point.iter().copied())
        .filter(|v| v.is_finite());
    let (mut lo, mut hi) = all_values.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
        (l.min(v), h.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let x = |t: i64| LEFT + (t - t0) as f64 / (t1 - t0) as f64 * (WIDTH - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (HEIGHT - TOP - BOTTOM);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="22" font-size="15">{}</text>"#,
        escape(title)
    );
    for e in events.iter().filter(|e| e.end > t0 && e.start < t1) {
        let (a, b) = (x(e.start.max(t0)), x(e.end.min(t1)));
        let _ = writeln!(
            svg,
            r##"<rect x="{a:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#f5c542" fill-opacity="0.3"><title>{}</title></rect>"##,
            (b - a).max(1.0),
            HEIGHT - TOP - BOTTOM,
            escape(&e.name)
        );
        let _ = writeln!(
            svg,
            r##"<text x="{a:.1}" y="{:.1}" font-size="10" fill="#8a6d00">{}</text>"##,
            TOP + 12.0,
            escape(&e.name)
        );
    }
    axes(&mut svg, t0, t1, lo, hi, &x, &y);
    if !fc_t.is_empty() {
        let upper = fc_t
            .iter()
            .zip(&forecast.upper)
            .map(|(t, v)| (x(*t), y(*v)));
        let lower = fc_t
            .iter()
            .zip(&forecast.lower)
            .rev()
            .map(|(t, v)| (x(*t), y(*v)));
        let _ = writeln!(
            svg,
            r##"<polygon points="{}" fill="#4a90d9" fill-opacity="0.25" stroke="none"><title>{:.0}% interval</title></polygon>"##,
            points(upper.chain(lower)),
            forecast.level * 100.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#333333" stroke-width="1.2"/>"##,
        points(
            hist.iter()
                .filter(|p| p.1.is_finite())
                .map(|(t, v)| (x(*t), y(*v)))
        )
    );
    let _ = writeln!(
        svg,
        r##"<polyline points="{}" fill="none" stroke="#1f5fa8" stroke-width="1.8"/>"##,
        points(
            fc_t.iter()
                .zip(&forecast.point)
                .map(|(t, v)| (x(*t), y(*v)))
        )
    );
    let legend_y = HEIGHT - 10.0;
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="{legend_y}" fill="#333333">history</text><text x="{:.0}" y="{legend_y}" fill="#1f5fa8">forecast ({})</text><text x="{:.0}" y="{legend_y}" fill="#4a90d9">{:.0}% interval</text><text x="{:.0}" y="{legend_y}" fill="#8a6d00">events</text>"##,
        LEFT + 70.0,
        escape(&forecast.model),
        LEFT + 260.0,
        forecast.level * 100.0,
        LEFT + 370.0
    );
    svg.push_str("</svg>\n");
    svg
}

fn axes(
    svg: &mut String,
    t0: i64,
    t1: i64,
    lo: f64,
    hi: f64,
    x: &dyn Fn(i64) -> f64,
    y: &dyn Fn(f64) -> f64,
) {
    let (bottom, right) = (HEIGHT - BOTTOM, WIDTH - RIGHT);
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#888888"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#888888"/>"##
    );
    let tick = nice_step((hi - lo) / 5.0);
    let first = (lo / tick).ceil() as i64;
    let last = (hi / tick).floor() as i64;
    for k in first..=last {
        let v = k as f64 * tick;
        let py = y(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{right}" y2="{py:.1}" stroke="#eeeeee"/><text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT - 6.0,
            py + 4.0,
            format_value(v)
        );
    }
    let span = t1 - t0;
    let format = if span > 3 * 86_400 {
        "%Y-%m-%d"
    } else {
        "%m-%d %H:%M"
    };
    for k in 0..=6 {
        let t = t0 + span * k / 6;
        let label = DateTime::from_timestamp(t, 0)
            .map(|d| d.format(format).to_string())
            .unwrap_or_default();
        let anchor = match k {
            0 => "start",
            6 => "end",
            _ => "middle",
        };
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.0}" text-anchor="{anchor}">{label}</text>"##,
            x(t),
            bottom + 16.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.0}" y="{:.0}" text-anchor="middle" fill="#555555">time (UTC)</text>"##,
        (LEFT + right) / 2.0,
        bottom + 32.0
    );
}

/// A 1, 2 or 5 times a power of ten at least `raw`, so axis ticks fall on round values.
fn nice_step(raw: f64) -> f64 {
    if raw.is_nan() || raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn points(iter: impl Iterator<Item = (f64, f64)>) -> String {
    let mut s = String::new();
    for (px, py) in iter {
        let _ = write!(s, "{px:.1},{py:.1} ");
    }
    s
}

fn format_value(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
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

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(4300.0), 5000.0);
        assert_eq!(nice_step(0.13), 0.2);
        assert_eq!(nice_step(0.0), 1.0);
    }

    #[test]
    fn svg_has_history_forecast_band_event_and_escapes_names() {
        let history = Series::new(0, 3600, (0..48).map(|i| (i % 24) as f64).collect());
        let forecast = Forecast {
            start: history.end(),
            step: 3600,
            point: vec![1.0, 2.0],
            lower: vec![0.5, 1.5],
            upper: vec![1.5, 2.5],
            level: 0.8,
            model: "mstl".into(),
            signals_used: Vec::new(),
            scores: Vec::new(),
            members: Vec::new(),
            ets_forms: Vec::new(),
            interval: crate::IntervalCheck {
                held_out_coverage: f64::NAN,
                scale: 1.0,
            },
        };
        let events = [EventWindow::new("A&B <final>", 40 * 3600, 44 * 3600)];
        let svg = render_svg(&history, &forecast, &events, 100, "demo");
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("<polygon"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("A&amp;B &lt;final&gt;"));
        assert!(svg.contains("80% interval"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
