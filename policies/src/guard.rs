//! The rollback verdict: does the shadow pool's recent window break the workload's guard?

use std::time::Duration;

/// What one pool did over the guard's sliding window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolWindow {
    /// Requests completed (or failed) in the window.
    pub requests: u64,
    /// Of those, how many failed: 5xx from the upstream, connect errors, timeouts.
    pub errors: u64,
    /// 99th percentile latency over the window; `None` when the window is empty.
    pub p99: Option<Duration>,
}

impl PoolWindow {
    /// Share of failed requests, 0 when the window is empty.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// When to roll a shadow pool back. Built through [`GuardThresholds::new`], never invalid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GuardThresholds {
    min_requests: u64,
    max_p99: Option<Duration>,
    max_p99_ratio: Option<f64>,
    p99_ratio_floor: Duration,
    max_error_rate: f64,
}

/// A guard threshold that would make the guard meaningless or trigger-happy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdsError {
    /// Zero requests would let a single slow request roll a pool back.
    #[error("min_requests must be at least 1")]
    MinRequests,
    /// A zero ceiling would roll back on every request.
    #[error("max_p99_ms must be greater than 0")]
    MaxP99,
    /// A ratio below 1 rolls back a shadow that is faster than primary.
    #[error("max_p99_ratio must be at least 1.0, got {0}")]
    Ratio(f64),
    /// Error rates are shares.
    #[error("max_error_rate must be in (0, 1], got {0}")]
    ErrorRate(f64),
}

impl GuardThresholds {
    /// Thresholds, validated.
    ///
    /// - `min_requests`: the shadow window must hold at least this many requests before any
    ///   verdict (and the primary window too, for the ratio check).
    /// - `max_p99`: absolute p99 ceiling for the shadow pool, if any.
    /// - `max_p99_ratio`: shadow p99 / primary p99 ceiling, if any.
    /// - `p99_ratio_floor`: the ratio check only applies once the shadow p99 is above this, so
    ///   that 0.9 ms vs 0.3 ms (a "3x" of noise) does not roll anything back.
    /// - `max_error_rate`: share of failed shadow requests, in `(0, 1]`.
    pub fn new(
        min_requests: u64,
        max_p99: Option<Duration>,
        max_p99_ratio: Option<f64>,
        p99_ratio_floor: Duration,
        max_error_rate: f64,
    ) -> Result<Self, ThresholdsError> {
        if min_requests == 0 {
            return Err(ThresholdsError::MinRequests);
        }
        if max_p99.is_some_and(|d| d.is_zero()) {
            return Err(ThresholdsError::MaxP99);
        }
        if let Some(r) = max_p99_ratio {
            if !(r >= 1.0 && r.is_finite()) {
                return Err(ThresholdsError::Ratio(r));
            }
        }
        if !(max_error_rate > 0.0 && max_error_rate <= 1.0) {
            return Err(ThresholdsError::ErrorRate(max_error_rate));
        }
        Ok(GuardThresholds {
            min_requests,
            max_p99,
            max_p99_ratio,
            p99_ratio_floor,
            max_error_rate,
        })
    }

    /// Minimum window size before a verdict.
    pub fn min_requests(&self) -> u64 {
        self.min_requests
    }
    /// Absolute p99 ceiling for the shadow pool.
    pub fn max_p99(&self) -> Option<Duration> {
        self.max_p99
    }
    /// Shadow/primary p99 ceiling.
    pub fn max_p99_ratio(&self) -> Option<f64> {
        self.max_p99_ratio
    }
    /// Shadow p99 below which the ratio is not checked.
    pub fn p99_ratio_floor(&self) -> Duration {
        self.p99_ratio_floor
    }
    /// Failed-request share ceiling.
    pub fn max_error_rate(&self) -> f64 {
        self.max_error_rate
    }
}

/// Why a shadow pool was rolled back, with the numbers that decided it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RollbackReason {
    /// Shadow failed more often than `max_error_rate`.
    ErrorRate {
        /// Observed share of failed requests.
        rate: f64,
        /// Configured ceiling.
        max: f64,
    },
    /// Shadow p99 above the absolute ceiling.
    P99Ceiling {
        /// Observed shadow p99.
        p99: Duration,
        /// Configured ceiling.
        max: Duration,
    },
    /// Shadow p99 too far above primary's.
    P99Ratio {
        /// Observed shadow p99.
        shadow_p99: Duration,
        /// Observed primary p99.
        primary_p99: Duration,
        /// Configured ceiling on the ratio.
        max: f64,
    },
}

impl RollbackReason {
    /// Stable label for the `reason` label of `umbra_rollbacks_total`.
    pub fn label(&self) -> &'static str {
        match self {
            RollbackReason::ErrorRate { .. } => "error_rate",
            RollbackReason::P99Ceiling { .. } => "p99_ceiling",
            RollbackReason::P99Ratio { .. } => "p99_ratio",
        }
    }
}

impl std::fmt::Display for RollbackReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            RollbackReason::ErrorRate { rate, max } => write!(
                f,
                "shadow error rate {:.1}% above max_error_rate {:.1}%",
                rate * 100.0,
                max * 100.0
            ),
            RollbackReason::P99Ceiling { p99, max } => write!(
                f,
                "shadow p99 {:.1} ms above max_p99_ms {:.1} ms",
                ms(p99),
                ms(max)
            ),
            RollbackReason::P99Ratio {
                shadow_p99,
                primary_p99,
                max,
            } => write!(
                f,
                "shadow p99 {:.1} ms is {:.2}x primary p99 {:.1} ms, above max_p99_ratio {max}",
                ms(shadow_p99),
                ms(shadow_p99) / ms(primary_p99).max(1e-3),
                ms(primary_p99)
            ),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The guard's verdict on one evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuardVerdict {
    /// The shadow window is too small to judge.
    TooFewRequests,
    /// Within every threshold.
    Healthy,
    /// Roll the shadow weight back to 0.
    Rollback(RollbackReason),
}

/// Judges the shadow pool's window against the thresholds (and primary's, for the ratio).
///
/// Errors are checked first (a failing pool is worse than a slow one), then the absolute p99
/// ceiling, then the ratio, which needs `min_requests` on primary as well.
pub fn judge(shadow: &PoolWindow, primary: &PoolWindow, t: &GuardThresholds) -> GuardVerdict {
    if shadow.requests < t.min_requests {
        return GuardVerdict::TooFewRequests;
    }
    let rate = shadow.error_rate();
    if rate > t.max_error_rate {
        return GuardVerdict::Rollback(RollbackReason::ErrorRate {
            rate,
            max: t.max_error_rate,
        });
    }
    let Some(shadow_p99) = shadow.p99 else {
        return GuardVerdict::Healthy;
    };
    if let Some(max) = t.max_p99 {
        if shadow_p99 > max {
            return GuardVerdict::Rollback(RollbackReason::P99Ceiling {
                p99: shadow_p99,
                max,
            });
        }
    }
    if let (Some(max), Some(primary_p99)) = (t.max_p99_ratio, primary.p99) {
        let judged = primary.requests >= t.min_requests && shadow_p99 > t.p99_ratio_floor;
        if judged && shadow_p99.as_secs_f64() > max * primary_p99.as_secs_f64() {
            return GuardVerdict::Rollback(RollbackReason::P99Ratio {
                shadow_p99,
                primary_p99,
                max,
            });
        }
    }
    GuardVerdict::Healthy
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn thresholds() -> GuardThresholds {
        GuardThresholds::new(20, Some(ms(250)), Some(2.0), ms(20), 0.05).expect("valid")
    }

    fn window(requests: u64, errors: u64, p99_ms: u64) -> PoolWindow {
        PoolWindow {
            requests,
            errors,
            p99: Some(ms(p99_ms)),
        }
    }

    #[test]
    fn too_few_requests_never_rolls_back() {
        let v = judge(&window(19, 19, 10_000), &window(100, 0, 10), &thresholds());
        assert_eq!(v, GuardVerdict::TooFewRequests);
    }

    #[test]
    fn error_rate_above_max_rolls_back() {
        let v = judge(&window(100, 6, 10), &window(100, 0, 10), &thresholds());
        assert!(matches!(
            v,
            GuardVerdict::Rollback(RollbackReason::ErrorRate { .. })
        ));
        assert_eq!(
            judge(&window(100, 5, 10), &window(100, 0, 10), &thresholds()),
            GuardVerdict::Healthy
        );
    }

    #[test]
    fn ceiling_is_strict() {
        let t = thresholds();
        assert_eq!(
            judge(&window(50, 0, 250), &window(50, 0, 200), &t),
            GuardVerdict::Healthy
        );
        let v = judge(&window(50, 0, 251), &window(50, 0, 200), &t);
        assert_eq!(v.reason_label(), Some("p99_ceiling"));
    }

    #[test]
    fn ratio_needs_primary_volume_and_the_floor() {
        let t = thresholds();
        // 3x primary, above the floor, primary has volume: roll back.
        let v = judge(&window(50, 0, 90), &window(50, 0, 30), &t);
        assert_eq!(v.reason_label(), Some("p99_ratio"));
        // Same ratio but primary has too few requests to compare with.
        assert_eq!(
            judge(&window(50, 0, 90), &window(5, 0, 30), &t),
            GuardVerdict::Healthy
        );
        // 3x of sub-millisecond noise, below the 20 ms floor.
        assert_eq!(
            judge(&window(50, 0, 3), &window(50, 0, 1), &t),
            GuardVerdict::Healthy
        );
    }

    #[test]
    fn errors_win_over_latency() {
        let v = judge(&window(50, 50, 1000), &window(50, 0, 10), &thresholds());
        assert_eq!(v.reason_label(), Some("error_rate"));
    }

    #[test]
    fn rejects_meaningless_thresholds() {
        assert_eq!(
            GuardThresholds::new(0, None, None, ms(0), 0.1),
            Err(ThresholdsError::MinRequests)
        );
        assert_eq!(
            GuardThresholds::new(1, Some(ms(0)), None, ms(0), 0.1),
            Err(ThresholdsError::MaxP99)
        );
        assert!(GuardThresholds::new(1, None, Some(0.5), ms(0), 0.1).is_err());
        assert!(GuardThresholds::new(1, None, Some(f64::NAN), ms(0), 0.1).is_err());
        assert!(GuardThresholds::new(1, None, None, ms(0), 0.0).is_err());
        assert!(GuardThresholds::new(1, None, None, ms(0), 1.5).is_err());
    }

    impl GuardVerdict {
        fn reason_label(&self) -> Option<&'static str> {
            match self {
                GuardVerdict::Rollback(r) => Some(r.label()),
                _ => None,
            }
        }
    }

    proptest! {
        /// Below every threshold the guard never fires, whatever the volumes.
        #[test]
        fn never_fires_below_thresholds(
            requests in 20u64..100_000,
            err_share in 0.0f64..=0.05,
            shadow_p99 in 0u64..=250,
            primary_p99 in 1u64..1000,
            primary_requests in 0u64..100_000,
        ) {
            let errors = (requests as f64 * err_share).floor() as u64;
            let shadow_p99 = shadow_p99.min(primary_p99 * 2);
            let v = judge(
                &window(requests, errors, shadow_p99),
                &window(primary_requests, 0, primary_p99),
                &thresholds(),
            );
            prop_assert_eq!(v, GuardVerdict::Healthy);
        }

        /// Above the ceiling it always fires, whatever primary looks like.
        #[test]
        fn always_fires_above_ceiling(requests in 20u64..100_000, p99 in 251u64..100_000) {
            let v = judge(&window(requests, 0, p99), &PoolWindow::default(), &thresholds());
            prop_assert!(matches!(v, GuardVerdict::Rollback(_)));
        }
    }
}
