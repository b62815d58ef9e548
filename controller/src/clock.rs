//! Wall-clock time in unix milliseconds, read in one place so everything else takes `now`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
