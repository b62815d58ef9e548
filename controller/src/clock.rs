//! Wall-clock time in unix milliseconds, read in one place so everything else takes `now`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Where the orchestrator reads the time: [`WallClock`] in production; tests drive one from
/// tokio's paused clock, so timeouts and stamps move together.
pub trait Clock: Send + Sync {
    /// Unix milliseconds now.
    fn unix_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock;

impl Clock for WallClock {
    fn unix_ms(&self) -> i64 {
        unix_ms()
    }
}
