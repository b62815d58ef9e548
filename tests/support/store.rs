//! Reads the controller's SQLite store read-only, as an operator with `sqlite3` would, to see
//! what the controller really persisted.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

/// A read-only view of `data/umbra.sqlite`.
pub struct StoreReader(Connection);

/// One stored signal event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `deployment`, `sentiment_volume`, ...
    pub kind: String,
    /// Where it came from (`webhook`, `webhook:github`, ...).
    pub source: String,
    /// Its name.
    pub name: String,
    /// Unix ms.
    pub start_ms: i64,
    /// Unix ms.
    pub end_ms: i64,
    /// Comma-separated workloads (empty = all).
    pub workloads: String,
    /// Value, if any.
    pub value: Option<f64>,
    /// Dedup key.
    pub dedup_key: Option<String>,
}

impl StoreReader {
    /// Opens the store in a stack's data dir.
    pub fn open(data_dir: &Path) -> StoreReader {
        let path = data_dir.join("umbra.sqlite");
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        conn.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        StoreReader(conn)
    }

    /// Samples of one series, oldest first.
    pub fn samples(&self, workload: &str, pool: &str, resource: &str) -> Vec<(i64, f64)> {
        let mut stmt = self
            .0
            .prepare(
                "SELECT s.ts_ms, s.value FROM samples s JOIN series k ON k.id = s.series_id
                 WHERE k.workload = ?1 AND k.pool = ?2 AND k.resource = ?3 ORDER BY s.ts_ms",
            )
            .expect("prepare");
        stmt.query_map(params![workload, pool, resource], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// Events of `kind`, oldest first.
    pub fn events(&self, kind: &str) -> Vec<Event> {
        let mut stmt = self
            .0
            .prepare(
                "SELECT kind, source, name, start_ms, end_ms, workloads, value, dedup_key
                 FROM events WHERE kind = ?1 ORDER BY start_ms, id",
            )
            .expect("prepare");
        stmt.query_map(params![kind], |r| {
            Ok(Event {
                kind: r.get(0)?,
                source: r.get(1)?,
                name: r.get(2)?,
                start_ms: r.get(3)?,
                end_ms: r.get(4)?,
                workloads: r.get(5)?,
                value: r.get(6)?,
                dedup_key: r.get(7)?,
            })
        })
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
    }

    /// The stored migration phase of a workload as its JSON text (`None` if it never had one).
    pub fn phase(&self, workload: &str) -> Option<String> {
        self.0
            .query_row(
                "SELECT phase FROM migrations WHERE workload = ?1",
                params![workload],
                |r| r.get(0),
            )
            .ok()
    }

    /// The logged transitions of a workload, oldest first: (from, to, reason).
    pub fn transitions(&self, workload: &str) -> Vec<(String, String, String)> {
        let mut stmt = self
            .0
            .prepare(
                "SELECT from_phase, to_phase, reason FROM transitions WHERE workload = ?1
                 ORDER BY id",
            )
            .expect("prepare");
        stmt.query_map(params![workload], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    /// Samples of every series stored at or after `since_ms` (unix ms).
    pub fn samples_since(&self, since_ms: i64) -> i64 {
        self.0
            .query_row(
                "SELECT count(*) FROM samples WHERE ts_ms >= ?1",
                params![since_ms],
                |r| r.get(0),
            )
            .expect("count")
    }

    /// SQLite's own consistency check: `"ok"` or the problems it found.
    pub fn integrity_check(&self) -> String {
        let mut stmt = self.0.prepare("PRAGMA integrity_check").expect("prepare");
        let rows: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows.join("; ")
    }

    /// Every event, whatever its kind.
    pub fn event_count(&self) -> i64 {
        self.0
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .expect("count")
    }
}
