//! The migration trigger: predicted demand against primary capacity, early enough to act,
//! with hysteresis so the controller does not flap.

/// When to migrate a workload and when to come back. Times in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TriggerPolicy {
    threshold: f64,
    clear_below: f64,
    lead_ms: u64,
    min_hold_ms: u64,
}

/// A trigger policy that would flap or act too late.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TriggerError {
    /// Share of primary capacity.
    #[error("threshold must be in (0, 2], got {0}")]
    Threshold(f64),
    /// Hysteresis needs a gap.
    #[error(
        "clear_below ({clear}) must be below threshold ({threshold}) so the trigger cannot flap"
    )]
    Hysteresis {
        /// clear_below.
        clear: f64,
        /// threshold.
        threshold: f64,
    },
    /// Starting later than the shadow can start is starting too late.
    #[error("lead_time ({lead_ms} ms) must be at least the shadow start-up time ({startup_ms} ms)")]
    LeadTime {
        /// lead_time.
        lead_ms: u64,
        /// start-up time.
        startup_ms: u64,
    },
}

impl TriggerPolicy {
    /// - `threshold`: migrate when predicted demand exceeds this share of primary capacity;
    /// - `clear_below`: come back once predicted and observed demand stay below this share
    ///   (must be below `threshold`: the gap is the hysteresis);
    /// - `lead_ms`: act when the shortage is at most this far ahead; must be at least
    ///   `startup_ms`, the shadow's start-up time;
    /// - `min_hold_ms`: stay migrated at least this long.
    pub fn new(
        threshold: f64,
        clear_below: f64,
        lead_ms: u64,
        startup_ms: u64,
        min_hold_ms: u64,
    ) -> Result<Self, TriggerError> {
        if !(threshold > 0.0 && threshold <= 2.0) {
            return Err(TriggerError::Threshold(threshold));
        }
        if !(clear_below >= 0.0 && clear_below < threshold) {
            return Err(TriggerError::Hysteresis {
                clear: clear_below,
                threshold,
            });
        }
        if lead_ms < startup_ms {
            return Err(TriggerError::LeadTime {
                lead_ms,
                startup_ms,
            });
        }
        Ok(TriggerPolicy {
            threshold,
            clear_below,
            lead_ms,
            min_hold_ms,
        })
    }

    /// Lead time, ms.
    pub fn lead_ms(&self) -> u64 {
        self.lead_ms
    }
    /// Share of primary capacity that triggers a migration.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
    /// Share below which demand must fall to come back.
    pub fn clear_below(&self) -> f64 {
        self.clear_below
    }
}

/// What the trigger sees: a forecast of the upper quantile on a regular grid starting one
/// step after now, the demand observed now, and the primary pool's capacity.
#[derive(Clone, Copy, Debug)]
pub struct Outlook<'a> {
    /// Upper-quantile demand forecast, `upper[i]` at `now + (i + 1) * step_ms`.
    pub upper: &'a [f64],
    /// Grid step, ms.
    pub step_ms: u64,
    /// Demand observed now.
    pub observed: f64,
    /// Demand the primary pool serves.
    pub primary_capacity: f64,
}

/// The trigger's verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TriggerVerdict {
    /// Nothing to do.
    Hold,
    /// A shortage is predicted within the lead time (or is happening): move to the shadow.
    Migrate {
        /// How far ahead the predicted demand first crosses the threshold (0 = now).
        in_ms: u64,
        /// Predicted (or observed) demand at that moment.
        demand: f64,
    },
    /// Demand is back well under primary capacity: return to primary.
    Return,
}

/// Judges a workload that is on primary (`migrated == false`) or on the shadow pool.
/// `held_ms` is how long it has been migrated.
pub fn judge_shortage(
    p: &TriggerPolicy,
    o: &Outlook<'_>,
    migrated: bool,
    held_ms: u64,
) -> TriggerVerdict {
    let high = p.threshold * o.primary_capacity;
    if !migrated {
        if o.observed > high {
            return TriggerVerdict::Migrate {
                in_ms: 0,
                demand: o.observed,
            };
        }
        let first = o.upper.iter().position(|&d| d.is_finite() && d > high);
        return match first {
            Some(i) => {
                let in_ms = (i as u64 + 1).saturating_mul(o.step_ms);
                if in_ms <= p.lead_ms {
                    TriggerVerdict::Migrate {
                        in_ms,
                        demand: o.upper[i],
                    }
                } else {
                    TriggerVerdict::Hold
                }
            }
            None => TriggerVerdict::Hold,
        };
    }
    let low = p.clear_below * o.primary_capacity;
    let lead_steps = (p.lead_ms / o.step_ms.max(1)) as usize + 1;
    let ahead = &o.upper[..o.upper.len().min(lead_steps)];
    let calm = o.observed < low && ahead.iter().all(|&d| d.is_finite() && d < low);
    if calm && held_ms >= p.min_hold_ms {
        TriggerVerdict::Return
    } else {
        TriggerVerdict::Hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> TriggerPolicy {
        // Migrate above 90% of capacity within 10 minutes; return below 70% after 30 min.
        TriggerPolicy::new(0.9, 0.7, 600_000, 60_000, 1_800_000).expect("valid")
    }

    fn outlook(upper: &[f64], observed: f64) -> Outlook<'_> {
        Outlook {
            upper,
            step_ms: 60_000,
            observed,
            primary_capacity: 100.0,
        }
    }

    #[test]
    fn migrates_when_the_shortage_is_within_the_lead_time() {
        let mut upper = vec![50.0; 30];
        upper[9] = 95.0; // 10 minutes ahead
        assert_eq!(
            judge_shortage(&policy(), &outlook(&upper, 50.0), false, 0),
            TriggerVerdict::Migrate {
                in_ms: 600_000,
                demand: 95.0
            }
        );
        let mut later = vec![50.0; 30];
        later[20] = 95.0; // 21 minutes ahead: too early to act
        assert_eq!(
            judge_shortage(&policy(), &outlook(&later, 50.0), false, 0),
            TriggerVerdict::Hold
        );
    }

    #[test]
    fn an_observed_overload_migrates_at_once() {
        let v = judge_shortage(&policy(), &outlook(&[10.0; 5], 91.0), false, 0);
        assert_eq!(
            v,
            TriggerVerdict::Migrate {
                in_ms: 0,
                demand: 91.0
            }
        );
    }

    #[test]
    fn returns_only_when_calm_and_held_long_enough() {
        let calm = vec![60.0; 30];
        assert_eq!(
            judge_shortage(&policy(), &outlook(&calm, 60.0), true, 1_799_999),
            TriggerVerdict::Hold
        );
        assert_eq!(
            judge_shortage(&policy(), &outlook(&calm, 60.0), true, 1_800_000),
            TriggerVerdict::Return
        );
        // Between clear_below and threshold: hold (the hysteresis band).
        let band = vec![80.0; 30];
        assert_eq!(
            judge_shortage(&policy(), &outlook(&band, 80.0), true, u64::MAX),
            TriggerVerdict::Hold
        );
    }

    #[test]
    fn rejects_policies_that_flap_or_act_late() {
        assert!(TriggerPolicy::new(0.9, 0.9, 600_000, 0, 0).is_err());
        assert!(TriggerPolicy::new(0.9, 0.7, 30_000, 60_000, 0).is_err());
        assert!(TriggerPolicy::new(0.0, 0.0, 0, 0, 0).is_err());
    }

    proptest! {
        /// Hysteresis: no demand level makes a workload both want to migrate (from primary) and
        /// want to return (from the shadow).
        #[test]
        fn never_migrates_and_returns_on_the_same_outlook(level in 0.0f64..200.0) {
            let upper = vec![level; 30];
            let o = outlook(&upper, level);
            let go = matches!(judge_shortage(&policy(), &o, false, 0), TriggerVerdict::Migrate { .. });
            let back = judge_shortage(&policy(), &o, true, u64::MAX) == TriggerVerdict::Return;
            prop_assert!(!(go && back));
        }
    }
}
