//! Time series samples keyed by workload, pool and resource; append-only.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, ctx};

/// What a series measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Requests per second.
    Rps,
    /// CPU (cores or %; as the source reports it).
    Cpu,
    /// Memory (bytes).
    Memory,
    /// Storage (bytes).
    Storage,
    /// Network (bytes/s).
    Network,
    /// p99 latency in milliseconds (from proxy histograms).
    LatencyMs,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 6] = [
        Resource::Rps,
        Resource::Cpu,
        Resource::Memory,
        Resource::Storage,
        Resource::Network,
        Resource::LatencyMs,
    ];

    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Rps => "rps",
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Storage => "storage",
            Resource::Network => "network",
            Resource::LatencyMs => "latency_ms",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Identity of one series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SeriesKey {
    /// Workload name.
    pub workload: String,
    /// `primary`, `shadow` or `all` (the workload's total demand).
    pub pool: String,
    /// What it measures.
    pub resource: Resource,
}

impl SeriesKey {
    /// A key.
    pub fn new(workload: &str, pool: &str, resource: Resource) -> Self {
        SeriesKey {
            workload: workload.to_string(),
            pool: pool.to_string(),
            resource,
        }
    }
}

impl Store {
    fn series_id(
        tx: &rusqlite::Connection,
        key: &SeriesKey,
        create: bool,
    ) -> Result<Option<i64>, StoreError> {
        let find = || {
            tx.query_row(
                "SELECT id FROM series WHERE workload = ?1 AND pool = ?2 AND resource = ?3",
                params![key.workload, key.pool, key.resource.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(ctx("looking up a series"))
        };
        if let Some(id) = find()? {
            return Ok(Some(id));
        }
        if !create {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO series (workload, pool, resource) VALUES (?1, ?2, ?3)",
            params![key.workload, key.pool, key.resource.as_str()],
        )
        .map_err(ctx("creating a series"))?;
        Ok(Some(tx.last_insert_rowid()))
    }

    /// Appends samples in one transaction: all are stored or none. A sample at an existing
    /// timestamp replaces the old value (a re-import is idempotent).
    pub fn append(&self, samples: &[(SeriesKey, i64, f64)]) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(ctx("starting an append"))?;
        let mut written = 0;
        {
            let mut ids = std::collections::HashMap::new();
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO samples (series_id, ts_ms, value) VALUES (?1, ?2, ?3)",
                )
                .map_err(ctx("preparing an append"))?;
            for (key, ts, value) in samples {
                if !value.is_finite() {
                    continue;
                }
                let id = match ids.get(key) {
                    Some(id) => *id,
                    None => {
                        let id = Self::series_id(&tx, key, true)?.unwrap_or_default();
                        ids.insert(key.clone(), id);
                        id
                    }
                };
                written += insert
                    .execute(params![id, ts, value])
                    .map_err(ctx("appending a sample"))?;
            }
        }
        tx.commit().map_err(ctx("committing an append"))?;
        Ok(written)
    }

    /// Samples of one series with `from_ms <= ts < to_ms`, oldest first.
    pub fn samples(
        &self,
        key: &SeriesKey,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let conn = self.conn();
        let Some(id) = Self::series_id(&conn, key, false)? else {
            return Ok(Vec::new());
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT ts_ms, value FROM samples WHERE series_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms",
            )
            .map_err(ctx("preparing a range read"))?;
        let rows = stmt
            .query_map(params![id, from_ms, to_ms], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(ctx("reading a range"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(ctx("reading a range"))
    }

    /// Every series the store holds.
    pub fn series(&self) -> Result<Vec<SeriesKey>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT workload, pool, resource FROM series ORDER BY workload, pool, resource",
            )
            .map_err(ctx("listing series"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(ctx("listing series"))?;
        let mut out = Vec::new();
        for row in rows {
            let (w, p, r) = row.map_err(ctx("listing series"))?;
            if let Some(resource) = Resource::parse(&r) {
                out.push(SeriesKey {
                    workload: w,
                    pool: p,
                    resource,
                });
            }
        }
        Ok(out)
    }

    /// Deletes samples older than `before_ms` (retention).
    pub fn prune(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.conn()
            .execute("DELETE FROM samples WHERE ts_ms < ?1", params![before_ms])
            .map_err(ctx("pruning old samples"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_replace_and_prune() {
        let s = Store::in_memory().expect("store");
        let k = SeriesKey::new("api", "all", Resource::Rps);
        let other = SeriesKey::new("api", "shadow", Resource::Rps);
        s.append(&[
            (k.clone(), 1000, 1.0),
            (k.clone(), 2000, 2.0),
            (other.clone(), 1000, 9.0),
        ])
        .expect("append");
        s.append(&[(k.clone(), 2000, 3.0), (k.clone(), 3000, f64::NAN)])
            .expect("append");
        assert_eq!(
            s.samples(&k, 0, 10_000).expect("read"),
            vec![(1000, 1.0), (2000, 3.0)]
        );
        assert_eq!(
            s.samples(&k, 1500, 10_000).expect("read"),
            vec![(2000, 3.0)]
        );
        assert_eq!(s.series().expect("list").len(), 2);
        assert_eq!(s.prune(1500).expect("prune"), 2);
        assert_eq!(s.samples(&other, 0, 10_000).expect("read"), vec![]);
        assert!(
            s.samples(&SeriesKey::new("x", "all", Resource::Cpu), 0, 1)
                .expect("read")
                .is_empty()
        );
    }
}
