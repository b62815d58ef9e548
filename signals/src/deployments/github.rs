//! GitHub `deployment` and `deployment_status` webhook deliveries as deployment events.
//!
//! Fields read (everything else in GitHub's large payload is ignored, since GitHub adds
//! fields over time):
//!
//! * `deployment.id`, `deployment.environment`, `deployment.created_at` (required);
//! * `deployment.description`, `task`, `ref`, `sha` for the description;
//! * `deployment.payload.workloads` (array or `;`-separated string) or
//!   `deployment.payload.workload` naming the workloads, else the repository name from
//!   `repository.full_name` (`acme/checkout` deploys `checkout`);
//! * for `deployment_status`: `deployment_status.state` and `created_at`, and
//!   `deployment_status.environment` when set.
//!
//! States map as: `pending`, `queued`, `in_progress` → started; `success` → succeeded;
//! `failure`, `error` → failed; `inactive` (an older deployment superseded) → no event.

use serde_json::Value;

use crate::csv_table::split_workloads;
use crate::deployments::model::{DeploymentEvent, DeploymentPhase};
use crate::error::{Error, Problem};
use crate::json_lines::{Fields, kind_of};
use crate::time::json_time;

/// Parses one webhook delivery. `event` is the `X-GitHub-Event` header when the caller has it;
/// without it the kind is inferred from the payload. Returns `Ok(None)` for deliveries that say
/// nothing about a deployment's timing (`ping`, other event types, `inactive` statuses).
pub fn parse_github_webhook(
    name: &str,
    event: Option<&str>,
    body: &str,
) -> Result<Option<DeploymentEvent>, Error> {
    let body = crate::input::strip_bom(body);
    let root: Value = serde_json::from_str(body).map_err(|e| {
        Error::invalid(
            name,
            Some(e.line().max(1)),
            "json",
            Problem::Syntax {
                message: format!("not valid JSON: {e}"),
            },
        )
    })?;
    let top = Fields::of(name, None, "", "body", &root)?;
    let is_status = match event.map(str::trim) {
        Some("deployment") => false,
        Some("deployment_status") => true,
        Some(_) => return Ok(None),
        None => top.get("deployment_status").is_some(),
    };
    let deployment_value = top
        .get("deployment")
        .ok_or_else(|| top.error("deployment", Problem::Missing))?;
    let deployment = Fields::of(name, None, "deployment.", "deployment", deployment_value)?;

    let (phase, at, status_env) = if is_status {
        let status_value = top
            .get("deployment_status")
            .ok_or_else(|| top.error("deployment_status", Problem::Missing))?;
        let status = Fields::of(
            name,
            None,
            "deployment_status.",
            "deployment_status",
            status_value,
        )?;
        let state = status.str("state")?;
        let phase = match state {
            "pending" | "queued" | "in_progress" => DeploymentPhase::Started,
            "success" => DeploymentPhase::Succeeded,
            "failure" | "error" => DeploymentPhase::Failed,
            "inactive" => return Ok(None),
            other => {
                return Err(status.error(
                    "state",
                    Problem::BadValue {
                        value: other.to_string(),
                        expected: "pending, queued, in_progress, success, failure, error or \
                                   inactive"
                            .into(),
                    },
                ));
            }
        };
        (
            phase,
            timestamp(&status, "created_at")?,
            status.opt_str("environment")?,
        )
    } else {
        if top.opt_str("action")?.is_some_and(|a| a != "created") {
            return Ok(None);
        }
        (
            DeploymentPhase::Started,
            timestamp(&deployment, "created_at")?,
            None,
        )
    };

    let id = deployment
        .opt_id("id")?
        .ok_or_else(|| deployment.error("id", Problem::Missing))?;
    let environment = match status_env {
        Some(env) => env.to_string(),
        None => deployment.str("environment")?.to_string(),
    };
    Ok(Some(DeploymentEvent {
        id: Some(id),
        workloads: workloads(&top, &deployment)?,
        environment,
        at,
        phase,
        description: description(&deployment)?,
        source: name.to_string(),
    }))
}

/// A required RFC 3339 timestamp field.
fn timestamp(f: &Fields<'_>, field: &str) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    let v = f
        .get(field)
        .ok_or_else(|| f.error(field, Problem::Missing))?;
    json_time(v).map_err(|p| f.error(field, p))
}

/// Workloads from the deployment payload, else the repository name.
fn workloads(top: &Fields<'_>, deployment: &Fields<'_>) -> Result<Vec<String>, Error> {
    if let Some(payload) = deployment.get("payload").filter(|p| p.is_object()) {
        let p = Fields::of(deployment.input_name(), None, "", "payload", payload)?;
        let wrong = |field: &str, v: &Value| {
            deployment.error(
                &format!("payload.{field}"),
                Problem::BadValue {
                    value: kind_of(v).into(),
                    expected: "a string or an array of strings".into(),
                },
            )
        };
        for field in ["workloads", "workload"] {
            match p.get(field) {
                None => {}
                Some(Value::String(s)) => return Ok(split_workloads(s)),
                Some(Value::Array(items)) => {
                    let mut names = Vec::new();
                    for item in items {
                        match item {
                            Value::String(s) => names.extend(split_workloads(s)),
                            other => return Err(wrong(field, other)),
                        }
                    }
                    return Ok(names);
                }
                Some(other) => return Err(wrong(field, other)),
            }
        }
    }
    let repo_value = top
        .get("repository")
        .ok_or_else(|| top.error("repository", Problem::Missing))?;
    let repo = Fields::of(
        deployment.input_name(),
        None,
        "repository.",
        "repository",
        repo_value,
    )?;
    let full = repo.str("full_name")?;
    let short = full.rsplit('/').next().unwrap_or(full);
    Ok(vec![short.to_string()])
}

/// `description`, else `task ref@sha7`.
fn description(d: &Fields<'_>) -> Result<String, Error> {
    if let Some(text) = d.opt_str("description")? {
        return Ok(text.to_string());
    }
    let task = d.opt_str("task")?.unwrap_or("deploy");
    let reference = d.opt_str("ref")?.unwrap_or("");
    let sha: String = d.opt_str("sha")?.unwrap_or("").chars().take(7).collect();
    Ok(match (reference.is_empty(), sha.is_empty()) {
        (true, true) => task.to_string(),
        (false, true) => format!("{task} {reference}"),
        (true, false) => format!("{task} {sha}"),
        (false, false) => format!("{task} {reference}@{sha}"),
    })
}
