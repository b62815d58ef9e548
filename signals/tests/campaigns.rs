//! Campaign CSV: the example plan, and one test per rejection.

mod support;

use signals::{Error, Problem, load_campaigns, parse_campaigns};
use support::utc;

#[test]
fn example_plan() {
    let got = load_campaigns(support::example("campaigns.csv"));
    let Ok(got) = got else { panic!("{got:?}") };
    assert_eq!(got.len(), 4);
    let bf = &got[0];
    assert_eq!(bf.start, utc("2024-11-29T00:00:00Z"));
    // A bare-date end includes that day.
    assert_eq!(bf.end, utc("2024-12-03T00:00:00Z"));
    assert_eq!(bf.workloads, vec!["checkout", "search"]);
    assert!((bf.expected_uplift - 0.4).abs() < 1e-12);
    assert!(bf.applies_to("search") && !bf.applies_to("recommendations"));
    assert_eq!(got[1].start, utc("2024-11-25T08:00:00Z"));
    assert_eq!(got[2].start, utc("2024-12-10T18:00:00Z"));
    assert_eq!(got[2].end, utc("2024-12-10T22:00:00Z"));
    assert!(got[2].workloads.is_empty() && got[2].applies_to("anything"));
    assert_eq!(got[3].workloads, vec!["search", "recommendations"]);
}

#[test]
fn columns_in_any_order_with_crlf_and_bom() {
    let text = "\u{feff}expected_uplift,workloads,end,start\r\n0.5,a,2024-01-02,2024-01-01\r\n";
    let got = parse_campaigns("c.csv", text);
    let Ok(got) = got else { panic!("{got:?}") };
    assert_eq!(got[0].end, utc("2024-01-03T00:00:00Z"));
    assert_eq!(got[0].expected_uplift, 0.5);
}

/// Asserts the plan is rejected at `line`, `field`, with a matching problem, and that the
/// message names all three.
fn rejected(text: &str, line: usize, field: &str, check: fn(&Problem) -> bool) {
    let got = parse_campaigns("plan.csv", text);
    let Err(e) = got else {
        panic!("accepted: {text}")
    };
    let Error::Invalid {
        line: l,
        field: f,
        problem,
        ..
    } = &e
    else {
        panic!("{e}")
    };
    assert_eq!((*l, f.as_str()), (Some(line), field), "{e}");
    assert!(check(problem), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("plan.csv:{line}: field `{field}`")),
        "{e}"
    );
}

const HEADER: &str = "start,end,workloads,expected_uplift\n";

#[test]
fn rejects_bad_start() {
    rejected(
        &format!("{HEADER}2024-01-01,2024-01-02,a,1%\n29/11/2024,2024-12-01,a,1%\n"),
        3,
        "start",
        |p| matches!(p, Problem::BadTime { .. }),
    );
}

#[test]
fn rejects_missing_end() {
    rejected(&format!("{HEADER}2024-01-01,,a,1%\n"), 2, "end", |p| {
        *p == Problem::Missing
    });
}

#[test]
fn rejects_end_before_start() {
    rejected(
        &format!("{HEADER}2024-01-05 10:00,2024-01-05 09:00,a,1%\n"),
        2,
        "end",
        |p| matches!(p, Problem::EndNotAfterStart { .. }),
    );
}

#[test]
fn rejects_bad_uplift() {
    for uplift in ["thirty", "30", "-150%", ""] {
        rejected(
            &format!("{HEADER}2024-01-01,2024-01-02,a,{uplift}\n"),
            2,
            "expected_uplift",
            |p| matches!(p, Problem::BadNumber { .. } | Problem::Missing),
        );
    }
}

#[test]
fn rejects_unknown_column() {
    rejected(
        "start,end,workloads,expected_uplift,uplfit\n",
        1,
        "uplfit",
        |p| matches!(p, Problem::UnknownField { .. }),
    );
}

#[test]
fn rejects_missing_column() {
    rejected("start,end,workloads\n", 1, "expected_uplift", |p| {
        *p == Problem::Missing
    });
}

#[test]
fn rejects_ragged_row() {
    rejected(&format!("{HEADER}2024-01-01,2024-01-02\n"), 2, "row", |p| {
        matches!(p, Problem::Syntax { .. })
    });
}

#[test]
fn nothing_is_returned_when_a_later_row_is_bad() {
    let text = format!("{HEADER}2024-01-01,2024-01-02,a,1%\n2024-01-01,2024-01-02,a,oops\n");
    assert!(parse_campaigns("plan.csv", &text).is_err());
}

#[test]
fn unreadable_file_names_its_path() {
    let got = load_campaigns("/nonexistent/plan.csv");
    let Err(e) = got else { panic!("{got:?}") };
    assert!(matches!(&e, Error::Read { name, .. } if name == "/nonexistent/plan.csv"));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/plan.csv: cannot read"),
        "{e}"
    );
}
