//! Planned deployments from a CSV schedule (CSV rather than TOML so it can live in the same
//! spreadsheet as the campaign plan).
//!
//! ```text
//! start,end,workloads,description
//! 2024-11-26 14:00,2024-11-26 15:00,checkout,Checkout v2.3 rollout
//! 2024-11-27T09:00:00Z,,search|recommendations,Index rebuild
//! ```
//!
//! * `start` (required), `end` (optional): RFC 3339, `YYYY-MM-DD` or `YYYY-MM-DD HH:MM[:SS]`
//!   (UTC). An empty `end` means `start + default_window`; a bare-date `end` includes that day.
//! * `workloads`: separated by `;` or `|`; empty means all.
//! * `description`: free text, may be empty.
//! * optional columns `id` (default `NAME:LINE`) and `environment` (default `production`).

use chrono::TimeDelta;

use crate::csv_table::{read_table, split_workloads};
use crate::deployments::model::{Deployment, DeploymentStatus};
use crate::error::{Error, Problem};
use crate::time::parse_written_time;

/// Parses a deployment schedule; `default_window` is the length of rows without an `end`.
pub fn parse_deploy_schedule(
    name: &str,
    text: &str,
    default_window: TimeDelta,
) -> Result<Vec<Deployment>, Error> {
    let table = read_table(
        name,
        text,
        &["start", "end", "workloads", "description"],
        &["id", "environment"],
    )?;
    let mut out = Vec::with_capacity(table.rows.len());
    for (line, row) in &table.rows {
        let at = |field: &str, problem| Error::invalid(name, Some(*line), field, problem);
        let start = parse_written_time(table.cell(row, "start"))
            .map_err(|p| at("start", p))?
            .at;
        let end = match table.cell(row, "end") {
            "" => start.checked_add_signed(default_window).unwrap_or(start),
            text => parse_written_time(text).map_err(|p| at("end", p))?.as_end(),
        };
        if end <= start {
            return Err(at(
                "end",
                Problem::EndNotAfterStart {
                    start: start.to_rfc3339(),
                    end: end.to_rfc3339(),
                },
            ));
        }
        let id = match table.cell(row, "id") {
            "" => format!("{name}:{line}"),
            id => id.to_string(),
        };
        let environment = match table.cell(row, "environment") {
            "" => "production",
            env => env,
        };
        out.push(Deployment {
            id,
            workloads: split_workloads(table.cell(row, "workloads")),
            environment: environment.to_string(),
            start,
            end,
            status: DeploymentStatus::Planned,
            description: table.cell(row, "description").to_string(),
            source: name.to_string(),
        });
    }
    Ok(out)
}

/// Reads and parses a deployment schedule; the path is the input's name.
pub fn load_deploy_schedule(
    path: impl AsRef<std::path::Path>,
    default_window: TimeDelta,
) -> Result<Vec<Deployment>, Error> {
    let path = path.as_ref();
    parse_deploy_schedule(
        &path.display().to_string(),
        &crate::input::read_text(path)?,
        default_window,
    )
}
