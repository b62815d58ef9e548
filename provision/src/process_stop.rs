//! Stopping local instances: SIGTERM to each process group, a grace period, then SIGKILL to
//! the group and to anything its cgroup still holds; waits are async sleeps, never blocking.

use std::collections::HashMap;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::Child;
use tokio::time::Instant;

use super::proc_identity::read_stat;
use super::process_state::InstanceRecord;

/// How often exits are polled while waiting.
const POLL: Duration = Duration::from_millis(25);
/// How long to wait for the kernel to finish SIGKILLed processes.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Stops `victims` together (one grace period for all, not one each) and removes their
/// cgroups. `children` holds the handles of processes this controller spawned, so their exit
/// statuses are collected instead of left as zombies.
pub(crate) async fn stop_all(
    victims: &[InstanceRecord],
    children: &mut HashMap<u32, Child>,
    grace: Duration,
) {
    for victim in victims {
        signal_group(victim, Signal::SIGTERM);
    }
    let left = wait_for_exit(victims, children, Instant::now() + grace).await;
    if !left.is_empty() {
        for victim in &left {
            tracing::warn!(
                pid = victim.pid,
                grace_ms = grace.as_millis() as u64,
                "instance ignored SIGTERM; sending SIGKILL"
            );
            signal_group(victim, Signal::SIGKILL);
        }
        let still = wait_for_exit(&left, children, Instant::now() + KILL_WAIT).await;
        for victim in still {
            tracing::error!(
                pid = victim.pid,
                "instance survived SIGKILL (uninterruptible sleep?)"
            );
        }
    }
    for victim in victims {
        children.remove(&victim.pid);
        remove_cgroup(victim).await;
    }
}

/// Kills what an exited instance left in its cgroup and removes the cgroup.
pub(crate) async fn remove_cgroup(record: &InstanceRecord) {
    let Some(group) = &record.cgroup else {
        return;
    };
    for attempt in 0..40 {
        // Daemonized children may have left the process group but never leave the cgroup.
        for pid in group.pids().unwrap_or_default() {
            if let Ok(pid) = i32::try_from(pid) {
                let _ignored_if_already_gone = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        match group.remove() {
            Ok(()) => return,
            Err(e) if attempt == 39 => {
                tracing::warn!(pid = record.pid, cgroup = ?group, error = %e, "could not remove instance cgroup");
            }
            // Busy until the kernel has finished the killed processes.
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Whether `record`'s process has exited (reaping it when it is our child).
pub(crate) fn has_exited(record: &InstanceRecord, children: &mut HashMap<u32, Child>) -> bool {
    if let Some(child) = children.get_mut(&record.pid) {
        if let Ok(status) = child.try_wait() {
            return status.is_some();
        }
    }
    match read_stat(record.pid) {
        Ok(Some(stat)) => !stat.is_running() || stat.start_ticks != record.start_ticks,
        Ok(None) => true,
        Err(_) => true,
    }
}

async fn wait_for_exit(
    victims: &[InstanceRecord],
    children: &mut HashMap<u32, Child>,
    deadline: Instant,
) -> Vec<InstanceRecord> {
    loop {
        let left: Vec<InstanceRecord> = victims
            .iter()
            .filter(|v| !has_exited(v, children))
            .cloned()
            .collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(POLL).await;
    }
}

fn signal_group(record: &InstanceRecord, signal: Signal) {
    let Ok(pgid) = i32::try_from(record.pid) else {
        return;
    };
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pid = record.pid, ?signal, error = %e, "could not signal instance")
        }
    }
}
