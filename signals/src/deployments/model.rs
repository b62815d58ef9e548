//! Deployments as windows of time, and how a stream of start/finish events becomes them.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

/// Where a deployment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentStatus {
    /// From a schedule: not started as far as we know.
    Planned,
    /// Started, no outcome seen yet.
    InProgress,
    /// Finished and succeeded.
    Succeeded,
    /// Finished and failed.
    Failed,
}

/// What one CI/CD event says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeploymentPhase {
    /// A deployment began.
    Started,
    /// A deployment finished successfully.
    Succeeded,
    /// A deployment finished and failed.
    Failed,
}

/// One CI/CD event (a line of the generic JSON feed, or one GitHub webhook delivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentEvent {
    /// The deployment this event belongs to; events without an id are paired by workloads and
    /// environment instead.
    pub id: Option<String>,
    /// Workloads being deployed; empty means all.
    pub workloads: Vec<String>,
    /// Target environment (`production`, `staging`).
    pub environment: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub phase: DeploymentPhase,
    /// Free text for people (GitHub description, or task/ref/sha).
    pub description: String,
    /// Name of the input it came from.
    pub source: String,
}

/// A deployment as a window of time during which a workload's capacity may be disturbed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Identifier from the source, or one derived from workloads, environment and start.
    pub id: String,
    /// Workloads deployed; empty means all.
    pub workloads: Vec<String>,
    /// Target environment.
    pub environment: String,
    /// Start of the window.
    pub start: DateTime<Utc>,
    /// End of the window: the planned end, the time the outcome was reported, or
    /// `start + default_window` when neither is known.
    pub end: DateTime<Utc>,
    /// Where it stands.
    pub status: DeploymentStatus,
    /// Free text for people.
    pub description: String,
    /// Name of the input it came from.
    pub source: String,
}

impl Deployment {
    /// True when the deployment touches `workload` (always, for an all-workload deployment).
    pub fn applies_to(&self, workload: &str) -> bool {
        self.workloads.is_empty() || self.workloads.iter().any(|w| w == workload)
    }
}

/// Pairs start and finish events into deployments.
///
/// Events are taken in time order. A `Started` event opens a deployment (a repeated start of an
/// open one is ignored); the next `Succeeded`/`Failed` event with the same key closes it, and
/// its time becomes the end. Deployments never closed end at `start + default_window`; an outcome
/// with no start seen opens and closes a deployment at its own time, lasting `default_window`
/// (the start was missed, the disturbance was not). The key is the event id, or the workloads
/// and environment when the id is absent. Output is sorted by start.
pub fn deployments_from_events(
    events: &[DeploymentEvent],
    default_window: TimeDelta,
) -> Vec<Deployment> {
    let mut sorted: Vec<&DeploymentEvent> = events.iter().collect();
    sorted.sort_by_key(|e| e.at);
    let mut out: Vec<Deployment> = Vec::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut finished: HashMap<String, usize> = HashMap::new();
    for e in sorted {
        let key = match &e.id {
            Some(id) => format!("id:{id}"),
            None => format!("anon:{}@{}", e.workloads.join(";"), e.environment),
        };
        let window_end = e.at.checked_add_signed(default_window).unwrap_or(e.at);
        match e.phase {
            DeploymentPhase::Started => {
                if open.contains_key(&key) {
                    continue;
                }
                open.insert(key, out.len());
                out.push(deployment(
                    e,
                    e.at,
                    window_end,
                    DeploymentStatus::InProgress,
                ));
            }
            DeploymentPhase::Succeeded | DeploymentPhase::Failed => {
                let status = if e.phase == DeploymentPhase::Succeeded {
                    DeploymentStatus::Succeeded
                } else {
                    DeploymentStatus::Failed
                };
                if let Some(i) = open.remove(&key) {
                    out[i].end = e.at.max(out[i].start);
                    out[i].status = status;
                    if e.id.is_some() {
                        finished.insert(key, i);
                    }
                } else if e.id.is_some() && finished.contains_key(&key) {
                    // A repeated outcome (webhook redelivery) changes nothing.
                } else {
                    if e.id.is_some() {
                        finished.insert(key, out.len());
                    }
                    out.push(deployment(e, e.at, window_end, status));
                }
            }
        }
    }
    out.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    out
}

/// A deployment built from its first event.
fn deployment(
    e: &DeploymentEvent,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    status: DeploymentStatus,
) -> Deployment {
    let id = e.id.clone().unwrap_or_else(|| {
        format!(
            "{}@{}@{}",
            e.workloads.join(";"),
            e.environment,
            start.to_rfc3339()
        )
    });
    Deployment {
        id,
        workloads: e.workloads.clone(),
        environment: e.environment.clone(),
        start,
        end,
        status,
        description: e.description.clone(),
        source: e.source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + TimeDelta::minutes(minute)
    }

    fn ev(id: Option<&str>, minute: i64, phase: DeploymentPhase) -> DeploymentEvent {
        DeploymentEvent {
            id: id.map(String::from),
            workloads: vec!["checkout".into()],
            environment: "production".into(),
            at: at(minute),
            phase,
            description: String::new(),
            source: "feed".into(),
        }
    }

    #[test]
    fn pairs_start_and_outcome_by_id_and_by_workload() {
        use DeploymentPhase::*;
        let events = vec![
            ev(Some("7"), 12, Succeeded),
            ev(Some("7"), 10, Started),
            ev(Some("7"), 13, Succeeded),
            ev(None, 20, Started),
            ev(None, 25, Failed),
            ev(None, 40, Started),
            ev(Some("9"), 50, Failed),
        ];
        let got = deployments_from_events(&events, TimeDelta::minutes(15));
        let summary: Vec<(i64, i64, DeploymentStatus)> = got
            .iter()
            .map(|d| {
                (
                    (d.start - at(0)).num_minutes(),
                    (d.end - at(0)).num_minutes(),
                    d.status,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (10, 12, DeploymentStatus::Succeeded),
                (20, 25, DeploymentStatus::Failed),
                (40, 55, DeploymentStatus::InProgress),
                (50, 65, DeploymentStatus::Failed),
            ]
        );
        assert_eq!(got[0].id, "7");
        assert!(got[1].id.starts_with("checkout@production@"));
    }
}
