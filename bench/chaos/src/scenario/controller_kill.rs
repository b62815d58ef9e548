//! The controller SIGKILLed mid-ramp and started again: the proxy keeps the weight it had, and
//! the new controller resumes the migration from its store.

use std::time::{Duration, Instant};

use super::{AFTER, BEFORE, Options, consistency, path_of, secs, settle};
use crate::stack::ChaosStack;
use crate::summary::Run;

/// Runs the scenario.
pub async fn run(o: Options) -> anyhow::Result<Run> {
    let mut c = ChaosStack::new(o.rate, "keep_warm", "10m");
    c.start().await;
    settle(BEFORE).await;
    c.surge();
    if !c.weight_at_least(0.3, Duration::from_secs(90)).await {
        return Ok(c.abandon("the ramp never reached 0.3").await);
    }
    let fault_start = Instant::now();
    c.stack.kill_controller();
    let held = c.weight().await.unwrap_or_default();
    settle(Duration::from_secs(1)).await;
    c.stack.start_controller().await;
    let restarted = fault_start.elapsed();
    let done = c.wait_state(&["migrated"], Duration::from_secs(60)).await;
    let took = fault_start.elapsed();
    let fault_end = Instant::now();
    settle(AFTER).await;
    c.stop_load().await;

    let agreement = consistency::check(&c, "migrated").await;
    let resumed = c
        .stack
        .log("controller.log")
        .contains("resumed ramp at weight");
    let log = c.transitions();
    let rolled_back = log.iter().any(|(_, to, _)| to == "rolled_back");
    let path: Vec<&str> = log.iter().map(|(_, to, _)| to.as_str()).collect();
    Ok(Run {
        samples: c.rec.snapshot(),
        fault_start: c.rec.at(fault_start),
        fault_end: c.rec.at(fault_end),
        state_ok: agreement.ok && done.is_some() && resumed && !rolled_back,
        state: if resumed {
            format!("resumed; {}", agreement.text)
        } else {
            format!("did not resume; {}", agreement.text)
        },
        exempt: false,
        notes: format!(
            "killed at weight {held} (the proxy kept it while the controller was down); restarted and serving its API after {}; \
             migrated {} after the kill; transitions: {}",
            secs(restarted),
            secs(took),
            path_of(&path)
        ),
    })
}
