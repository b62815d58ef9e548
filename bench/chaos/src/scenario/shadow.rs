//! The shadow pool failing mid-ramp: an instance killed outright, or every instance made slow.
//! Either way traffic must go back to primary without a client noticing.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{AFTER, BEFORE, Options, consistency, path_of, secs, settle};
use crate::stack::{ChaosStack, proxy_workload, set_delay};
use crate::summary::Run;

/// Delay injected into every shadow instance: over the guard's 250 ms p99 ceiling.
const SLOW: Duration = Duration::from_millis(600);

/// A stack with the surge on and the ramp past 30%, or the missed row if it never got there.
async fn mid_ramp(o: Options) -> Result<ChaosStack, Run> {
    let mut c = ChaosStack::new(o.rate, "keep_warm", "10m");
    c.start().await;
    settle(BEFORE).await;
    c.surge();
    if !c.weight_at_least(0.3, Duration::from_secs(90)).await {
        return Err(c.abandon("the ramp never reached 0.3").await);
    }
    Ok(c)
}

/// One shadow instance SIGKILLed at weight 0.3.
pub async fn killed(o: Options) -> anyhow::Result<Run> {
    let mut c = match mid_ramp(o).await {
        Ok(c) => c,
        Err(missed) => return Ok(missed),
    };
    let pids = c.stack.shadow_pids("api");
    let victim = *pids
        .first()
        .ok_or_else(|| anyhow::anyhow!("no shadow pid"))?;
    let weight = c.weight().await.unwrap_or_default();
    let fault_start = Instant::now();
    kill(Pid::from_raw(victim), Signal::SIGKILL)?;
    let rolled = c
        .wait_state(&["rolled_back"], Duration::from_secs(30))
        .await;
    let took = fault_start.elapsed();
    let fault_end = Instant::now();
    settle(AFTER).await;
    c.stop_load().await;
    let agreement = consistency::check(&c, "rolled_back").await;
    let reason = rolled
        .as_ref()
        .and_then(|w| w["last_reason"].as_str().map(str::to_string))
        .unwrap_or_default();
    Ok(Run {
        samples: c.rec.snapshot(),
        fault_start: c.rec.at(fault_start),
        fault_end: c.rec.at(fault_end),
        state_ok: agreement.ok,
        state: agreement.text,
        exempt: false,
        notes: format!(
            "1 of {} shadow instances killed at weight {weight}; rolled back in {} ({reason}); transitions: {}",
            pids.len(),
            secs(took),
            transitions(&c)
        ),
    })
}

/// Every shadow instance answers 600 ms late from weight 0.3 on.
pub async fn slow(o: Options) -> anyhow::Result<Run> {
    let mut c = match mid_ramp(o).await {
        Ok(c) => c,
        Err(missed) => return Ok(missed),
    };
    let members = c.shadow_members().await;
    let weight = c.weight().await.unwrap_or_default();
    let fault_start = Instant::now();
    set_delay(&members, SLOW.as_millis() as u64).await?;
    let guard = c.weight_at_most(0.0, Duration::from_secs(30)).await;
    let guard_took = fault_start.elapsed();
    let rolled = c
        .wait_state(&["rolled_back"], Duration::from_secs(30))
        .await;
    let took = fault_start.elapsed();
    let fault_end = Instant::now();
    settle(AFTER).await;
    c.stop_load().await;
    let agreement = consistency::check(&c, "rolled_back").await;
    let proxy = proxy_workload(&c.stack).await.unwrap_or_default();
    let reason = proxy["last_rollback"]["reason"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    Ok(Run {
        samples: c.rec.snapshot(),
        fault_start: c.rec.at(fault_start),
        fault_end: c.rec.at(fault_end),
        state_ok: agreement.ok && guard && rolled.is_some() && reason == "p99_ceiling",
        state: agreement.text,
        exempt: false,
        notes: format!(
            "{} shadow instances made {} ms slow at weight {weight}; the proxy's guard set weight 0 in {} \
             (reason {reason}), the controller recorded the rollback after {}; transitions: {}",
            members.len(),
            SLOW.as_millis(),
            secs(guard_took),
            secs(took),
            transitions(&c)
        ),
    })
}

fn transitions(c: &ChaosStack) -> String {
    let log = c.transitions();
    path_of(&log.iter().map(|(_, to, _)| to.as_str()).collect::<Vec<_>>())
}
