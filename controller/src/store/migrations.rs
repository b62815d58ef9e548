//! The persisted migration phase of each workload and the log of every transition.

use policies::Phase;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, ctx};

/// One logged transition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Transition {
    /// Unix ms.
    pub ts_ms: i64,
    /// Workload.
    pub workload: String,
    /// Phase name before.
    pub from: String,
    /// Phase name after.
    pub to: String,
    /// Why, in words.
    pub reason: String,
}

impl Store {
    /// The stored phase of a workload (`None` if it never had one).
    pub fn phase(&self, workload: &str) -> Result<Option<Phase>, StoreError> {
        let conn = self.conn();
        let text: Option<String> = conn
            .query_row(
                "SELECT phase FROM migrations WHERE workload = ?1",
                params![workload],
                |r| r.get(0),
            )
            .optional()
            .map_err(ctx("reading a migration phase"))?;
        // An unreadable phase (written by a future version) is treated as unknown: the caller
        // recovers from `Idle`, which pins the weight to 0 — the safe side.
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Stores `to` and logs the transition atomically, so the log and the state never disagree.
    pub fn transition(
        &self,
        workload: &str,
        from: &Phase,
        to: &Phase,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(to).unwrap_or_else(|_| "{\"phase\":\"idle\"}".to_string());
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(ctx("starting a transition"))?;
        tx.execute(
            "INSERT INTO migrations (workload, phase, updated_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (workload) DO UPDATE SET phase = excluded.phase, updated_ms = excluded.updated_ms",
            params![workload, json, now_ms],
        )
        .map_err(ctx("storing a migration phase"))?;
        if from != to {
            log(&tx, workload, from, to, reason, now_ms)?;
        }
        tx.commit().map_err(ctx("committing a transition"))
    }

    /// Logs a transition whose phase is kept elsewhere (a ConfigMap, under leader election).
    pub fn log_transition(
        &self,
        workload: &str,
        from: &Phase,
        to: &Phase,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if from == to {
            return Ok(());
        }
        log(&self.conn(), workload, from, to, reason, now_ms)
    }

    /// The most recent transitions (newest first), optionally of one workload.
    pub fn transitions(
        &self,
        workload: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Transition>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT ts_ms, workload, from_phase, to_phase, reason FROM transitions
                 WHERE ?1 IS NULL OR workload = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(ctx("reading transitions"))?;
        let rows = stmt
            .query_map(params![workload, limit as i64], |r| {
                Ok(Transition {
                    ts_ms: r.get(0)?,
                    workload: r.get(1)?,
                    from: r.get(2)?,
                    to: r.get(3)?,
                    reason: r.get(4)?,
                })
            })
            .map_err(ctx("reading transitions"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(ctx("reading transitions"))
    }
}

fn log(
    conn: &rusqlite::Connection,
    workload: &str,
    from: &Phase,
    to: &Phase,
    reason: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO transitions (ts_ms, workload, from_phase, to_phase, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![now_ms, workload, from.name(), to.name(), reason],
    )
    .map(drop)
    .map_err(ctx("logging a transition"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_round_trip_and_log() {
        let s = Store::in_memory().expect("store");
        assert_eq!(s.phase("api").expect("read"), None);
        let ramp = Phase::Ramping {
            weight: 0.2,
            step_since_ms: 5,
        };
        s.transition("api", &Phase::Idle, &ramp, "shortage predicted", 10)
            .expect("write");
        assert_eq!(s.phase("api").expect("read"), Some(ramp.clone()));
        s.transition("api", &ramp, &ramp, "", 11)
            .expect("same phase");
        let log = s.transitions(Some("api"), 10).expect("log");
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].from.as_str(), log[0].to.as_str()),
            ("idle", "ramping")
        );
    }
}
