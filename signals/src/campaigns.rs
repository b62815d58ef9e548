//! Marketing campaigns from a CSV plan: when, for which workloads, and how much extra demand.
//!
//! Format (header required, columns in any order, `#` lines are comments):
//!
//! ```text
//! start,end,workloads,expected_uplift
//! 2024-11-29,2024-12-02,checkout;search,30%
//! 2024-12-10T18:00:00Z,2024-12-10 22:00,,0.15
//! ```
//!
//! * `start`, `end`: RFC 3339, `YYYY-MM-DD` or `YYYY-MM-DD HH:MM[:SS]` (UTC). A bare-date `end`
//!   includes that day (the campaign above runs through 2 December).
//! * `workloads`: names separated by `;` or `|`; empty means every workload.
//! * `expected_uplift`: a fraction (`0.3`) or a percentage (`30%`) of extra demand, above -100%;
//!   bare fractions above 10 are refused as likely percentages missing their `%`.

use chrono::{DateTime, Utc};

use crate::csv_table::{read_table, split_workloads};
use crate::error::{Error, Problem};
use crate::time::parse_written_time;

/// One campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct Campaign {
    /// First instant of the campaign.
    pub start: DateTime<Utc>,
    /// End of the campaign, exclusive.
    pub end: DateTime<Utc>,
    /// Workloads it drives; empty means all.
    pub workloads: Vec<String>,
    /// Expected extra demand as a fraction: 0.3 is +30%.
    pub expected_uplift: f64,
}

impl Campaign {
    /// True when the campaign drives `workload` (always, for an all-workload campaign).
    pub fn applies_to(&self, workload: &str) -> bool {
        self.workloads.is_empty() || self.workloads.iter().any(|w| w == workload)
    }
}

/// The accepted uplift forms, for error messages.
const UPLIFT_FORMS: &str =
    "a fraction above -1 and at most 10 (0.3) or a percentage above -100% (30%)";

/// Parses a campaign plan. All rows are checked before anything is returned.
pub fn parse_campaigns(name: &str, text: &str) -> Result<Vec<Campaign>, Error> {
    let table = read_table(
        name,
        text,
        &["start", "end", "workloads", "expected_uplift"],
        &[],
    )?;
    let mut out = Vec::with_capacity(table.rows.len());
    for (line, row) in &table.rows {
        let at = |field: &str, problem| Error::invalid(name, Some(*line), field, problem);
        let start = parse_written_time(table.cell(row, "start")).map_err(|p| at("start", p))?;
        let end = parse_written_time(table.cell(row, "end")).map_err(|p| at("end", p))?;
        let (start, end) = (start.at, end.as_end());
        if end <= start {
            return Err(at(
                "end",
                Problem::EndNotAfterStart {
                    start: start.to_rfc3339(),
                    end: end.to_rfc3339(),
                },
            ));
        }
        let expected_uplift = parse_uplift(table.cell(row, "expected_uplift"))
            .map_err(|p| at("expected_uplift", p))?;
        out.push(Campaign {
            start,
            end,
            workloads: split_workloads(table.cell(row, "workloads")),
            expected_uplift,
        });
    }
    Ok(out)
}

/// Reads and parses a campaign CSV; the path is the input's name.
pub fn load_campaigns(path: impl AsRef<std::path::Path>) -> Result<Vec<Campaign>, Error> {
    let path = path.as_ref();
    parse_campaigns(&path.display().to_string(), &crate::input::read_text(path)?)
}

/// `0.3`, `30%`, `+30 %`, `-10%` → fraction.
fn parse_uplift(cell: &str) -> Result<f64, Problem> {
    let s = cell.trim();
    if s.is_empty() {
        return Err(Problem::Missing);
    }
    let bad = || Problem::BadNumber {
        value: s.to_string(),
        expected: UPLIFT_FORMS,
    };
    let (number, percent) = match s.strip_suffix('%') {
        Some(n) => (n.trim(), true),
        None => (s, false),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let fraction = if percent { value / 100.0 } else { value };
    let upper = if percent { f64::MAX } else { 10.0 };
    if !fraction.is_finite() || fraction <= -1.0 || fraction > upper {
        return Err(bad());
    }
    Ok(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplift_forms() {
        assert_eq!(parse_uplift("0.3"), Ok(0.3));
        assert_eq!(parse_uplift("30%"), Ok(0.3));
        assert_eq!(parse_uplift("+30 %"), Ok(0.3));
        assert_eq!(parse_uplift("-10%"), Ok(-0.1));
        assert_eq!(parse_uplift("1500%"), Ok(15.0));
        assert_eq!(parse_uplift(""), Err(Problem::Missing));
        for bad in ["30", "-100%", "-1", "NaN", "inf%", "thirty", "0.3.1"] {
            assert!(
                matches!(parse_uplift(bad), Err(Problem::BadNumber { .. })),
                "{bad}"
            );
        }
    }
}
