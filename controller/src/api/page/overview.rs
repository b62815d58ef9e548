//! `GET /`: counts by phase, a filter box and one row per workload, urgent phases first.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;

use super::{attention, esc, head, num};
use crate::api::ApiState;
use crate::api::status::report;

/// How many recent decisions the overview lists.
const DECISIONS: usize = 30;

/// The filter, kept in the URL so a refresh or a shared link shows the same rows.
#[derive(Deserialize)]
pub struct OverviewQuery {
    q: Option<String>,
}

/// Filters rows as the user types, on the text each row carries in `data-k` (name, phase,
/// model, signals); records when the page became usable in `data-ready-ms` for the tests.
const FILTER_SCRIPT: &str = r#"<script>
(function(){
const f=document.getElementById('filter'),rows=Array.from(document.querySelectorAll('#workloads tbody tr')),shown=document.getElementById('shown');
function apply(){
  const q=f.value.trim().toLowerCase();let n=0;
  for(const r of rows){const m=!q||r.dataset.k.includes(q);r.hidden=!m;if(m)n++;}
  shown.textContent=n;
  const u=new URL(location.href);if(q)u.searchParams.set('q',q);else u.searchParams.delete('q');
  history.replaceState(null,'',u);
}
f.addEventListener('input',apply);apply();
document.documentElement.dataset.readyMs=String(Math.round(performance.now()));
})();
</script>"#;

/// `GET /`.
pub async fn index(
    State(state): State<Arc<ApiState>>,
    Query(query): Query<OverviewQuery>,
) -> Html<String> {
    let mut r = report(&state);
    r.workloads.sort_by(|a, b| {
        attention(&a.migration_state)
            .cmp(&attention(&b.migration_state))
            .then_with(|| a.name.cmp(&b.name))
    });
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for w in &r.workloads {
        *counts.entry(w.migration_state.as_str()).or_default() += 1;
    }
    let mut html = head("umbra", 10);
    let _ = write!(
        html,
        "<h1>umbra</h1><p>mode: <b>{}</b> · {} workloads: {}</p>",
        esc(&r.mode),
        r.workloads.len(),
        counts
            .iter()
            .map(|(s, n)| format!("<span class=state-{s}>{n} {s}</span>"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = write!(
        html,
        "<form method=get><input id=filter name=q type=search autocomplete=off \
         placeholder=\"filter by name, state, model or signal\" value=\"{}\"> \
         <span class=muted><span id=shown>{}</span> shown</span></form>",
        esc(query.q.as_deref().unwrap_or("")),
        r.workloads.len()
    );
    html.push_str(
        "<table id=workloads><thead><tr><th>workload</th><th>state</th><th>shadow weight</th>\
         <th>shadow instances</th><th>observed rps</th><th>forecast peak rps</th>\
         <th>primary capacity</th><th>model (MASE)</th><th>signals</th><th>last decision</th>\
         </tr></thead><tbody>",
    );
    for w in &r.workloads {
        let model = w.forecast_model.as_deref().unwrap_or("–");
        let signals = w.signals_used.join(", ");
        let key = format!("{} {} {} {}", w.name, w.migration_state, model, signals).to_lowercase();
        let _ = write!(
            html,
            "<tr data-k=\"{}\"><td><a href=\"/workloads/{}\">{}</a></td><td class=state-{}>{}</td>\
             <td>{:.2}</td><td>{} / {}{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{} ({})</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(&key),
            esc(&w.name),
            esc(&w.name),
            esc(&w.migration_state),
            esc(&w.migration_state),
            w.shadow_weight,
            w.shadow_instances,
            w.planned_instances,
            if w.shadow_warm { " full" } else { " idle" },
            num(w.observed_rps),
            num(w.forecast_peak_rps),
            w.primary_capacity_rps,
            esc(model),
            w.forecast_mase
                .map_or_else(|| "–".into(), |m| format!("{m:.2}")),
            esc(&signals),
            esc(&w.last_reason),
        );
    }
    html.push_str("</tbody></table>");
    html.push_str(&super::detail::decisions_table(&state, None, DECISIONS));
    html.push_str(FILTER_SCRIPT);
    html.push_str("</body></html>");
    Html(html)
}
