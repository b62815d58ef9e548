//! The ramp: how fast traffic moves onto the shadow pool, and the gate each step must pass.

use std::time::Duration;

/// What to do with primary once all traffic is on the shadow pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AtFull {
    /// Stop primary instances (the resources go back to the pool); traffic returns to primary
    /// once demand falls back under it.
    Decommission,
    /// Leave primary running, ready to take traffic back.
    KeepWarm,
    /// Stop primary instances and keep the workload on the shadow pool, which follows the
    /// forecast both ways from then on: Umbra instead of a fixed primary. Primary comes back
    /// only to roll back onto.
    Adopt,
}

/// Per-step health limits for the shadow pool.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GateLimits {
    /// Shadow p99 ceiling.
    pub max_p99: Duration,
    /// Shadow failed-request share ceiling.
    pub max_error_rate: f64,
    /// Shadow instances' CPU use as a share of their limit.
    pub max_cpu: f64,
    /// Shadow instances' memory use as a share of their limit.
    pub max_memory: f64,
    /// Requests the shadow must have served in the step before it can pass.
    pub min_requests: u64,
}

/// How traffic ramps onto the shadow pool. Build with [`RampPolicy::new`]; never invalid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RampPolicy {
    start: f64,
    step: f64,
    interval_ms: u64,
    gate: GateLimits,
    at_full: AtFull,
}

/// A ramp that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RampError {
    /// First weight.
    #[error("start_weight must be in (0, 1], got {0}")]
    Start(f64),
    /// Increment.
    #[error("step must be in (0, 1], got {0}")]
    Step(f64),
    /// Time between steps.
    #[error("interval must be greater than 0")]
    Interval,
    /// Gate shares.
    #[error("{field} must be in (0, 1], got {value}")]
    Share {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
}

impl RampPolicy {
    /// `start` weight (e.g. 0.1), `step` added per interval (e.g. 0.1), `interval_ms` between
    /// steps, the `gate` each step must pass, and what to do `at_full`.
    pub fn new(
        start: f64,
        step: f64,
        interval_ms: u64,
        gate: GateLimits,
        at_full: AtFull,
    ) -> Result<Self, RampError> {
        if !(start > 0.0 && start <= 1.0) {
            return Err(RampError::Start(start));
        }
        if !(step > 0.0 && step <= 1.0) {
            return Err(RampError::Step(step));
        }
        if interval_ms == 0 {
            return Err(RampError::Interval);
        }
        for (field, value) in [
            ("max_error_rate", gate.max_error_rate),
            ("max_cpu", gate.max_cpu),
            ("max_memory", gate.max_memory),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(RampError::Share { field, value });
            }
        }
        Ok(RampPolicy {
            start,
            step,
            interval_ms,
            gate,
            at_full,
        })
    }

    /// First weight.
    pub fn start(&self) -> f64 {
        self.start
    }
    /// Time between steps, ms.
    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }
    /// The gate.
    pub fn gate(&self) -> &GateLimits {
        &self.gate
    }
    /// What happens at 100%.
    pub fn at_full(&self) -> AtFull {
        self.at_full
    }
    /// Number of steps from `start` to 1.
    pub fn steps(&self) -> u32 {
        1 + ((1.0 - self.start) / self.step - 1e-9).ceil().max(0.0) as u32
    }
}

/// The weight after `current` (never above 1; exactly 1 at the end).
pub fn next_weight(p: &RampPolicy, current: f64) -> f64 {
    if current <= 0.0 {
        p.start
    } else {
        // Rounded to parts per million so 0.1 + 0.1 + ... lands on 1.0 exactly.
        (((current + p.step).min(1.0)) * 1e6).round() / 1e6
    }
}

/// What the shadow pool did during the current step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShadowHealth {
    /// Requests it served.
    pub requests: u64,
    /// Failed share.
    pub error_rate: f64,
    /// p99 latency, if it served anything.
    pub p99: Option<Duration>,
    /// Highest CPU use of an instance as a share of its limit, when known.
    pub cpu: Option<f64>,
    /// Highest memory use of an instance as a share of its limit, when known.
    pub memory: Option<f64>,
}

/// The gate's verdict on one step.
#[derive(Clone, Debug, PartialEq)]
pub enum GateVerdict {
    /// Healthy: the ramp may advance.
    Pass,
    /// Not enough traffic yet to judge.
    Wait,
    /// Unhealthy: roll back. The text says which limit and the numbers.
    Fail(String),
}

/// Judges the shadow pool against the gate.
pub fn gate(p: &RampPolicy, h: &ShadowHealth) -> GateVerdict {
    let g = &p.gate;
    if h.requests >= g.min_requests.max(1) && h.error_rate > g.max_error_rate {
        return GateVerdict::Fail(format!(
            "error rate {:.1}% above {:.1}%",
            h.error_rate * 100.0,
            g.max_error_rate * 100.0
        ));
    }
    if let Some(p99) = h.p99.filter(|_| h.requests >= g.min_requests) {
        if p99 > g.max_p99 {
            return GateVerdict::Fail(format!(
                "p99 {:.0} ms above {:.0} ms",
                p99.as_secs_f64() * 1e3,
                g.max_p99.as_secs_f64() * 1e3
            ));
        }
    }
    if let Some(cpu) = h.cpu.filter(|&c| c > g.max_cpu) {
        return GateVerdict::Fail(format!(
            "CPU {:.0}% of limit, above {:.0}%",
            cpu * 100.0,
            g.max_cpu * 100.0
        ));
    }
    if let Some(mem) = h.memory.filter(|&m| m > g.max_memory) {
        return GateVerdict::Fail(format!(
            "memory {:.0}% of limit, above {:.0}%",
            mem * 100.0,
            g.max_memory * 100.0
        ));
    }
    if h.requests < g.min_requests {
        GateVerdict::Wait
    } else {
        GateVerdict::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> GateLimits {
        GateLimits {
            max_p99: Duration::from_millis(250),
            max_error_rate: 0.02,
            max_cpu: 0.9,
            max_memory: 0.9,
            min_requests: 20,
        }
    }

    fn policy() -> RampPolicy {
        RampPolicy::new(0.1, 0.1, 30_000, limits(), AtFull::KeepWarm).expect("valid")
    }

    #[test]
    fn ten_percent_steps_reach_exactly_one() {
        let p = policy();
        let mut w = 0.0;
        let mut seen = Vec::new();
        while w < 1.0 {
            w = next_weight(&p, w);
            seen.push(w);
        }
        assert_eq!(seen.len(), 10);
        assert_eq!(seen.first(), Some(&0.1));
        assert_eq!(seen.last(), Some(&1.0));
        assert_eq!(p.steps(), 10);
    }

    #[test]
    fn gate_verdicts() {
        let p = policy();
        let ok = ShadowHealth {
            requests: 100,
            error_rate: 0.0,
            p99: Some(Duration::from_millis(20)),
            cpu: Some(0.5),
            memory: Some(0.5),
        };
        assert_eq!(gate(&p, &ok), GateVerdict::Pass);
        assert_eq!(
            gate(&p, &ShadowHealth { requests: 5, ..ok }),
            GateVerdict::Wait
        );
        assert!(matches!(
            gate(
                &p,
                &ShadowHealth {
                    error_rate: 0.05,
                    ..ok
                }
            ),
            GateVerdict::Fail(_)
        ));
        assert!(matches!(
            gate(
                &p,
                &ShadowHealth {
                    p99: Some(Duration::from_millis(300)),
                    ..ok
                }
            ),
            GateVerdict::Fail(_)
        ));
        assert!(matches!(
            gate(
                &p,
                &ShadowHealth {
                    cpu: Some(0.95),
                    ..ok
                }
            ),
            GateVerdict::Fail(_)
        ));
        assert!(matches!(
            gate(
                &p,
                &ShadowHealth {
                    memory: Some(0.95),
                    ..ok
                }
            ),
            GateVerdict::Fail(_)
        ));
        // Unknown CPU/memory (no cgroup) does not block the ramp.
        assert_eq!(
            gate(
                &p,
                &ShadowHealth {
                    cpu: None,
                    memory: None,
                    ..ok
                }
            ),
            GateVerdict::Pass
        );
    }

    #[test]
    fn rejects_bad_ramps() {
        assert!(RampPolicy::new(0.0, 0.1, 1, limits(), AtFull::KeepWarm).is_err());
        assert!(RampPolicy::new(0.1, 0.0, 1, limits(), AtFull::KeepWarm).is_err());
        assert!(RampPolicy::new(0.1, 0.1, 0, limits(), AtFull::KeepWarm).is_err());
        let bad = GateLimits {
            max_cpu: 1.5,
            ..limits()
        };
        assert!(RampPolicy::new(0.1, 0.1, 1, bad, AtFull::KeepWarm).is_err());
    }

    proptest! {
        #[test]
        fn weights_stay_in_range_and_increase(start in 0.01f64..=1.0, step in 0.01f64..=1.0, w in 0.0f64..=1.0) {
            let p = RampPolicy::new(start, step, 1, limits(), AtFull::KeepWarm).expect("valid");
            let n = next_weight(&p, w);
            prop_assert!(n > 0.0 && n <= 1.0);
            prop_assert!(n >= w.min(1.0) - 1e-6);
        }
    }
}
