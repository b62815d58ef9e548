//! The rollback state machine of one workload: steady, or rolled back and cooling down.

use crate::{GuardVerdict, RollbackReason, ShadowWeight};

/// Where a workload's guard stands. Times are milliseconds on the caller's monotonic clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuardState {
    /// Normal operation: the weight may be changed freely.
    Steady,
    /// The guard set the weight to 0; raising it is refused until `until_ms`.
    RolledBack {
        /// Why.
        reason: RollbackReason,
        /// When it happened.
        at_ms: u64,
        /// End of the cooldown.
        until_ms: u64,
    },
}

impl GuardState {
    /// `steady` or `rolled_back`, as the admin API reports it.
    pub fn as_str(&self) -> &'static str {
        match self {
            GuardState::Steady => "steady",
            GuardState::RolledBack { .. } => "rolled_back",
        }
    }
}

/// Something that happens to the guard.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuardEvent {
    /// The periodic evaluation's verdict (only made while the weight is above 0).
    Verdict(GuardVerdict),
    /// Someone (admin API, reload) asks for a new weight.
    SetWeight(ShadowWeight),
}

/// What the caller must do after a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GuardOutcome {
    /// Nothing changes.
    Unchanged,
    /// Set the weight to 0 now, log and count the reason.
    RollBack(RollbackReason),
    /// Apply the requested weight.
    WeightAccepted,
    /// Refuse the requested weight: still cooling down for this long.
    WeightRefused {
        /// Milliseconds of cooldown left.
        remaining_ms: u64,
        /// Why the workload was rolled back.
        reason: RollbackReason,
    },
}

/// The one transition function: `(state, event, now) -> (state, outcome)`.
///
/// A rollback starts a cooldown; during it only a weight of 0 is accepted. The first raise
/// after the cooldown returns the workload to steady.
pub fn guard_transition(
    state: GuardState,
    event: GuardEvent,
    now_ms: u64,
    cooldown_ms: u64,
) -> (GuardState, GuardOutcome) {
    match (state, event) {
        (GuardState::Steady, GuardEvent::Verdict(GuardVerdict::Rollback(reason))) => (
            GuardState::RolledBack {
                reason,
                at_ms: now_ms,
                until_ms: now_ms.saturating_add(cooldown_ms),
            },
            GuardOutcome::RollBack(reason),
        ),
        (s, GuardEvent::Verdict(_)) => (s, GuardOutcome::Unchanged),
        (GuardState::Steady, GuardEvent::SetWeight(_)) => {
            (GuardState::Steady, GuardOutcome::WeightAccepted)
        }
        (s @ GuardState::RolledBack { .. }, GuardEvent::SetWeight(w)) if w.is_zero() => {
            (s, GuardOutcome::WeightAccepted)
        }
        (
            s @ GuardState::RolledBack {
                until_ms, reason, ..
            },
            GuardEvent::SetWeight(_),
        ) => {
            if now_ms < until_ms {
                let remaining_ms = until_ms - now_ms;
                (
                    s,
                    GuardOutcome::WeightRefused {
                        remaining_ms,
                        reason,
                    },
                )
            } else {
                (GuardState::Steady, GuardOutcome::WeightAccepted)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const REASON: RollbackReason = RollbackReason::P99Ceiling {
        p99: Duration::from_millis(300),
        max: Duration::from_millis(100),
    };

    fn w(x: f64) -> ShadowWeight {
        ShadowWeight::new(x).expect("valid")
    }

    #[test]
    fn rollback_then_cooldown_then_raise() {
        let (s, out) = guard_transition(
            GuardState::Steady,
            GuardEvent::Verdict(GuardVerdict::Rollback(REASON)),
            1_000,
            30_000,
        );
        assert_eq!(out, GuardOutcome::RollBack(REASON));
        assert_eq!(s.as_str(), "rolled_back");

        let (s, out) = guard_transition(s, GuardEvent::SetWeight(w(0.5)), 10_000, 30_000);
        assert_eq!(
            out,
            GuardOutcome::WeightRefused {
                remaining_ms: 21_000,
                reason: REASON
            }
        );
        assert_eq!(s.as_str(), "rolled_back");

        let (s, out) = guard_transition(s, GuardEvent::SetWeight(w(0.0)), 10_000, 30_000);
        assert_eq!(out, GuardOutcome::WeightAccepted);
        assert_eq!(s.as_str(), "rolled_back");

        let (s, out) = guard_transition(s, GuardEvent::SetWeight(w(0.5)), 31_000, 30_000);
        assert_eq!(out, GuardOutcome::WeightAccepted);
        assert_eq!(s, GuardState::Steady);
    }

    #[test]
    fn a_second_bad_verdict_while_rolled_back_changes_nothing() {
        let (s, _) = guard_transition(
            GuardState::Steady,
            GuardEvent::Verdict(GuardVerdict::Rollback(REASON)),
            0,
            100,
        );
        let (s2, out) = guard_transition(
            s,
            GuardEvent::Verdict(GuardVerdict::Rollback(REASON)),
            50,
            100,
        );
        assert_eq!((s2, out), (s, GuardOutcome::Unchanged));
    }

    #[test]
    fn healthy_verdicts_change_nothing() {
        for v in [GuardVerdict::Healthy, GuardVerdict::TooFewRequests] {
            assert_eq!(
                guard_transition(GuardState::Steady, GuardEvent::Verdict(v), 0, 100),
                (GuardState::Steady, GuardOutcome::Unchanged)
            );
        }
    }

    #[test]
    fn zero_cooldown_allows_an_immediate_raise() {
        let (s, _) = guard_transition(
            GuardState::Steady,
            GuardEvent::Verdict(GuardVerdict::Rollback(REASON)),
            5,
            0,
        );
        assert_eq!(
            guard_transition(s, GuardEvent::SetWeight(w(1.0)), 5, 0).1,
            GuardOutcome::WeightAccepted
        );
    }
}
