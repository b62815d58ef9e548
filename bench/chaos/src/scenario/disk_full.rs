//! The controller's data directory (a small tmpfs) filled to the last byte mid-ramp while it
//! writes history every scrape, then given its space back: it must keep serving and steering,
//! and its store must end up intact and in agreement with what it did, across a restart too.

use std::time::{Duration, Instant, SystemTime};

use umbra_e2e::store::StoreReader;
use umbra_e2e::tmpfs::Tmpfs;

use super::{AFTER, BEFORE, Options, consistency, path_of, secs, settle};
use crate::stack::{ChaosStack, status};
use crate::summary::Run;

/// How long the disk stays full.
const FULL: Duration = Duration::from_secs(10);

/// The stack and the mount under its data dir: fields drop in order, so the processes are
/// stopped (reading their pids from the data dir) before it is unmounted.
struct OnTmpfs {
    c: ChaosStack,
    disk: Tmpfs,
}

/// Runs the scenario.
pub async fn run(o: Options) -> anyhow::Result<Run> {
    let c = ChaosStack::new(o.rate, "keep_warm", "10m");
    let disk = Tmpfs::mount(&c.stack.dir.path().join("data"), 16)?;
    let mut s = OnTmpfs { c, disk };
    let c = &mut s.c;
    c.start().await;
    settle(BEFORE).await;
    c.surge();
    if !c.weight_at_least(0.2, Duration::from_secs(90)).await {
        return Ok(c.abandon("the ramp never reached 0.2").await);
    }
    let weight_before = c.weight().await.unwrap_or_default();

    let fault_start = Instant::now();
    let filled = s.disk.fill()?;
    let c = &mut s.c;
    // While full: does the API answer and does the ramp go on?
    let (mut answered, mut asked, mut weight_during) = (0, 0, weight_before);
    while fault_start.elapsed() < FULL {
        asked += 1;
        if status(&c.stack).await.is_some() {
            answered += 1;
        }
        weight_during = weight_during.max(c.weight().await.unwrap_or_default());
        settle(Duration::from_millis(500)).await;
    }
    s.disk.free()?;
    let fault_end = Instant::now();
    let freed_at_ms = unix_ms(SystemTime::now());
    let c = &mut s.c;
    let migrated = c.wait_state(&["migrated"], Duration::from_secs(60)).await;
    settle(Duration::from_secs(2)).await;
    let agreement = consistency::check(c, "migrated").await;
    let samples_after =
        StoreReader::open(&c.stack.dir.path().join("data")).samples_since(freed_at_ms);
    let store_errors = c.stack.log("controller.log").matches("failed").count();

    // A restart must find what the controller did while the disk was full.
    c.stack.kill_controller();
    c.stack.start_controller().await;
    settle(Duration::from_secs(3)).await;
    let restarted = consistency::check(c, "migrated").await;
    settle(AFTER).await;
    c.stop_load().await;

    let log = c.transitions();
    let path: Vec<&str> = log.iter().map(|(_, to, _)| to.as_str()).collect();
    let state_ok = agreement.ok
        && restarted.ok
        && migrated.is_some()
        && answered == asked
        && samples_after > 0;
    Ok(Run {
        samples: c.rec.snapshot(),
        fault_start: c.rec.at(fault_start),
        fault_end: c.rec.at(fault_end),
        state_ok,
        state: if agreement.ok && restarted.ok {
            format!("{}; same after a restart", agreement.text)
        } else {
            format!(
                "after: {}; after a restart: {}",
                agreement.text, restarted.text
            )
        },
        exempt: false,
        notes: format!(
            "disk full ({} KiB filler) for {} from weight {weight_before}: API answered {answered}/{asked}, \
             ramp went on to {weight_during}; {store_errors} failures logged; {samples_after} samples stored after the space came back; \
             transitions: {}",
            filled / 1024,
            secs(FULL),
            path_of(&path)
        ),
    })
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
