//! The generic CI/CD deployment event: one JSON object per line, from any pipeline that can
//! `curl` a line of JSON.
//!
//! ```text
//! {"id": "rel-42", "workload": "checkout", "environment": "production",
//!  "at": "2024-11-28T09:00:00Z", "status": "started"}
//! ```
//!
//! * `workload` (required): the workload deployed; several may be separated by `;` or `|`.
//! * `status` (required): `started`, `succeeded` or `failed`.
//! * `at` or `timestamp` (optional, not both): RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC) or unix
//!   seconds; absent means "now", the time the caller received it.
//! * `environment` (optional): defaults to `production`, as GitHub's does.
//! * `id` (optional, string or integer): pairs a start with its outcome; without it events are
//!   paired by workload and environment.
//! * `description` (optional): free text.
//!
//! Unknown fields are refused: a misspelt `timestamp` would otherwise silently become "now".

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::csv_table::split_workloads;
use crate::deployments::model::{DeploymentEvent, DeploymentPhase};
use crate::error::{Error, Problem};
use crate::json_lines::{Fields, json_values};
use crate::time::json_time;

/// Fields of the generic event.
const KNOWN: [&str; 7] = [
    "id",
    "workload",
    "environment",
    "at",
    "timestamp",
    "status",
    "description",
];

/// Parses a feed of generic deployment events (JSON Lines; a single object is a feed of one).
/// `now` stands in for a missing timestamp. All lines are checked before anything is returned.
pub fn parse_deploy_events(
    name: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<Vec<DeploymentEvent>, Error> {
    json_values(name, text)?
        .iter()
        .map(|(line, value)| parse_one(name, *line, value, now))
        .collect()
}

/// Reads and parses a generic event feed; the path is the input's name.
pub fn load_deploy_events(
    path: impl AsRef<std::path::Path>,
    now: DateTime<Utc>,
) -> Result<Vec<DeploymentEvent>, Error> {
    let path = path.as_ref();
    parse_deploy_events(
        &path.display().to_string(),
        &crate::input::read_text(path)?,
        now,
    )
}

/// One event object.
fn parse_one(
    name: &str,
    line: usize,
    value: &Value,
    now: DateTime<Utc>,
) -> Result<DeploymentEvent, Error> {
    let f = Fields::of(name, Some(line), "", "event", value)?;
    f.deny_unknown(&KNOWN)?;
    let workloads = split_workloads(f.str("workload")?);
    if workloads.is_empty() {
        return Err(f.error("workload", Problem::Missing));
    }
    let status = f.str("status")?;
    let phase = match status.to_ascii_lowercase().as_str() {
        "started" => DeploymentPhase::Started,
        "succeeded" => DeploymentPhase::Succeeded,
        "failed" => DeploymentPhase::Failed,
        _ => {
            return Err(f.error(
                "status",
                Problem::BadValue {
                    value: status.to_string(),
                    expected: "started, succeeded or failed".into(),
                },
            ));
        }
    };
    let at = match (f.get("at"), f.get("timestamp")) {
        (Some(_), Some(_)) => {
            return Err(f.error(
                "timestamp",
                Problem::BadValue {
                    value: "both `at` and `timestamp`".into(),
                    expected: "one of them".into(),
                },
            ));
        }
        (Some(v), None) => json_time(v).map_err(|p| f.error("at", p))?,
        (None, Some(v)) => json_time(v).map_err(|p| f.error("timestamp", p))?,
        (None, None) => now,
    };
    Ok(DeploymentEvent {
        id: f.opt_id("id")?,
        workloads,
        environment: f
            .opt_str("environment")?
            .unwrap_or("production")
            .to_string(),
        at,
        phase,
        description: f.opt_str("description")?.unwrap_or("").to_string(),
        source: name.to_string(),
    })
}
