//! The summary table, in Markdown so it can be pasted into the README as printed.

use std::fmt::Write as _;
use std::time::Duration;

use crate::summary::Row;

/// The table and, under it, one line of notes per scenario.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| scenario | sent | failed | failures by kind | p99 before | p99 during | p99 after | recover | state | target |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---|---|\n",
    );
    for r in rows {
        let kinds = if r.kinds.is_empty() {
            "-".to_string()
        } else {
            r.kinds
                .iter()
                .map(|(k, n)| format!("{k}×{n}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let target = match (r.met(), r.exempt) {
            (true, true) => "met (all down)",
            (true, false) => "met",
            (false, _) => "MISSED",
        };
        let _infallible = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            r.sent,
            r.failed,
            kinds,
            ms(r.p99[0]),
            ms(r.p99[1]),
            ms(r.p99[2]),
            r.recover
                .map_or_else(|| "-".to_string(), |d| format!("{:.1} s", d.as_secs_f64())),
            r.state,
            target,
        );
    }
    out.push('\n');
    for r in rows.iter().filter(|r| !r.notes.is_empty()) {
        let _infallible = writeln!(out, "- {}: {}", r.name, r.notes);
    }
    out
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "-".to_string(),
        |d| format!("{:.0} ms", d.as_secs_f64() * 1000.0),
    )
}
