//! Umbra's decisions as pure functions over plain data: no I/O, no clock reads, no global RNG.

mod admission;
mod guard;
mod headroom;
mod leader;
mod migration;
mod pool;
mod priority;
mod ramp;
mod ranking;
mod reconcile;
mod rollback;
mod select;
mod sizing;
mod split;
mod sticky;
mod trigger;
mod weight;

pub use admission::{AdmissionShares, SharesError, admit};
pub use guard::{
    GuardThresholds, GuardVerdict, PoolWindow, RollbackReason, ThresholdsError, judge,
};
pub use headroom::startup_rise;
pub use leader::{
    LeaseAction, LeaseObservation, LeaseRecord, decide_lease, observe_lease, still_leading,
};
pub use migration::{
    Action, MigrationInputs, MigrationPolicy, Phase, migration_step, recover,
    shadow_ready_after_restart,
};
pub use pool::PoolKind;
pub use priority::{ParsePriorityError, Priority};
pub use ramp::{
    AtFull, GateLimits, GateVerdict, RampError, RampPolicy, ShadowHealth, gate, next_weight,
};
pub use ranking::{Candidate, rank_workloads};
pub use reconcile::{
    Change, Facts, Memory, PoolShape, ProxyFacts, Rules, ShadowFacts, Step, near_peak, reconcile,
    recover_from, shortage,
};
pub use rollback::{GuardEvent, GuardOutcome, GuardState, guard_transition};
pub use select::{UpstreamLoad, pick_two_choices};
pub use sizing::{
    InstanceSize, ShadowPlan, SizingError, SizingInputs, SizingPolicy, plan_shadow_capacity,
};
pub use split::choose_pool;
pub use sticky::{SessionFacts, choose_pool_sticky};
pub use trigger::{Outlook, TriggerError, TriggerPolicy, TriggerVerdict, judge_shortage};
pub use weight::{ShadowWeight, WeightError};
