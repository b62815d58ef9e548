//! Every request's outcome and latency, stamped with when it was sent.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How one request ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// 2xx with the whole body.
    Ok,
    /// The connection to the proxy could not be made (refused, unreachable).
    Connect,
    /// No complete answer within the client's timeout.
    Timeout,
    /// The connection failed after it was made: reset, closed early, body cut short.
    Reset,
    /// An answer with this non-2xx status.
    Status(u16),
}

impl Outcome {
    /// The label in the failure breakdown.
    pub fn label(self) -> String {
        match self {
            Outcome::Ok => "ok".into(),
            Outcome::Connect => "connect".into(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Reset => "reset".into(),
            Outcome::Status(s) => s.to_string(),
        }
    }
}

/// One request.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When it was sent, from the recorder's start.
    pub sent: Duration,
    /// From sending to the end of the body (or the failure).
    pub latency: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

impl Sample {
    /// When it finished, from the recorder's start.
    pub fn done(&self) -> Duration {
        self.sent + self.latency
    }
}

/// A shared, append-only log of requests; clones share it.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Recorder {
    /// An empty log whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            samples: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The recorder's clock now.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// The recorder's clock reading for `at`.
    pub fn at(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start)
    }

    /// Appends one request.
    pub fn push(&self, sample: Sample) {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(sample);
    }

    /// A copy of everything so far.
    pub fn snapshot(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Takes everything so far, leaving the log empty (the soak's periodic windows).
    pub fn drain(&self) -> Vec<Sample> {
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
