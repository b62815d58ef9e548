//! The admin API's contract between `umbra-proxy` and the controller: what the proxy reports and what it accepts.
//!
//! Both binaries compile against these types, so a field renamed or a state added on one side
//! fails the other's build instead of a `"rolled_back"` string comparison at run time.

mod body;
mod report;

pub use body::{MAX_POOL_MEMBERS, PoolBody, PoolBodyError, WeightBody};
pub use report::{GuardStatus, Pool, Rollback, RollbackCause, Upstream, Workload, WorkloadList};
