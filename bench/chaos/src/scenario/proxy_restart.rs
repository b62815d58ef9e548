//! The proxy SIGKILLed mid-migration under `umbra up`, which supervises it: clients fail while
//! nothing listens (the one proxy is down, so this scenario is exempt from the zero-failure
//! target); what counts is how fast it is back and whether it gets its migration state back.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use umbra_e2e::http::{answers_2xx, eventually};
use umbra_e2e::procfs::children_named;

use super::{AFTER, BEFORE, Options, consistency, path_of, secs, settle};
use crate::stack::ChaosStack;
use crate::summary::Run;

/// Runs the scenario.
pub async fn run(o: Options) -> anyhow::Result<Run> {
    let mut c = ChaosStack::new(o.rate, "keep_warm", "10m");
    c.stack.start_up().await;
    c.stack.wait_serving().await;
    c.start_base();
    settle(BEFORE).await;
    c.surge();
    if !c.weight_at_least(0.3, Duration::from_secs(90)).await {
        return Ok(c.abandon("the ramp never reached 0.3").await);
    }
    let up = c
        .stack
        .controller_pid()
        .ok_or_else(|| anyhow::anyhow!("umbra up not running"))?;
    let old = *children_named(up, "umbra-proxy")
        .first()
        .ok_or_else(|| anyhow::anyhow!("umbra up has no umbra-proxy child"))?;
    let weight = c.weight().await.unwrap_or_default();
    let members = c.shadow_members().await.len();

    let fault_start = Instant::now();
    kill(Pid::from_raw(old as i32), Signal::SIGKILL)?;
    let ready_url = format!("http://{}/readyz", c.stack.admin);
    let ready = eventually(Duration::from_secs(30), || async {
        let pid = children_named(up, "umbra-proxy")
            .into_iter()
            .find(|p| *p != old)?;
        answers_2xx(&ready_url, Duration::from_millis(100))
            .await
            .then_some(pid)
    })
    .await
    .map(|_| fault_start.elapsed());
    // The controller must give the new process its weight and shadow members back.
    let restored = eventually(Duration::from_secs(30), || async {
        let w = c.weight().await?;
        let api = crate::stack::status(&c.stack).await?;
        let want = api["shadow_weight"].as_f64()?;
        let has_members = !c.shadow_members().await.is_empty();
        ((w - want).abs() < 1e-6 && (want == 0.0 || has_members)).then_some(())
    })
    .await
    .map(|()| fault_start.elapsed());
    let done = c
        .wait_state(&["migrated", "rolled_back"], Duration::from_secs(60))
        .await;
    let fault_end = Instant::now();
    settle(AFTER).await;
    c.stop_load().await;

    let end_state = done
        .as_ref()
        .and_then(|w| w["migration_state"].as_str())
        .unwrap_or("unknown")
        .to_string();
    // Resuming (migrated) or rolling back are both clean ends; the copies must agree on it.
    let agreement = consistency::check(&c, &end_state).await;
    let log = c.transitions();
    let path: Vec<&str> = log.iter().map(|(_, to, _)| to.as_str()).collect();
    Ok(Run {
        samples: c.rec.snapshot(),
        fault_start: c.rec.at(fault_start),
        fault_end: c.rec.at(fault_end),
        state_ok: ready.is_some() && restored.is_some() && agreement.ok,
        state: agreement.text,
        exempt: true,
        notes: format!(
            "proxy killed at weight {weight} with {members} shadow members; `umbra up` had a new proxy ready after {}; \
             weight and shadow members restored after {}; migration ended {end_state}; transitions: {}",
            ready.map_or("never".into(), secs),
            restored.map_or("never".into(), secs),
            path_of(&path)
        ),
    })
}
