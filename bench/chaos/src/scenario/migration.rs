//! A full migration and back: demand surges past primary capacity, the controller provisions
//! the shadow, ramps it to 100% and decommissions primary; demand falls, primary is restored
//! and traffic returns to it.

use std::time::{Duration, Instant};

use super::{AFTER, BEFORE, Options, consistency, path_of, secs, settle};
use crate::stack::ChaosStack;
use crate::summary::Run;

/// Runs the scenario.
pub async fn run(o: Options) -> anyhow::Result<Run> {
    let mut c = ChaosStack::new(o.rate, "decommission", "10m");
    c.start().await;
    settle(BEFORE).await;
    let fault_start = Instant::now();
    c.surge();
    let migrated = c.wait_state(&["migrated"], Duration::from_secs(90)).await;
    let to_full = fault_start.elapsed();
    if migrated.is_none() {
        return Ok(c.abandon("never migrated").await);
    }
    // Let the trigger's minimum hold pass with everything on the shadow.
    settle(Duration::from_secs(12)).await;
    let calm_at = Instant::now();
    c.calm().await;
    let back = c.wait_state(&["idle"], Duration::from_secs(90)).await;
    let to_primary = calm_at.elapsed();
    let fault_end = Instant::now();
    settle(AFTER).await;
    c.stop_load().await;

    let agreement = consistency::check(&c, "idle").await;
    let log = c.transitions();
    let path: Vec<&str> = log.iter().map(|(_, to, _)| to.as_str()).collect();
    let ramp_steps = path.iter().filter(|s| **s == "ramping").count();
    let full_path = path.first() == Some(&"provisioning")
        && path.contains(&"migrated")
        && path.contains(&"returning")
        && path.last() == Some(&"idle")
        && !path.contains(&"rolled_back");
    let decommissioned = log.iter().any(|(_, _, r)| r.contains("decommissioned"));
    Ok(Run {
        samples: c.rec.snapshot(),
        fault_start: c.rec.at(fault_start),
        fault_end: c.rec.at(fault_end),
        state_ok: agreement.ok && back.is_some() && full_path && decommissioned,
        state: agreement.text,
        exempt: false,
        notes: format!(
            "surge to 100% on the shadow in {} ({ramp_steps} ramp steps, primary decommissioned: {decommissioned}); \
             back on a restored primary {} after demand fell; transitions: {}",
            secs(to_full),
            secs(to_primary),
            path_of(&path)
        ),
    })
}
