//! Live state handed from the running process to its replacement on a binary upgrade: what the
//! controller and the guard changed at run time (weights, shadow members, rollback cooldowns),
//! which the config file does not hold. The new process reads it from the old one's admin API
//! (`GET /v1/state`) before taking the sockets over.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

use policies::{GuardState, PoolKind, RollbackReason, ShadowWeight};
use serde::{Deserialize, Serialize};

use crate::table::RouteTable;
use crate::upstream::UpstreamRegistry;
use crate::workload::{Pool, Workload};

/// Largest state document accepted (1,000 workloads with a few members each fit easily).
const MAX_STATE_BYTES: usize = 8 * 1024 * 1024;

/// Every workload's live state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuntimeState {
    /// By workload.
    pub workloads: Vec<WorkloadState>,
}

/// One workload's live state, with what its config file said, so the new process can tell a
/// run-time change (kept) from a file change (the new file wins, as on a reload).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadState {
    /// The workload.
    pub name: String,
    /// Live shadow weight, parts per million.
    pub weight_ppm: u32,
    /// The weight the old process's file gave.
    pub file_weight_ppm: u32,
    /// Live shadow members.
    pub shadow: Vec<SocketAddr>,
    /// The shadow members the old process's file gave.
    pub file_shadow: Vec<SocketAddr>,
    /// A running rollback cooldown.
    pub rolled_back: Option<Cooldown>,
}

/// A rollback whose cooldown still runs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Cooldown {
    /// Why it rolled back.
    pub reason: RollbackReason,
    /// Cooldown left, milliseconds.
    pub left_ms: u64,
    /// When it happened (wall clock), for the admin view.
    pub at_unix_ms: u64,
}

impl RuntimeState {
    /// The live state of every workload in `table` at `now_ms`.
    pub fn of(table: &RouteTable, now_ms: u64) -> Self {
        let workloads = table
            .workloads()
            .iter()
            .map(|w| WorkloadState::of(w, now_ms))
            .collect();
        RuntimeState { workloads }
    }

    /// Applies the state to `table`'s workloads of the same name; returns how many it changed.
    pub fn apply(&self, table: &RouteTable, registry: &UpstreamRegistry, now_ms: u64) -> usize {
        self.workloads
            .iter()
            .filter(|s| {
                table
                    .workload(&s.name)
                    .is_some_and(|w| s.restore(w, registry, now_ms))
            })
            .count()
    }
}

impl WorkloadState {
    fn of(w: &Workload, now_ms: u64) -> Self {
        let spec = w.spec();
        let members = |kind| {
            w.pool(kind)
                .members()
                .iter()
                .map(|u| u.addr())
                .collect::<Vec<_>>()
        };
        let (state, last) = w.guard_state();
        let rolled_back = match state {
            GuardState::RolledBack {
                reason, until_ms, ..
            } if until_ms > now_ms => Some(Cooldown {
                reason,
                left_ms: until_ms - now_ms,
                at_unix_ms: last
                    .and_then(|l| l.at.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_millis() as u64),
            }),
            _ => None,
        };
        WorkloadState {
            name: w.name().to_string(),
            weight_ppm: w.weight_ppm(),
            file_weight_ppm: spec.shadow_weight.to_ppm(),
            shadow: members(PoolKind::Shadow),
            file_shadow: spec.shadow.clone(),
            rolled_back,
        }
    }

    /// Applies what the new file did not change; returns whether anything was applied.
    fn restore(&self, w: &Workload, registry: &UpstreamRegistry, now_ms: u64) -> bool {
        let spec = w.spec();
        let mut changed = false;
        if spec.shadow == self.file_shadow
            && w.pool(PoolKind::Shadow)
                .members()
                .iter()
                .map(|u| u.addr())
                .ne(self.shadow.iter().copied())
        {
            w.replace_shadow(Pool::new(&self.shadow, registry, &w.edge().peer));
            changed = true;
        }
        if let Some(c) = self.rolled_back {
            let at = SystemTime::UNIX_EPOCH + Duration::from_millis(c.at_unix_ms);
            w.restore_cooldown(c.reason, at, now_ms + c.left_ms, now_ms);
            changed = true;
        } else if spec.shadow_weight.to_ppm() == self.file_weight_ppm
            && w.weight_ppm() != self.weight_ppm
        {
            let weight = ShadowWeight::from_ppm(self.weight_ppm);
            changed |= w.set_weight(weight, now_ms, "upgrade handover").is_ok();
        }
        changed
    }
}

/// Reads the running process's state from its admin API at `admin`, within `timeout`.
pub fn fetch(admin: SocketAddr, timeout: Duration) -> Result<RuntimeState, String> {
    let mut s = TcpStream::connect_timeout(&admin, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /v1/state HTTP/1.1\r\nHost: umbra-admin\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.take(MAX_STATE_BYTES as u64 + 64 * 1024)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP answer")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "answered {:?}",
            head.lines().next().unwrap_or_default()
        ));
    }
    serde_json::from_slice(&raw[split + 4..]).map_err(|e| format!("unreadable state: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::path::Path;

    const FILE: &str = r#"
[[workloads]]
name = "api"
primary = ["127.0.0.1:1"]
shadow = ["127.0.0.1:2"]
[workloads.guard]
min_requests = 5

[[workloads]]
name = "web"
path_prefix = "/web"
primary = ["127.0.0.1:3"]
"#;

    fn table(text: &str) -> (RouteTable, UpstreamRegistry) {
        let cfg = config::parse(Path::new("t.toml"), text).expect("valid");
        let registry = UpstreamRegistry::new(cfg.proxy.timeouts);
        let metrics = Metrics::new().expect("metrics");
        (
            RouteTable::build(&cfg, None, &registry, false, &metrics, 0),
            registry,
        )
    }

    fn weight(t: &RouteTable, name: &str) -> f64 {
        t.workload(name).expect("workload").shadow_weight().get()
    }

    #[test]
    fn run_time_changes_survive_the_handover_and_file_changes_win() {
        let (old, old_registry) = table(FILE);
        let api = old.workload("api").expect("api");
        api.set_weight(ShadowWeight::new(0.5).expect("weight"), 0, "test")
            .expect("steady");
        let web = old.workload("web").expect("web");
        web.replace_shadow(Pool::new(
            &["127.0.0.1:9".parse().expect("addr")],
            &old_registry,
            &web.edge().peer,
        ));
        web.set_weight(ShadowWeight::new(0.2).expect("weight"), 0, "test")
            .expect("steady");
        let wire = serde_json::to_string(&RuntimeState::of(&old, 1_000)).expect("serialise");
        let state: RuntimeState = serde_json::from_str(&wire).expect("deserialise");

        // The new file changes api's weight: the file wins there, the rest carries over.
        let (new, registry) = table(&FILE.replacen(
            "shadow = [\"127.0.0.1:2\"]",
            "shadow = [\"127.0.0.1:2\"]\nshadow_weight = 0.1",
            1,
        ));
        assert_eq!(state.apply(&new, &registry, 0), 1);
        assert_eq!(weight(&new, "api"), 0.1, "the new file's own change wins");
        assert_eq!(
            weight(&new, "web"),
            0.2,
            "a weight set at run time carries over"
        );
        let members: Vec<_> = new
            .workload("web")
            .expect("web")
            .pool(PoolKind::Shadow)
            .members()
            .iter()
            .map(|u| u.addr().to_string())
            .collect();
        assert_eq!(
            members,
            ["127.0.0.1:9"],
            "announced shadow members carry over"
        );
    }

    #[test]
    fn a_running_cooldown_carries_over_and_still_refuses_a_raise() {
        let (old, _) = table(FILE);
        let api = old.workload("api").expect("api");
        api.set_weight(ShadowWeight::new(0.5).expect("weight"), 0, "test")
            .expect("steady");
        for t in 0..10 {
            api.record(PoolKind::Shadow, 100 + t, Duration::from_millis(1), true);
        }
        assert!(
            api.evaluate_guard(200).is_some(),
            "the failing shadow is rolled back"
        );
        let state = RuntimeState::of(&old, 1_200);
        let cooldown = state.workloads[0].rolled_back.expect("cooldown running");
        assert_eq!(
            cooldown.left_ms,
            30_000 - 1_000,
            "30 s cooldown from t=200, read at 1200"
        );

        let (new, registry) = table(FILE);
        state.apply(&new, &registry, 50);
        let w = new.workload("api").expect("api");
        assert!(w.is_rolled_back());
        assert_eq!(w.shadow_weight().get(), 0.0);
        let raise = w.set_weight(ShadowWeight::new(0.3).expect("weight"), 60, "test");
        assert!(
            raise.is_err(),
            "the cooldown still refuses a raise after the handover"
        );
        assert!(
            w.set_weight(ShadowWeight::new(0.3).expect("weight"), 50 + 29_000, "test")
                .is_ok()
        );
    }
}
