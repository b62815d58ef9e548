//! The story of one run in a few timestamped lines: the controller's own decisions and reasons
//! (from `GET /v1/transitions`), the peak, the fault and the proxy's rollback.

use serde::{Deserialize, Serialize};

use super::observe::{Observations, StateChange};
use super::plan::{DemoPlan, trace_label};
use super::stats::{Bucket, PhaseStats};

/// One logged controller transition, as `GET /v1/transitions` returns it.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Transition {
    /// Unix ms.
    pub ts_ms: i64,
    /// Phase before.
    pub from: String,
    /// Phase after.
    pub to: String,
    /// The controller's reason.
    pub reason: String,
    /// ms after the live window started (filled in by the demo).
    #[serde(default)]
    pub at_ms: i64,
}

/// One line of the story.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// ms after the live window started.
    pub at_ms: i64,
    /// Trace time then, e.g. "Tue 19:30".
    pub trace_time: String,
    /// What happened.
    pub text: String,
}

/// What the story is told from.
pub struct Facts<'a> {
    /// The plan.
    pub plan: &'a DemoPlan,
    /// Controller transitions, oldest first, `at_ms` set.
    pub transitions: &'a [Transition],
    /// What the observer saw.
    pub seen: &'a Observations,
    /// Requests per wall-clock bucket.
    pub buckets: &'a [Bucket],
    /// The whole run's requests.
    pub all: Option<&'a PhaseStats>,
    /// Trigger threshold, share of primary capacity.
    pub threshold: f64,
}

fn rps(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:.0}"))
}

/// The controller's view at the first state change at or after `at_ms` into `state`.
fn view_at<'a>(states: &'a [StateChange], state: &str, at_ms: i64) -> Option<&'a StateChange> {
    states
        .iter()
        .find(|s| s.state == state && s.at_ms + 1000 >= at_ms)
}

/// The story, oldest first.
pub fn narrate(f: &Facts<'_>) -> Vec<Line> {
    let plan = f.plan;
    let capacity = plan.primary_capacity();
    let mut lines: Vec<(i64, String)> = vec![(
        0,
        format!(
            "replay starts at {:.0} req/s; primary {} x {} = {capacity:.0} req/s; the window's \
             peak is {:.0} req/s at {} ({:.1}x primary)",
            plan.rate_at(std::time::Duration::ZERO),
            plan.primary_instances,
            plan.instance_capacity,
            plan.peak.1,
            trace_label(plan.peak.0 as f64),
            plan.peak.1 / capacity
        ),
    )];
    let mut ramp_steps = 0;
    for t in f.transitions {
        let text = match (t.from.as_str(), t.to.as_str()) {
            (_, "provisioning") => {
                let view = view_at(&f.seen.states, "provisioning", t.at_ms);
                format!(
                    "controller: {} -> provisioning: {} [observed {} req/s, forecast peak {} \
                     req/s, threshold {:.0} req/s]",
                    t.from,
                    t.reason,
                    rps(view.and_then(|v| v.observed_rps)),
                    rps(view.and_then(|v| v.forecast_peak_rps)),
                    f.threshold * capacity
                )
            }
            ("ramping", "ramping") => {
                ramp_steps += 1;
                continue;
            }
            ("ramping", "migrated") => {
                let text = format!(
                    "controller: ramping -> migrated after {} more gated steps: {}",
                    ramp_steps, t.reason
                );
                ramp_steps = 0;
                text
            }
            (from, "rolled_back") => {
                let after = f
                    .seen
                    .fault
                    .as_ref()
                    .and_then(|x| x.proxy_rollback_at_ms)
                    .filter(|p| *p <= t.at_ms)
                    .map(|p| format!(" ({} ms after the proxy's guard)", t.at_ms - p))
                    .unwrap_or_default();
                format!("controller: {from} -> rolled_back: {}{after}", t.reason)
            }
            (from, to) => format!("controller: {from} -> {to}: {}", t.reason),
        };
        lines.push((t.at_ms, text));
    }
    if let Some(peak) = f
        .buckets
        .iter()
        .max_by(|a, b| a.sent_rps.total_cmp(&b.sent_rps))
    {
        lines.push((
            i64::from(peak.at_ms),
            format!(
                "peak second: {:.0} req/s ({:.1}x primary capacity), {:.0}% served by the shadow \
                 pool, p99 {:.0} ms, {:.0} failed/s",
                peak.sent_rps,
                peak.sent_rps / capacity,
                peak.on_shadow * 100.0,
                peak.p99_ms,
                peak.failed_rps
            ),
        ));
    }
    if let Some(fault) = &f.seen.fault {
        lines.push((
            fault.injected_at_ms,
            format!(
                "fault injected: {} ({} instances) at {:.0} req/s ({:.0}% of primary capacity){}",
                fault.kind.describe(),
                fault.targets.len(),
                fault.demand_rps,
                fault.demand_rps / capacity * 100.0,
                if fault.forced {
                    "; the window was ending"
                } else {
                    ""
                }
            ),
        ));
        if let (Some(at), Some(after)) = (fault.proxy_rollback_at_ms, fault.rollback_after_ms) {
            lines.push((
                at,
                format!(
                    "proxy guard rolled the shadow back to 0 in {after} ms, by itself: {} ({})",
                    fault.proxy_detail.as_deref().unwrap_or("-"),
                    fault.proxy_reason.as_deref().unwrap_or("-")
                ),
            ));
        }
    }
    if let Some(all) = f.all {
        lines.push((
            plan.wall_duration().as_millis() as i64,
            format!(
                "replay ends: {} requests sent, {} failed",
                all.requests, all.failed
            ),
        ));
    }
    // Stable: lines at the same moment keep the order they were told in.
    lines.sort_by_key(|(at, _)| *at);
    lines
        .into_iter()
        .map(|(at_ms, text)| Line {
            at_ms,
            trace_time: trace_label(
                plan.trace_at(std::time::Duration::from_millis(at_ms.max(0) as u64)),
            ),
            text,
        })
        .collect()
}

/// `+ 12.3s  [Tue 07:30]  text`.
pub fn format_line(l: &Line) -> String {
    format!(
        "  +{:>5.1}s  [{}]  {}",
        l.at_ms as f64 / 1000.0,
        l.trace_time,
        l.text
    )
}

/// The per-phase table.
pub fn format_phases(phases: &[PhaseStats], all: Option<&PhaseStats>) -> String {
    let mut out = format!(
        "  {:<18} {:>15} {:>9} {:>7} {:>8} {:>8} {:>10}\n",
        "phase", "wall", "requests", "failed", "p50 ms", "p99 ms", "on shadow"
    );
    for p in phases.iter().chain(all) {
        out.push_str(&format!(
            "  {:<18} {:>6.1}-{:>6.1}s {:>9} {:>7} {:>8.1} {:>8.1} {:>9.0}%\n",
            p.label,
            f64::from(p.from_ms) / 1000.0,
            f64::from(p.to_ms) / 1000.0,
            p.requests,
            p.failed,
            p.p50_ms,
            p.p99_ms,
            p.on_shadow * 100.0
        ));
    }
    out
}
