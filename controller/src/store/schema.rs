//! The store's schema and its versioned migrations.

use rusqlite::Connection;

use super::{StoreError, ctx};

/// Each entry upgrades the schema by one version; never edit a shipped entry, append.
const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE series (
        id INTEGER PRIMARY KEY,
        workload TEXT NOT NULL,
        pool TEXT NOT NULL,
        resource TEXT NOT NULL,
        UNIQUE (workload, pool, resource)
     );
     CREATE TABLE samples (
        series_id INTEGER NOT NULL REFERENCES series(id),
        ts_ms INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (series_id, ts_ms)
     ) WITHOUT ROWID;
     CREATE TABLE migrations (
        workload TEXT PRIMARY KEY,
        phase TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
     );
     CREATE TABLE transitions (
        id INTEGER PRIMARY KEY,
        ts_ms INTEGER NOT NULL,
        workload TEXT NOT NULL,
        from_phase TEXT NOT NULL,
        to_phase TEXT NOT NULL,
        reason TEXT NOT NULL
     );
     CREATE INDEX transitions_by_workload ON transitions (workload, ts_ms);
     CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        name TEXT NOT NULL,
        start_ms INTEGER NOT NULL,
        end_ms INTEGER NOT NULL,
        workloads TEXT NOT NULL,
        value REAL,
        dedup_key TEXT UNIQUE
     );
     CREATE INDEX events_by_time ON events (kind, start_ms);",
];

pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(ctx("reading schema version"))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let next = i as i64 + 1;
        let tx_sql = format!("BEGIN; {sql}; PRAGMA user_version = {next}; COMMIT;");
        conn.execute_batch(&tx_sql)
            .map_err(ctx(format!("upgrading schema to v{next}")))?;
    }
    Ok(())
}
