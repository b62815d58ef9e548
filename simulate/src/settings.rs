//! What a replay runs with: the workload policy, the pools' shape and the two controllers'
//! timings, checked once before the replay starts.

use config::WorkloadPolicy;
use policies::GuardThresholds;

use super::hpa::HpaConfig;
use super::pool::Delays;
use super::trace::DemandTrace;
use super::{SimulateError, replay::STEP_S};

/// A replay's settings. Times in seconds.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The policy the predictive controller runs (sizing, trigger, ramp, migration).
    pub policy: WorkloadPolicy,
    /// Requests/s one full-size instance serves (both strategies).
    pub instance_capacity: f64,
    /// Start-up and resize delays (both strategies).
    pub delays: Delays,
    /// Fixed size of the predictive strategy's primary pool.
    pub primary_instances: u32,
    /// The predictive controller decides every this many seconds (a multiple of 15).
    pub tick_s: i64,
    /// The forecast is refitted at most this often (and only when a new sample arrived).
    pub refit_every_s: i64,
    /// Nothing is counted before `trace start + warmup_s` (both strategies run through it).
    pub warmup_s: i64,
    /// The reactive baseline.
    pub hpa: HpaConfig,
    /// The proxy's rollback guard on the shadow pool.
    pub guard: GuardThresholds,
}

impl Settings {
    /// Checks the settings against `trace`.
    pub fn validate(&self, trace: &DemandTrace) -> Result<(), SimulateError> {
        if !(self.instance_capacity > 0.0 && self.instance_capacity.is_finite()) {
            return Err(SimulateError::setting(
                "instance-capacity",
                format!("must be a positive rate, got {}", self.instance_capacity),
            ));
        }
        if self.tick_s <= 0 || self.tick_s % STEP_S != 0 {
            return Err(SimulateError::setting(
                "tick",
                format!(
                    "must be a positive multiple of {STEP_S} s, got {} s",
                    self.tick_s
                ),
            ));
        }
        if self.refit_every_s < self.tick_s {
            return Err(SimulateError::setting(
                "refit-every",
                format!(
                    "must be at least the tick ({} s), got {} s",
                    self.tick_s, self.refit_every_s
                ),
            ));
        }
        if self.delays.startup < 0 || self.delays.resize < 0 {
            return Err(SimulateError::setting(
                "startup",
                "start-up and resize delays must not be negative",
            ));
        }
        if self.primary_instances == 0 {
            return Err(SimulateError::setting(
                "primary-instances",
                "the primary pool needs at least one instance",
            ));
        }
        let span = trace.end() - trace.start();
        if self.warmup_s < 0 || self.warmup_s >= span {
            return Err(SimulateError::setting(
                "warmup",
                format!(
                    "must be between 0 and the trace's span ({span} s), got {} s",
                    self.warmup_s
                ),
            ));
        }
        let h = &self.hpa;
        if h.target_percent == 0 || h.min_replicas == 0 || h.min_replicas > h.max_replicas {
            return Err(SimulateError::setting(
                "hpa",
                "needs a target above 0% and 1 <= min replicas <= max replicas",
            ));
        }
        Ok(())
    }
}

/// Primary pool size an operator would pick knowing only the first `first_s` seconds of
/// the trace: the `percentile` of that demand at `utilisation` of instance capacity.
pub fn primary_from_first_day(
    trace: &DemandTrace,
    first_s: i64,
    percentile: f64,
    capacity: f64,
    utilisation: f64,
) -> Result<u32, SimulateError> {
    if !(0.0..=100.0).contains(&percentile) {
        return Err(SimulateError::setting(
            "primary-percentile",
            format!("must be in [0, 100], got {percentile}"),
        ));
    }
    if !(utilisation > 0.0 && utilisation <= 1.0) {
        return Err(SimulateError::setting(
            "utilisation",
            format!("must be in (0, 1], got {utilisation}"),
        ));
    }
    let mut first: Vec<f64> = trace
        .samples_between(trace.start(), trace.start() + first_s)
        .collect();
    if first.is_empty() {
        return Err(SimulateError::Trace("no samples in the first day".into()));
    }
    first.sort_by(f64::total_cmp);
    // Nearest-rank percentile.
    let rank = ((percentile / 100.0) * first.len() as f64).ceil() as usize;
    let level = first[rank.clamp(1, first.len()) - 1];
    let needed = (level / (capacity * utilisation)).ceil();
    Ok((needed.min(f64::from(u32::MAX)) as u32).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use forecast::Series;

    #[test]
    fn primary_is_sized_from_the_first_day_only() {
        // First day (4 samples of 6 h): 10, 20, 30, 40; then a huge second day.
        let mut values = vec![10.0, 20.0, 30.0, 40.0];
        values.extend([1e6; 4]);
        let trace = DemandTrace::new(&Series::new(0, 21_600, values), 1.0).expect("trace");
        // Median = 20 at 50% of 10 rps -> 4 instances.
        assert_eq!(
            primary_from_first_day(&trace, 86_400, 50.0, 10.0, 0.5).expect("ok"),
            4
        );
        assert_eq!(
            primary_from_first_day(&trace, 86_400, 100.0, 10.0, 1.0).expect("ok"),
            4
        );
        assert!(primary_from_first_day(&trace, 86_400, 101.0, 10.0, 1.0).is_err());
    }
}
