//! Settings: per-call [`ForecastOptions`] and per-forecaster [`ForecasterConfig`].

use crate::{EventWindow, ForecastError, ModelKind, Regressor};

/// What one forecast call should use.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastOptions {
    /// Model to use; `Auto` chooses per series by backtest.
    pub model: ModelKind,
    /// Central prediction interval level in (0, 1); the upper bound is the
    /// `(1 + level) / 2` quantile.
    pub level: f64,
    /// Known events (history and future).
    pub events: Vec<EventWindow>,
    /// Seconds each event window is widened before its start (lead effects).
    pub event_lead: i64,
    /// Seconds each event window is widened after its end (lag effects).
    pub event_lag: i64,
    /// Regressors on the series grid, covering history and horizon.
    pub regressors: Vec<Regressor>,
}

impl Default for ForecastOptions {
    /// `Auto`, level 0.8, no events, no regressors.
    fn default() -> Self {
        Self {
            model: ModelKind::Auto,
            level: 0.8,
            events: Vec::new(),
            event_lead: 0,
            event_lag: 0,
            regressors: Vec::new(),
        }
    }
}

impl ForecastOptions {
    /// Checks the level and event windows.
    pub fn validate(&self) -> Result<(), ForecastError> {
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(ForecastError::Invalid(format!(
                "level {} must be strictly between 0 and 1",
                self.level
            )));
        }
        if let Some(e) = self.events.iter().find(|e| e.end <= e.start) {
            return Err(ForecastError::Invalid(format!(
                "event `{}` ends ({}) before it starts ({})",
                e.name, e.end, e.start
            )));
        }
        if self.event_lead < 0 || self.event_lag < 0 {
            return Err(ForecastError::Invalid(
                "event lead and lag must be >= 0".into(),
            ));
        }
        Ok(())
    }

    /// Event windows widened by the lead and lag.
    pub(crate) fn widened_events(&self) -> Vec<EventWindow> {
        self.events
            .iter()
            .map(|e| {
                EventWindow::new(
                    e.name.clone(),
                    e.start - self.event_lead,
                    e.end + self.event_lag,
                )
            })
            .collect()
    }
}

/// Tuning of a [`crate::Forecaster`]; the defaults are what the benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecasterConfig {
    /// Backtest folds (one horizon each) used to choose the model and calibrate intervals.
    pub folds: usize,
    /// Models are fitted on at most this many most recent points.
    pub max_train_points: usize,
    /// Prophet is fitted on at most this many most recent points (its cost grows fast).
    pub prophet_max_points: usize,
    /// Whether `Auto` may try Prophet when events or regressors are given (slow: ~0.5 s to
    /// build once, then ~0.3-1 s per fit).
    pub prophet_in_auto: bool,
    /// Forecasts are clamped to the training range widened by this fraction of it.
    pub clamp_margin: f64,
}

impl Default for ForecasterConfig {
    /// 3 folds (the fewest that let each fold's interval be checked against the other two),
    /// 2016 training points (a week of 5-minute data, six weeks of half-hours), Prophet on
    /// at most 1200 points and allowed in `Auto`, clamp margin 0.1.
    fn default() -> Self {
        Self {
            folds: 3,
            max_train_points: 2016,
            prophet_max_points: 1200,
            prophet_in_auto: true,
            clamp_margin: 0.1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_level_and_inverted_event() {
        let mut o = ForecastOptions {
            level: 1.0,
            ..ForecastOptions::default()
        };
        assert!(o.validate().expect_err("bad").to_string().contains("level"));
        o.level = 0.9;
        o.events.push(EventWindow::new("x", 10, 5));
        assert!(o.validate().expect_err("bad").to_string().contains("`x`"));
    }

    #[test]
    fn widening_moves_both_ends() {
        let o = ForecastOptions {
            events: vec![EventWindow::new("x", 100, 200)],
            event_lead: 10,
            event_lag: 20,
            ..ForecastOptions::default()
        };
        assert_eq!(o.widened_events(), vec![EventWindow::new("x", 90, 220)]);
    }
}
