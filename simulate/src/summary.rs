//! What a strategy cost and missed over a replay: the four headline numbers and extras.

use serde::Serialize;

/// Unserved requests/s below this are float noise of the traffic split, not a shortage.
pub const SHORT_EPSILON: f64 = 1e-9;

/// One strategy's results over the counted part of a replay.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Minutes during which some pool had less ready capacity than its share of demand
    /// (measured in 15 s steps).
    pub under_provisioned_minutes: f64,
    /// Requests that arrived above ready capacity.
    pub unserved_requests: f64,
    /// Instance-hours; an idle-size instance counts its CPU fraction of a full one.
    pub instance_hours: f64,
    /// Changes of a pool's instance count or size.
    pub scaling_actions: u64,
    /// Requests that arrived.
    pub requests: f64,
    /// Most instances running at once (full-size equivalents).
    pub peak_instances: f64,
    /// Migrations that reached 100% on the shadow pool (predictive only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<u64>,
    /// Migrations started (predictive only); one begun in the warm-up counts when it
    /// completes in the counted part, so this is never below `migrations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_attempts: Option<u64>,
    /// Rollbacks, controller- or proxy-initiated (predictive only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollbacks: Option<u64>,
    /// Of the rollbacks, those the proxy's guard started (predictive only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_rollbacks: Option<u64>,
    /// Instance-hours of the primary pool (predictive only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_instance_hours: Option<f64>,
    /// Minutes with some traffic on the shadow pool (predictive only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minutes_on_shadow: Option<f64>,
}

impl Summary {
    /// Adds one step of `step_s` seconds.
    pub fn add_step(&mut self, demand: f64, unserved: f64, cost_units: f64, step_s: i64) {
        let seconds = step_s as f64;
        self.requests += demand * seconds;
        self.unserved_requests += unserved * seconds;
        if unserved > SHORT_EPSILON {
            self.under_provisioned_minutes += seconds / 60.0;
        }
        self.instance_hours += cost_units * seconds / 3600.0;
        self.peak_instances = self.peak_instances.max(cost_units);
    }
}

/// The four numbers every comparison shows, `(name, predictive, reactive, decimals)`: the
/// text table of `umbra simulate` and the HTML report print the same rows.
pub fn four_numbers(
    predictive: &Summary,
    reactive: &Summary,
) -> [(&'static str, f64, f64, usize); 4] {
    [
        (
            "under-provisioned minutes",
            predictive.under_provisioned_minutes,
            reactive.under_provisioned_minutes,
            1,
        ),
        (
            "unserved requests",
            predictive.unserved_requests,
            reactive.unserved_requests,
            0,
        ),
        (
            "instance-hours",
            predictive.instance_hours,
            reactive.instance_hours,
            1,
        ),
        (
            "scaling actions",
            predictive.scaling_actions as f64,
            reactive.scaling_actions as f64,
            0,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_add_up() {
        let mut s = Summary::default();
        s.add_step(10.0, 0.0, 2.0, 15);
        s.add_step(10.0, 4.0, 3.5, 15);
        assert_eq!(s.requests, 300.0);
        assert_eq!(s.unserved_requests, 60.0);
        assert_eq!(s.under_provisioned_minutes, 0.25);
        assert!((s.instance_hours - 5.5 * 15.0 / 3600.0).abs() < 1e-12);
        assert_eq!(s.peak_instances, 3.5);
    }
}
