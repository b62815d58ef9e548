//! Plain data the library works on: a regular series, event windows and regressors.

/// A series on a regular time grid: `values[i]` is the sample at `start + i * step`.
///
/// Missing samples are `NaN` (long gaps the grid did not interpolate).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Unix seconds (UTC) of the first sample.
    pub start: i64,
    /// Seconds between samples; always > 0.
    pub step: i64,
    /// Samples, `NaN` where missing.
    pub values: Vec<f64>,
}

impl Series {
    /// A series from its parts.
    pub fn new(start: i64, step: i64, values: Vec<f64>) -> Self {
        Self {
            start,
            step,
            values,
        }
    }

    /// Number of grid points.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the series has no points.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Timestamp of grid point `i`.
    pub fn time_at(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    /// Timestamp one step after the last point: where a forecast starts.
    pub fn end(&self) -> i64 {
        self.time_at(self.len())
    }

    /// The first `n` points (all of them if `n` exceeds the length).
    pub fn head(&self, n: usize) -> Series {
        Series::new(
            self.start,
            self.step,
            self.values[..n.min(self.len())].to_vec(),
        )
    }

    /// Points `from..to` as a series of their own.
    pub fn window(&self, from: usize, to: usize) -> Series {
        let to = to.min(self.len());
        let from = from.min(to);
        Series::new(
            self.time_at(from),
            self.step,
            self.values[from..to].to_vec(),
        )
    }
}

/// A known external event, e.g. a holiday or a sports final; `[start, end)` in unix seconds.
///
/// Events with the same name are occurrences of one kind of event: the models learn one
/// effect per name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventWindow {
    /// Kind of event ("superbowl", "holiday").
    pub name: String,
    /// Start, unix seconds, inclusive.
    pub start: i64,
    /// End, unix seconds, exclusive.
    pub end: i64,
}

impl EventWindow {
    /// An event window from its parts.
    pub fn new(name: impl Into<String>, start: i64, end: i64) -> Self {
        Self {
            name: name.into(),
            start,
            end,
        }
    }

    /// True when timestamp `t` falls inside the window.
    pub fn contains(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }
}

/// An external variable known over the history *and* the horizon, on the series grid:
/// `values[i]` belongs to `series.start + i * series.step`.
#[derive(Debug, Clone, PartialEq)]
pub struct Regressor {
    /// Name, recorded in `Forecast::signals_used`.
    pub name: String,
    /// One value per grid point, history then horizon.
    pub values: Vec<f64>,
}

impl Regressor {
    /// A regressor from its parts.
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> Self {
        Self {
            name: name.into(),
            values,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_and_end_follow_the_grid() {
        let s = Series::new(100, 10, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.end(), 140);
        let w = s.window(1, 3);
        assert_eq!(w.start, 110);
        assert_eq!(w.values, vec![2.0, 3.0]);
        assert_eq!(s.head(10).len(), 4);
    }

    #[test]
    fn event_window_is_half_open() {
        let e = EventWindow::new("x", 10, 20);
        assert!(e.contains(10));
        assert!(!e.contains(20));
    }
}
