//! Umbra's decisions as pure functions over plain data: no I/O, no clock reads, no global RNG.

mod admission;
mod guard;
mod pool;
mod priority;
mod rollback;
mod select;
mod split;
mod weight;

pub use admission::{AdmissionShares, SharesError, admit};
pub use guard::{
    GuardThresholds, GuardVerdict, PoolWindow, RollbackReason, ThresholdsError, judge,
};
pub use pool::PoolKind;
pub use priority::{ParsePriorityError, Priority};
pub use rollback::{GuardEvent, GuardOutcome, GuardState, guard_transition};
pub use select::{UpstreamLoad, pick_two_choices};
pub use split::choose_pool;
pub use weight::{ShadowWeight, WeightError};
