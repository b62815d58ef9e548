//! What the proxy reports about its workloads (`GET /v1/workloads`, `GET /v1/workloads/{name}`).

use policies::Priority;
use serde::{Deserialize, Serialize};

/// `GET /v1/workloads`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadList {
    /// Every workload, in the config's order.
    pub workloads: Vec<Workload>,
}

/// One workload as a proxy sees it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Name.
    pub name: String,
    /// Current shadow weight, 0..=1.
    pub shadow_weight: f64,
    /// The rollback guard's state.
    pub state: GuardStatus,
    /// Priority class. The fields the controller does not act on default when absent, so a
    /// controller reads a proxy one version behind during a rolling upgrade.
    #[serde(default = "normal")]
    pub priority: Priority,
    /// Whether requests carry no server-side session state.
    #[serde(default)]
    pub stateless: bool,
    /// Host patterns (empty = any).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path prefix.
    #[serde(default)]
    pub path_prefix: String,
    /// The most recent automatic rollback, if any.
    pub last_rollback: Option<Rollback>,
    /// Milliseconds until raising the weight is allowed again (0 when it is).
    #[serde(default)]
    pub cooldown_remaining_ms: u64,
    /// Primary pool.
    pub primary: Pool,
    /// Shadow pool.
    pub shadow: Pool,
}

impl Workload {
    /// When the guard rolled the shadow back, while it stays rolled back (`Some(0)` when the
    /// proxy did not say when).
    pub fn rolled_back_at_ms(&self) -> Option<u64> {
        (self.state == GuardStatus::RolledBack)
            .then(|| self.last_rollback.as_ref().map_or(0, |r| r.at_unix_ms))
    }
}

fn normal() -> Priority {
    Priority::Normal
}

/// The rollback guard's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardStatus {
    /// The shadow takes its weight.
    Steady,
    /// The guard snapped the weight to 0; raising it waits out the cooldown.
    RolledBack,
}

/// Why the guard rolled back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackCause {
    /// The shadow's failed share passed its ceiling.
    ErrorRate,
    /// The shadow's p99 passed its ceiling.
    P99Ceiling,
    /// The shadow's p99 passed its ratio to primary's.
    P99Ratio,
}

impl RollbackCause {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackCause::ErrorRate => "error_rate",
            RollbackCause::P99Ceiling => "p99_ceiling",
            RollbackCause::P99Ratio => "p99_ratio",
        }
    }
}

/// A rollback.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollback {
    /// Why.
    pub reason: RollbackCause,
    /// The numbers behind it, in words.
    pub detail: String,
    /// RFC 3339 time.
    pub at: String,
    /// Unix milliseconds.
    pub at_unix_ms: u64,
}

/// One pool's members and recent behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Members.
    pub upstreams: Vec<Upstream>,
    /// Requests in the guard window.
    pub window_requests: u64,
    /// p99 over the guard window, ms (null when empty).
    pub p99_ms: Option<f64>,
    /// Failed share over the guard window.
    pub error_rate: f64,
}

/// One member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Upstream {
    /// "ip:port".
    pub address: String,
    /// Takes traffic.
    pub healthy: bool,
    /// Requests outstanding.
    #[serde(default)]
    pub in_flight: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report as `umbra-proxy` 0.1 writes it, byte for byte what operators and the shared
    /// contract checks read.
    const REPORT: &str = r#"{"workloads":[{"name":"api","shadow_weight":0.0,"state":"rolled_back","priority":"critical","stateless":true,"hosts":["*.example.com"],"path_prefix":"/","last_rollback":{"reason":"p99_ratio","detail":"shadow p99 900 ms is 9.0x primary's","at":"2026-12-07T19:00:00.000Z","at_unix_ms":1796670000000},"cooldown_remaining_ms":2500,"primary":{"upstreams":[{"address":"127.0.0.1:7001","healthy":true,"in_flight":2}],"window_requests":40,"p99_ms":12.5,"error_rate":0.0},"shadow":{"upstreams":[],"window_requests":0,"p99_ms":null,"error_rate":0.0}}]}"#;

    #[test]
    fn the_report_reads_and_writes_the_same_json() {
        let list: WorkloadList = serde_json::from_str(REPORT).expect("parse");
        let w = &list.workloads[0];
        assert_eq!(w.state, GuardStatus::RolledBack);
        assert_eq!(w.priority, Priority::Critical);
        assert_eq!(w.rolled_back_at_ms(), Some(1_796_670_000_000));
        assert_eq!(
            w.last_rollback.as_ref().map(|r| r.reason),
            Some(RollbackCause::P99Ratio)
        );
        assert_eq!(serde_json::to_string(&list).expect("write"), REPORT);
    }

    #[test]
    fn a_report_without_the_informational_fields_still_reads() {
        let older = r#"{"workloads":[{"name":"web","shadow_weight":0.3,"state":"steady","last_rollback":null,"primary":{"upstreams":[{"address":"127.0.0.1:1","healthy":true}],"window_requests":0,"p99_ms":null,"error_rate":0.0},"shadow":{"upstreams":[],"window_requests":0,"p99_ms":null,"error_rate":0.0}}]}"#;
        let list: WorkloadList = serde_json::from_str(older).expect("parse");
        assert_eq!(list.workloads[0].priority, Priority::Normal);
        assert_eq!(list.workloads[0].rolled_back_at_ms(), None);
    }

    #[test]
    fn an_unknown_state_is_an_error_not_a_silent_mismatch() {
        let text = REPORT.replace("\"rolled_back\"", "\"paused\"");
        let err = serde_json::from_str::<WorkloadList>(&text).expect_err("unknown state");
        assert!(err.to_string().contains("paused"), "{err}");
    }
}
