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

/// How many matching rows the overview lists before "list all": a browser lays out a table as
/// it parses it, and laying out 1,000 rows of ten columns took headless Chromium here 0.6-1.1 s
/// before the page was usable; 200 rows take under 0.4 s. Rows beyond it are sent but hidden,
/// so the filter still searches every workload.
const LISTED: usize = 200;

/// The filter, kept in the URL so a refresh or a shared link shows the same rows; `all` lists
/// every match instead of the first [`LISTED`].
#[derive(Deserialize)]
pub struct OverviewQuery {
    q: Option<String>,
    #[serde(default)]
    all: bool,
}

/// Filters rows as the user types, on the text each row carries in `data-k` (name, phase,
/// model, signals), with the same rule as the server's first rendering; records when the page
/// became usable in `data-ready-ms` for the tests.
const FILTER_SCRIPT: &str = r#"<script>
(function(){
const f=document.getElementById('filter'),rows=Array.from(document.querySelectorAll('#workloads tbody tr')),shown=document.getElementById('shown'),more=document.getElementById('more'),all=document.getElementById('all');
const listed=Number(more.dataset.listed),every=new URL(location.href).searchParams.get('all')==='true';
function apply(){
  const q=f.value.trim().toLowerCase();let n=0;
  for(const r of rows){const m=!q||r.dataset.k.includes(q);if(m)n++;r.hidden=!m||(!every&&n>listed);}
  shown.textContent=n;more.hidden=every||n<=listed;
  const u=new URL(location.href);if(q)u.searchParams.set('q',q);else u.searchParams.delete('q');
  history.replaceState(null,'',u);
  u.searchParams.set('all','true');all.href=u.search;
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
    let filter = query.q.as_deref().unwrap_or("").trim().to_lowercase();
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
    let keys: Vec<String> = r.workloads.iter().map(row_key).collect();
    let matches: Vec<bool> = keys.iter().map(|k| k.contains(&filter)).collect();
    let matching = matches.iter().filter(|&&m| m).count();
    let every = query.all || matching <= LISTED;
    let _ = write!(
        html,
        "<form method=get><input id=filter name=q type=search autocomplete=off \
         placeholder=\"filter by name, state, model or signal\" value=\"{}\"> \
         <span class=muted><span id=shown>{matching}</span> matching\
         <span id=more data-listed={LISTED}{}>; the first {LISTED} are listed · \
         <a id=all href=\"?q={}&amp;all=true\">list all</a></span></span></form>",
        esc(query.q.as_deref().unwrap_or("")),
        if every { " hidden" } else { "" },
        esc(&url_encode(&filter)),
    );
    html.push_str(
        "<table id=workloads><thead><tr><th>workload</th><th>state</th><th>shadow weight</th>\
         <th>shadow instances</th><th>observed rps</th><th>forecast peak rps</th>\
         <th>primary capacity</th><th>model (MASE)</th><th>signals</th><th>last decision</th>\
         </tr></thead><tbody>",
    );
    let mut listed = 0;
    for ((w, key), &matches) in r.workloads.iter().zip(&keys).zip(&matches) {
        let model = w.forecast_model.as_deref().unwrap_or("–");
        let signals = w.signals_used.join(", ");
        listed += usize::from(matches);
        let hidden = !matches || (!query.all && listed > LISTED);
        let _ = write!(
            html,
            "<tr data-k=\"{}\"{}><td><a href=\"/workloads/{}\">{}</a></td><td class=state-{}>{}</td>\
             <td>{:.2}</td><td>{} / {}{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{} ({})</td>\
             <td>{}</td><td>{}</td></tr>",
            esc(key),
            if hidden { " hidden" } else { "" },
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

/// The text the filter searches for a row: name, phase, model and signals, lower-cased.
fn row_key(w: &crate::api::status::WorkloadReport) -> String {
    let model = w.forecast_model.as_deref().unwrap_or("–");
    format!(
        "{} {} {} {}",
        w.name,
        w.migration_state,
        model,
        w.signals_used.join(", ")
    )
    .to_lowercase()
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}
