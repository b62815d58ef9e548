//! Event windows and per-workload regressors (campaigns, deployments, events) on a grid.
//!
//! Every indicator is the *share* of a grid interval the signal covers, so a campaign starting
//! at 23:00 weighs 1/24 of that day on a daily grid and fully on an hourly one.

use chrono::TimeDelta;

use crate::campaigns::Campaign;
use crate::deployments::Deployment;
use crate::grid::Grid;
use crate::grid::coverage::{add_coverage, union_coverage};
use crate::ics::Event;

/// A known event as the forecaster takes it: `[start, end)` in unix seconds. Same fields as
/// `forecast::EventWindow`, so converting is a field-by-field copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventWindow {
    /// Kind of event; occurrences of one series share it.
    pub name: String,
    /// Start, unix seconds, inclusive.
    pub start: i64,
    /// End, unix seconds, exclusive.
    pub end: i64,
}

/// A named regressor on a grid. Same fields as `forecast::Regressor`.
#[derive(Debug, Clone, PartialEq)]
pub struct Regressor {
    /// Name, as the forecaster reports signals it used.
    pub name: String,
    /// One value per grid point.
    pub values: Vec<f64>,
}

/// Windows for `events`, widened by `lead` before and `lag` after each one (demand often moves
/// before a holiday and settles after it). Negative widths count as zero; an instant event
/// becomes a window only through lead or lag.
pub fn event_windows(events: &[Event], lead: TimeDelta, lag: TimeDelta) -> Vec<EventWindow> {
    let lead = lead.num_seconds().max(0);
    let lag = lag.num_seconds().max(0);
    events
        .iter()
        .map(|e| EventWindow {
            name: e.name.clone(),
            start: e.start.timestamp().saturating_sub(lead),
            end: e.end.timestamp().saturating_add(lag),
        })
        .collect()
}

/// Share of each grid interval inside any of `windows` (0..=1).
pub fn event_indicator(windows: &[EventWindow], grid: &Grid) -> Vec<f64> {
    let mut intervals = windows.iter().map(|w| (w.start, w.end)).collect();
    union_coverage(grid, &mut intervals)
}

/// Expected uplift per grid interval for `workload`: each campaign adds its uplift times the
/// share of the interval it covers; overlapping campaigns add up.
pub fn campaign_uplift(campaigns: &[Campaign], workload: &str, grid: &Grid) -> Vec<f64> {
    let mut out = vec![0.0; grid.len];
    for c in campaigns.iter().filter(|c| c.applies_to(workload)) {
        add_coverage(
            grid,
            c.start.timestamp(),
            c.end.timestamp(),
            c.expected_uplift,
            &mut out,
        );
    }
    out
}

/// Share of each grid interval during which some campaign for `workload` runs (0..=1).
pub fn campaign_active(campaigns: &[Campaign], workload: &str, grid: &Grid) -> Vec<f64> {
    let mut intervals = campaigns
        .iter()
        .filter(|c| c.applies_to(workload))
        .map(|c| (c.start.timestamp(), c.end.timestamp()))
        .collect();
    union_coverage(grid, &mut intervals)
}

/// Share of each grid interval during which a deployment touches `workload` (0..=1). Pass the
/// planned ones for the future and the observed ones for the past.
pub fn deployment_indicator(deployments: &[Deployment], workload: &str, grid: &Grid) -> Vec<f64> {
    let mut intervals = deployments
        .iter()
        .filter(|d| d.applies_to(workload))
        .map(|d| (d.start.timestamp(), d.end.timestamp()))
        .collect();
    union_coverage(grid, &mut intervals)
}
