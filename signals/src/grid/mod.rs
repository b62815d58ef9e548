//! Signals on a regular time grid, in plain types (`i64` unix seconds, `f64` vectors) that the
//! forecaster takes without depending on this crate.

mod coverage;
mod regressors;
mod sentiment;

pub use regressors::{
    EventWindow, Regressor, campaign_active, campaign_uplift, deployment_indicator,
    event_indicator, event_windows,
};
pub use sentiment::{SentimentSeries, sentiment_regressors};

/// A regular grid: point `i` stands for the interval `[start + i·step, start + (i+1)·step)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Unix seconds of the first point.
    pub start: i64,
    /// Seconds between points, > 0.
    pub step: i64,
    /// Number of points.
    pub len: usize,
}

/// Why a grid or interval size was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GridError {
    /// The step is not positive.
    #[error("step must be a positive number of seconds, got {0}")]
    Step(i64),
    /// The grid is longer than [`Grid::MAX_LEN`] or ends past the range of `i64` seconds.
    #[error("grid of {len} points of {step} s from {start} is too long")]
    TooLong {
        /// Requested start.
        start: i64,
        /// Requested step.
        step: i64,
        /// Requested length.
        len: usize,
    },
}

impl Grid {
    /// Most points a grid may have: ten million (19 years of one-minute points).
    pub const MAX_LEN: usize = 10_000_000;

    /// A grid of `len` points `step` seconds apart from `start`.
    pub fn new(start: i64, step: i64, len: usize) -> Result<Self, GridError> {
        if step <= 0 {
            return Err(GridError::Step(step));
        }
        let too_long = GridError::TooLong { start, step, len };
        if len > Self::MAX_LEN {
            return Err(too_long);
        }
        i64::try_from(len)
            .ok()
            .and_then(|n| n.checked_mul(step))
            .and_then(|span| span.checked_add(start))
            .ok_or(too_long)?;
        Ok(Self { start, step, len })
    }

    /// Unix seconds of point `i`.
    pub fn time_at(&self, i: usize) -> i64 {
        // `new` checked that start + len·step fits, so every i <= len fits too.
        self.start + i as i64 * self.step
    }

    /// End of the last interval (exclusive).
    pub fn end(&self) -> i64 {
        self.time_at(self.len)
    }
}
