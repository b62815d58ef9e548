//! A monotonic millisecond clock shared by the request path, the guard and health checks.

use std::sync::OnceLock;
use std::time::Instant;

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Milliseconds since the process first asked; never goes backwards.
pub fn now_ms() -> u64 {
    origin().elapsed().as_millis() as u64
}
