//! `GET /workloads/{name}`: one workload's figures, its demand chart and its decisions.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::chart::chart;
use super::{esc, head, num};
use crate::api::ApiState;
use crate::api::status::report_one;

/// How many of a workload's decisions its page lists.
const DECISIONS: usize = 50;

/// `GET /workloads/{name}`.
pub async fn detail(State(state): State<Arc<ApiState>>, Path(name): Path<String>) -> Response {
    let Some(w) = report_one(&state, &name) else {
        return (
            StatusCode::NOT_FOUND,
            Html(format!(
                "{}<p>no workload named <b>{}</b>. <a href=\"/\">all workloads</a></p></body></html>",
                head("umbra: not found", 60),
                esc(&name)
            )),
        )
            .into_response();
    };
    let mut html = head(&format!("umbra: {}", w.name), 5);
    let _ = write!(
        html,
        "<p><a href=\"/\">← all workloads</a></p><h1 id=workload>{}</h1><table id=figures>",
        esc(&w.name)
    );
    let rows: [(&str, String); 12] = [
        (
            "state",
            format!("<span class=state-{0}>{0}</span>", esc(&w.migration_state)),
        ),
        ("shadow weight", format!("{:.2}", w.shadow_weight)),
        (
            "shadow instances",
            format!(
                "{} / {} planned{} {}",
                w.shadow_instances,
                w.planned_instances,
                if w.shadow_warm {
                    ", full size"
                } else {
                    ", idle size"
                },
                esc(&w.shadow_members.join(" "))
            ),
        ),
        ("observed rps", num(w.observed_rps)),
        ("forecast next step rps", num(w.forecast_next_rps)),
        ("forecast peak rps (upper)", num(w.forecast_peak_rps)),
        (
            "primary capacity rps",
            format!("{:.0}", w.primary_capacity_rps),
        ),
        (
            "model (backtest MASE)",
            format!(
                "{} ({})",
                esc(w.forecast_model.as_deref().unwrap_or("–")),
                w.forecast_mase
                    .map_or_else(|| "–".into(), |m| format!("{m:.2}"))
            ),
        ),
        ("combines", esc(&w.forecast_members.join(", "))),
        ("interval (backtest)", interval_text(&w)),
        ("signals", esc(&w.signals_used.join(", "))),
        ("last decision", esc(&w.last_reason)),
    ];
    for (k, v) in rows {
        let _ = write!(html, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    html.push_str("</table>");
    let _ = write!(
        html,
        "<h2>demand, last hour and forecast</h2>{}",
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
    html.push_str(&decisions_table(&state, Some(&w.name), DECISIONS));
    html.push_str("</body></html>");
    Html(html).into_response()
}

/// The most recent decisions, of one workload or of all.
pub(super) fn decisions_table(state: &ApiState, workload: Option<&str>, limit: usize) -> String {
    let mut html = String::from(
        "<h2>decisions</h2><table id=transitions><tr><th>time</th><th>workload</th><th>from</th>\
         <th>to</th><th>reason</th></tr>",
    );
    for t in state.store.transitions(workload, limit).unwrap_or_default() {
        let at = chrono::DateTime::from_timestamp_millis(t.ts_ms)
            .map(|d| d.format("%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let _ = write!(
            html,
            "<tr><td>{at}</td><td><a href=\"/workloads/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td></tr>",
            esc(&t.workload),
            esc(&t.from),
            esc(&t.to),
            esc(&t.reason)
        );
    }
    html.push_str("</table>");
    html
}

/// "80%: covered 71% of backtest points built from the other folds; widened x1.18".
fn interval_text(w: &crate::api::status::WorkloadReport) -> String {
    let Some(level) = w.forecast_level else {
        return "–".into();
    };
    let held = w.forecast_interval_coverage.map_or_else(
        || "too few folds to check".into(),
        |c| {
            format!(
                "covered {:.0}% of each backtest fold from the others",
                100.0 * c
            )
        },
    );
    format!(
        "{:.0}% band: {held}; widened ×{:.2}",
        100.0 * level,
        w.forecast_interval_scale.unwrap_or(1.0)
    )
}
