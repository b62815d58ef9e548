//! CSV import (`timestamp,value` or `ds,y`) into the store.

use std::path::Path;

use crate::store::{Resource, SeriesKey, Store};

/// How to place an imported trace in time.
#[derive(Clone, Copy, Debug)]
pub struct Replay {
    /// Keep only the last this many points.
    pub last: Option<usize>,
    /// Respace points to this step (ms), e.g. to replay a 30-minute trace at one point a second.
    pub step_ms: Option<i64>,
    /// Shift the series so its last point lands at this unix ms.
    pub end_ms: Option<i64>,
    /// Multiply values (e.g. passengers -> requests/s).
    pub scale: f64,
}

impl Default for Replay {
    /// As recorded: every point, original times, unscaled.
    fn default() -> Self {
        Replay {
            last: None,
            step_ms: None,
            end_ms: None,
            scale: 1.0,
        }
    }
}

/// Reads `path` onto its own grid (gaps interpolated up to a limit) and stores it as the series
/// `(workload, pool, resource)`, placed in time by `replay`. All or nothing: a malformed file
/// stores nothing.
pub fn import_csv(
    store: &Store,
    path: &Path,
    workload: &str,
    pool: &str,
    resource: Resource,
    replay: Replay,
) -> anyhow::Result<usize> {
    let reg = forecast::read_series(path, &forecast::GridOptions::default())?;
    let s = &reg.series;
    let from = replay.last.map_or(0, |n| s.len().saturating_sub(n));
    let n = s.len() - from;
    let step_ms = replay.step_ms.unwrap_or(s.step * 1000);
    let first_ms = match replay.end_ms {
        Some(end) => end - (n as i64 - 1) * step_ms,
        None => s.time_at(from) * 1000,
    };
    let key = SeriesKey::new(workload, pool, resource);
    let rows: Vec<_> = s.values[from..]
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (key.clone(), first_ms + i as i64 * step_ms, v * replay.scale))
        .collect();
    Ok(store.append(&rows)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_a_trace_as_recent_history() {
        let dir = tempfile::tempdir().expect("tmp");
        let csv = dir.path().join("t.csv");
        std::fs::write(&csv, "timestamp,value\n2014-07-01 00:00:00,10\n2014-07-01 00:30:00,20\n2014-07-01 01:00:00,30\n")
            .expect("write");
        let store = Store::in_memory().expect("store");
        let replay = Replay {
            last: Some(2),
            step_ms: Some(1000),
            end_ms: Some(50_000),
            scale: 0.5,
        };
        assert_eq!(
            import_csv(&store, &csv, "api", "all", Resource::Rps, replay).expect("import"),
            2
        );
        let got = store
            .samples(&SeriesKey::new("api", "all", Resource::Rps), 0, i64::MAX)
            .expect("read");
        assert_eq!(got, vec![(49_000, 10.0), (50_000, 15.0)]);
    }
}
