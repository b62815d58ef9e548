//! CSV import (`timestamp,value` or `ds,y`) into the store.

use std::path::Path;

use crate::store::{Resource, SeriesKey, Store};

/// Reads `path` onto its own grid (gaps interpolated up to a limit) and stores it as the series
/// `(workload, pool, resource)`. All or nothing: a malformed file stores nothing.
pub fn import_csv(
    store: &Store,
    path: &Path,
    workload: &str,
    pool: &str,
    resource: Resource,
) -> anyhow::Result<usize> {
    let reg = forecast::read_series(path, &forecast::GridOptions::default())?;
    let key = SeriesKey::new(workload, pool, resource);
    let rows: Vec<_> = reg
        .series
        .values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (key.clone(), reg.series.time_at(i) * 1000, *v))
        .collect();
    Ok(store.append(&rows)?)
}
