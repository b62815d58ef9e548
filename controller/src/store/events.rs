//! External signals as stored events: calendar events, campaigns, deployments, sentiment.

use rusqlite::params;
use serde::Serialize;

use super::{Store, StoreError, ctx};

/// A stored signal event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// `calendar`, `campaign`, `deployment`, `sentiment_volume`, `sentiment_compound`.
    pub kind: String,
    /// Where it came from (file name, `webhook:github`, ...).
    pub source: String,
    /// Human name.
    pub name: String,
    /// Unix ms.
    pub start_ms: i64,
    /// Unix ms.
    pub end_ms: i64,
    /// Workloads it applies to (empty = all).
    pub workloads: Vec<String>,
    /// A value (campaign uplift, sentiment volume/score), if any.
    pub value: Option<f64>,
    /// Identity for idempotent re-ingestion (e.g. `github:deployment:123`).
    pub dedup_key: Option<String>,
}

impl Store {
    /// Stores events in one transaction: all or none. Events whose `dedup_key` is already
    /// stored replace the old row (a redelivered webhook is not counted twice).
    pub fn insert_events(&self, events: &[StoredEvent]) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(ctx("starting an event insert"))?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO events (kind, source, name, start_ms, end_ms, workloads, value, dedup_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(ctx("preparing an event insert"))?;
            for e in events {
                n += stmt
                    .execute(params![
                        e.kind,
                        e.source,
                        e.name,
                        e.start_ms,
                        e.end_ms,
                        e.workloads.join(","),
                        e.value,
                        e.dedup_key
                    ])
                    .map_err(ctx("inserting an event"))?;
            }
        }
        tx.commit().map_err(ctx("committing events"))?;
        Ok(n)
    }

    /// Events of `kind` overlapping `[from_ms, to_ms)`.
    pub fn events(
        &self,
        kind: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT kind, source, name, start_ms, end_ms, workloads, value, dedup_key FROM events
                 WHERE kind = ?1 AND end_ms > ?2 AND start_ms < ?3 ORDER BY start_ms",
            )
            .map_err(ctx("reading events"))?;
        let rows = stmt
            .query_map(params![kind, from_ms, to_ms], |r| {
                let workloads: String = r.get(5)?;
                Ok(StoredEvent {
                    kind: r.get(0)?,
                    source: r.get(1)?,
                    name: r.get(2)?,
                    start_ms: r.get(3)?,
                    end_ms: r.get(4)?,
                    workloads: workloads
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                    value: r.get(6)?,
                    dedup_key: r.get(7)?,
                })
            })
            .map_err(ctx("reading events"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(ctx("reading events"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(key: Option<&str>, start: i64) -> StoredEvent {
        StoredEvent {
            kind: "deployment".into(),
            source: "webhook:github".into(),
            name: "deploy".into(),
            start_ms: start,
            end_ms: start + 10,
            workloads: vec!["api".into()],
            value: None,
            dedup_key: key.map(str::to_string),
        }
    }

    #[test]
    fn redelivery_is_idempotent() {
        let s = Store::in_memory().expect("store");
        s.insert_events(&[ev(Some("gh:1"), 100), ev(None, 200)])
            .expect("insert");
        s.insert_events(&[ev(Some("gh:1"), 150)])
            .expect("redeliver");
        let got = s.events("deployment", 0, 1000).expect("read");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].start_ms, 150);
        assert_eq!(got[0].workloads, vec!["api".to_string()]);
        assert!(s.events("deployment", 300, 400).expect("read").is_empty());
    }
}
