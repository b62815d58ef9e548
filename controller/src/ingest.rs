//! External signals into the store: signal files at start-up, deployments and posts from
//! webhooks. Every input is parsed whole before anything is stored (all or nothing).

use chrono::{DateTime, TimeDelta, Utc};
use config::SignalFiles;

use crate::store::{Store, StoredEvent};

/// How long an unplanned deployment is assumed to disturb capacity.
const DEPLOY_WINDOW: TimeDelta = TimeDelta::minutes(30);

/// Why signals were not ingested.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The input is malformed (names file/line/field).
    #[error(transparent)]
    Signal(#[from] signals::Error),
    /// The store refused.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Aggregation grid.
    #[error("sentiment aggregation: {0}")]
    Grid(String),
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Reads every configured signal file and stores its events. Calendars are expanded over
/// `[now - back, now + ahead)`. Returns how many events were stored.
pub fn ingest_files(
    store: &Store,
    files: &SignalFiles,
    now: DateTime<Utc>,
    back: TimeDelta,
    ahead: TimeDelta,
) -> Result<usize, IngestError> {
    // Parse everything first: one bad file stores nothing from any file.
    let mut events = Vec::new();
    for path in &files.calendars {
        let cal = signals::load_ics(path)?;
        let occ = cal.occurrences(now - back, now + ahead, &signals::ExpandLimits::default());
        if !occ.truncated.is_empty() {
            tracing::warn!(file = %path.display(), events = ?occ.truncated, "recurring events truncated");
        }
        for e in occ.events {
            events.push(StoredEvent {
                kind: "calendar".into(),
                source: path.display().to_string(),
                dedup_key: Some(format!("ics:{}:{}:{}", path.display(), e.uid, ms(e.start))),
                name: e.name,
                start_ms: ms(e.start),
                end_ms: ms(e.end),
                workloads: Vec::new(),
                value: None,
            });
        }
    }
    for path in &files.campaigns {
        for (i, c) in signals::load_campaigns(path)?.into_iter().enumerate() {
            events.push(StoredEvent {
                kind: "campaign".into(),
                source: path.display().to_string(),
                name: format!("campaign {}", i + 1),
                start_ms: ms(c.start),
                end_ms: ms(c.end),
                dedup_key: Some(format!("campaign:{}:{}", path.display(), i)),
                workloads: c.workloads,
                value: Some(c.expected_uplift),
            });
        }
    }
    for path in &files.deployments {
        for d in signals::load_deploy_schedule(path, DEPLOY_WINDOW)? {
            events.push(deployment_event(d));
        }
    }
    for path in &files.sentiment {
        let posts = signals::load_posts(path)?;
        events.extend(sentiment_events(&posts, &path.display().to_string(), 300)?);
    }
    Ok(store.insert_events(&events)?)
}

fn deployment_event(d: signals::Deployment) -> StoredEvent {
    StoredEvent {
        kind: "deployment".into(),
        dedup_key: Some(format!("deploy:{}", d.id)),
        source: d.source,
        name: if d.description.is_empty() {
            format!("deploy {}", d.id)
        } else {
            d.description
        },
        start_ms: ms(d.start),
        end_ms: ms(d.end),
        workloads: d.workloads,
        value: None,
    }
}

/// Posts aggregated into `step_s` buckets of volume and mean VADER compound score.
fn sentiment_events(
    posts: &[signals::Post],
    source: &str,
    step_s: i64,
) -> Result<Vec<StoredEvent>, IngestError> {
    let buckets =
        signals::aggregate_posts(posts, 0, step_s).map_err(|e| IngestError::Grid(e.to_string()))?;
    let mut out = Vec::new();
    for b in buckets {
        for (kind, value) in [
            ("sentiment_volume", Some(b.volume as f64)),
            ("sentiment_compound", b.mean_compound),
        ] {
            let Some(value) = value else { continue };
            out.push(StoredEvent {
                kind: kind.into(),
                source: source.to_string(),
                name: kind.into(),
                start_ms: b.start * 1000,
                end_ms: b.end * 1000,
                workloads: Vec::new(),
                value: Some(value),
                dedup_key: Some(format!("{kind}:{source}:{}", b.start)),
            });
        }
    }
    Ok(out)
}

/// A deployment webhook body: GitHub's payload when `github_event` is set, else the generic
/// JSON (one object or JSON Lines). Returns how many deployments were stored.
pub fn ingest_deployment_webhook(
    store: &Store,
    github_event: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<usize, IngestError> {
    let events = match github_event {
        Some(kind) => signals::parse_github_webhook("webhook:github", Some(kind), body)?
            .into_iter()
            .collect(),
        None => signals::parse_deploy_events("webhook", body, now)?,
    };
    let deployments = signals::deployments_from_events(&events, DEPLOY_WINDOW);
    let rows: Vec<_> = deployments.into_iter().map(deployment_event).collect();
    Ok(store.insert_events(&rows)?)
}

/// A JSON Lines body of posts, scored and aggregated. Returns events stored.
pub fn ingest_posts(store: &Store, body: &str) -> Result<usize, IngestError> {
    let posts = signals::parse_posts("webhook:sentiment", body)?;
    let rows = sentiment_events(&posts, "webhook:sentiment", 300)?;
    Ok(store.insert_events(&rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_deployment_webhook_is_stored_once() {
        let store = Store::in_memory().expect("store");
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let body =
            r#"{"id": "d1", "workload": "api", "status": "started", "at": "2023-11-14T22:13:20Z"}"#;
        assert_eq!(
            ingest_deployment_webhook(&store, None, body, now).expect("ingest"),
            1
        );
        ingest_deployment_webhook(&store, None, body, now).expect("redelivery");
        let got = store.events("deployment", 0, i64::MAX).expect("read");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].workloads, vec!["api".to_string()]);
    }

    #[test]
    fn malformed_input_stores_nothing() {
        let store = Store::in_memory().expect("store");
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let body = "{\"id\": \"d1\", \"workload\": \"api\", \"status\": \"started\"}\n{\"workload\": \"x\", \"status\": \"exploded\"}\n";
        let err = ingest_deployment_webhook(&store, None, body, now).expect_err("bad status");
        assert!(err.to_string().contains(":2"), "{err}");
        assert!(
            store
                .events("deployment", 0, i64::MAX)
                .expect("read")
                .is_empty()
        );
        let err = ingest_posts(&store, "{\"timestamp\": 1, \"text\": \"ok\"}\nnot json\n")
            .expect_err("bad line");
        assert!(err.to_string().contains(":2"), "{err}");
        assert!(
            store
                .events("sentiment_volume", i64::MIN, i64::MAX)
                .expect("read")
                .is_empty()
        );
    }

    #[test]
    fn posts_become_volume_and_score_buckets() {
        let store = Store::in_memory().expect("store");
        let body = "{\"timestamp\": 600, \"text\": \"I love this, it is great!\"}\n{\"timestamp\": 700, \"text\": \"terrible outage, awful\"}\n";
        ingest_posts(&store, body).expect("ingest");
        let v = store.events("sentiment_volume", 0, i64::MAX).expect("read");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].value, Some(2.0));
        assert_eq!((v[0].start_ms, v[0].end_ms), (600_000, 900_000));
    }
}
