//! Deployments: the generic JSON feed, GitHub webhooks, the CSV schedule, pairing into windows,
//! and one test per rejection.

mod support;

use chrono::TimeDelta;
use signals::{
    DeploymentPhase, DeploymentStatus, Error, Problem, deployments_from_events, load_deploy_events,
    load_deploy_schedule, parse_deploy_events, parse_deploy_schedule, parse_github_webhook,
};
use support::{read_fixture, utc};

#[test]
fn example_feed_pairs_into_windows() {
    let now = utc("2024-11-28T12:00:00Z");
    let events = load_deploy_events(support::example("deploy-events.jsonl"), now);
    let Ok(events) = events else {
        panic!("{events:?}")
    };
    assert_eq!(events.len(), 5);
    assert_eq!(events[0].id.as_deref(), Some("rel-2041"));
    assert_eq!(events[0].description, "v2.3.0");
    assert_eq!(events[2].at, utc("2024-11-27T10:00:00Z"));
    assert_eq!(events[2].environment, "production");
    // No timestamp: the caller's `now`.
    assert_eq!(events[4].at, now);

    let deployments = deployments_from_events(&events, TimeDelta::minutes(30));
    let got: Vec<(&str, String, String, DeploymentStatus)> = deployments
        .iter()
        .map(|d| {
            (
                d.workloads[0].as_str(),
                d.start.to_rfc3339(),
                d.end.to_rfc3339(),
                d.status,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "checkout",
                "2024-11-26T14:02:11+00:00".into(),
                "2024-11-26T14:19:40+00:00".into(),
                DeploymentStatus::Succeeded
            ),
            (
                "search",
                "2024-11-27T10:00:00+00:00".into(),
                "2024-11-27T10:30:00+00:00".into(),
                DeploymentStatus::Failed
            ),
            (
                "recommendations",
                "2024-11-28T12:00:00+00:00".into(),
                "2024-11-28T12:30:00+00:00".into(),
                DeploymentStatus::InProgress
            ),
        ]
    );
}

#[test]
fn github_deployment_and_status_make_one_window() {
    let created = parse_github_webhook(
        "hook",
        Some("deployment"),
        &read_fixture("github_deployment_created.json"),
    );
    let Ok(Some(created)) = created else {
        panic!("{created:?}")
    };
    assert_eq!(created.id.as_deref(), Some("1893345120"));
    assert_eq!(created.workloads, vec!["checkout", "checkout-worker"]);
    assert_eq!(created.environment, "production");
    assert_eq!(created.at, utc("2024-11-26T14:02:11Z"));
    assert_eq!(created.phase, DeploymentPhase::Started);
    assert_eq!(created.description, "deploy v2.3.0@3f9c2d1");

    // No event header: the kind is inferred from the payload.
    let status = parse_github_webhook(
        "hook",
        None,
        &read_fixture("github_deployment_status_success.json"),
    );
    let Ok(Some(status)) = status else {
        panic!("{status:?}")
    };
    assert_eq!(status.phase, DeploymentPhase::Succeeded);
    assert_eq!(status.at, utc("2024-11-26T14:19:40Z"));
    // Empty deployment payload: the repository name is the workload.
    assert_eq!(status.workloads, vec!["checkout"]);

    let windows = deployments_from_events(&[status, created], TimeDelta::minutes(30));
    assert_eq!(windows.len(), 1);
    assert_eq!(windows[0].start, utc("2024-11-26T14:02:11Z"));
    assert_eq!(windows[0].end, utc("2024-11-26T14:19:40Z"));
    assert_eq!(windows[0].status, DeploymentStatus::Succeeded);
}

#[test]
fn github_deliveries_without_timing_are_skipped() {
    let ping = r#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
    assert!(matches!(
        parse_github_webhook("hook", Some("ping"), ping),
        Ok(None)
    ));
    let inactive = read_fixture("github_deployment_status_success.json")
        .replace("\"state\": \"success\"", "\"state\": \"inactive\"");
    assert!(matches!(
        parse_github_webhook("hook", Some("deployment_status"), &inactive),
        Ok(None)
    ));
}

#[test]
fn example_schedule() {
    let got = load_deploy_schedule(support::example("deployments.csv"), TimeDelta::minutes(30));
    let Ok(got) = got else { panic!("{got:?}") };
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].start, utc("2024-11-26T14:00:00Z"));
    assert_eq!(got[0].end, utc("2024-11-26T15:00:00Z"));
    assert_eq!(got[0].status, DeploymentStatus::Planned);
    assert_eq!(got[0].description, "Checkout v2.3 rollout");
    // Empty end: start + default window.
    assert_eq!(got[1].end, utc("2024-11-27T09:30:00Z"));
    assert_eq!(got[1].workloads, vec!["search", "recommendations"]);
    assert!(got[2].workloads.is_empty() && got[2].applies_to("checkout"));
    assert_eq!(got[3].environment, "staging");
    assert!(got[0].id.ends_with("deployments.csv:4"), "{}", got[0].id);
}

/// Asserts `result` is an `Invalid` error at `line` and `field` with a matching problem.
fn rejected<T: std::fmt::Debug>(
    result: Result<T, Error>,
    line: Option<usize>,
    field: &str,
    check: fn(&Problem) -> bool,
) {
    let Err(e) = result else {
        panic!("accepted: {result:?}")
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
    assert_eq!((*l, f.as_str()), (line, field), "{e}");
    assert!(check(problem), "{e}");
    assert!(e.to_string().contains(&format!("field `{field}`")), "{e}");
}

fn feed(text: &str) -> Result<Vec<signals::DeploymentEvent>, Error> {
    parse_deploy_events("feed.jsonl", text, utc("2024-01-01T00:00:00Z"))
}

const OK_LINE: &str = r#"{"workload": "a", "status": "started"}"#;

#[test]
fn rejects_unknown_event_field() {
    rejected(
        feed(&format!(
            "{OK_LINE}\n{{\"workload\": \"a\", \"status\": \"started\", \"timestamp\": \"2024-01-01\", \"enviroment\": \"prod\"}}\n"
        )),
        Some(2),
        "enviroment",
        |p| matches!(p, Problem::UnknownField { .. }),
    );
}

#[test]
fn rejects_bad_status() {
    rejected(
        feed(r#"{"workload": "a", "status": "done"}"#),
        Some(1),
        "status",
        |p| matches!(p, Problem::BadValue { .. }),
    );
}

#[test]
fn rejects_missing_workload() {
    rejected(
        feed(&format!("{OK_LINE}\n\n{{\"status\": \"started\"}}")),
        Some(3),
        "workload",
        |p| *p == Problem::Missing,
    );
}

#[test]
fn rejects_bad_event_time() {
    rejected(
        feed(r#"{"workload": "a", "status": "started", "at": "yesterday"}"#),
        Some(1),
        "at",
        |p| matches!(p, Problem::BadTime { .. }),
    );
    rejected(
        feed(r#"{"workload": "a", "status": "started", "timestamp": 1704067200000}"#),
        Some(1),
        "timestamp",
        |p| matches!(p, Problem::BadTime { .. }),
    );
    rejected(
        feed(r#"{"workload": "a", "status": "started", "at": 1, "timestamp": 2}"#),
        Some(1),
        "timestamp",
        |p| matches!(p, Problem::BadValue { .. }),
    );
}

#[test]
fn rejects_broken_json_line() {
    rejected(
        feed(&format!("{OK_LINE}\n{{\"workload\": \"a\",\n")),
        Some(3),
        "json",
        |p| matches!(p, Problem::Syntax { .. }),
    );
    rejected(feed("[1, 2]"), Some(1), "event", |p| {
        matches!(p, Problem::BadValue { .. })
    });
}

#[test]
fn rejects_github_payload_without_created_at() {
    let body = read_fixture("github_deployment_created.json")
        .replace("\"created_at\": \"2024-11-26T14:02:11Z\",", "");
    rejected(
        parse_github_webhook("hook", Some("deployment"), &body),
        None,
        "deployment.created_at",
        |p| *p == Problem::Missing,
    );
}

#[test]
fn rejects_github_unknown_state() {
    let body = read_fixture("github_deployment_status_success.json")
        .replace("\"state\": \"success\"", "\"state\": \"exploded\"");
    rejected(
        parse_github_webhook("hook", None, &body),
        None,
        "deployment_status.state",
        |p| matches!(p, Problem::BadValue { .. }),
    );
}

#[test]
fn rejects_github_body_that_is_not_json() {
    rejected(
        parse_github_webhook("hook", Some("deployment"), "payload=%7B%22action"),
        Some(1),
        "json",
        |p| matches!(p, Problem::Syntax { .. }),
    );
}

#[test]
fn rejects_schedule_end_before_start() {
    rejected(
        parse_deploy_schedule(
            "plan.csv",
            "start,end,workloads,description\n2024-01-02,2024-01-01 12:00,a,x\n",
            TimeDelta::minutes(30),
        ),
        Some(2),
        "end",
        |p| matches!(p, Problem::EndNotAfterStart { .. }),
    );
}

#[test]
fn rejects_schedule_unknown_column() {
    rejected(
        parse_deploy_schedule(
            "plan.csv",
            "start,end,workloads,description,owner\n",
            TimeDelta::minutes(30),
        ),
        Some(1),
        "owner",
        |p| matches!(p, Problem::UnknownField { .. }),
    );
}
