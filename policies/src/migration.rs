//! The migration state machine of one workload: provision -> ramp -> migrated -> return, with
//! rollback from any step. Pure: the controller persists the phase and performs the actions.

use serde::{Deserialize, Serialize};

use crate::{AtFull, GateVerdict, RampPolicy, TriggerVerdict, next_weight};

/// Where a workload's migration stands. Times are unix milliseconds (the phase is persisted
/// and must mean the same thing after a controller restart).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// All traffic on primary; the shadow pool idles at its small size.
    Idle,
    /// A shortage is coming: the shadow pool is being brought to full size and count.
    Provisioning {
        /// When provisioning began.
        since_ms: u64,
    },
    /// Traffic is moving onto the shadow pool.
    Ramping {
        /// The weight set on every proxy.
        weight: f64,
        /// When this weight was set.
        step_since_ms: u64,
    },
    /// All traffic on the shadow pool.
    Migrated {
        /// When the ramp reached 100%.
        since_ms: u64,
        /// Whether primary was decommissioned.
        primary_decommissioned: bool,
    },
    /// The shortage has passed: primary is being restored before traffic moves back.
    Returning {
        /// When the return began.
        since_ms: u64,
    },
    /// Something failed; traffic is back on primary and new attempts wait out a cooldown.
    RolledBack {
        /// What failed.
        reason: String,
        /// When.
        at_ms: u64,
    },
}

impl Phase {
    /// Short name for logs, metrics and the status API.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Provisioning { .. } => "provisioning",
            Phase::Ramping { .. } => "ramping",
            Phase::Migrated { .. } => "migrated",
            Phase::Returning { .. } => "returning",
            Phase::RolledBack { .. } => "rolled_back",
        }
    }

    /// Numeric code for the `umbra_migration_state` gauge.
    pub fn code(&self) -> i64 {
        match self {
            Phase::Idle => 0,
            Phase::Provisioning { .. } => 1,
            Phase::Ramping { .. } => 2,
            Phase::Migrated { .. } => 3,
            Phase::Returning { .. } => 4,
            Phase::RolledBack { .. } => 5,
        }
    }

    /// The shadow weight proxies should have in this phase. Returning keeps all traffic on
    /// the shadow until primary is ready again: moving it earlier would send it to a primary
    /// that may still be starting.
    pub fn weight(&self) -> f64 {
        match self {
            Phase::Ramping { weight, .. } => *weight,
            Phase::Migrated { .. } | Phase::Returning { .. } => 1.0,
            _ => 0.0,
        }
    }
}

/// Everything the machine looks at on one tick.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationInputs {
    /// Unix ms now.
    pub now_ms: u64,
    /// The trigger's verdict for this workload.
    pub trigger: TriggerVerdict,
    /// The shadow pool has its full target of healthy instances.
    pub shadow_ready: bool,
    /// The gate's verdict on the current ramp step.
    pub gate: GateVerdict,
    /// A proxy rolled the workload back by itself.
    pub proxy_rolled_back: bool,
    /// Primary has its healthy instances (after a restore).
    pub primary_ready: bool,
    /// An action of the previous tick failed (provisioning, a proxy call, ...).
    pub failure: Option<String>,
}

/// Timeouts and cooldowns of the machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MigrationPolicy {
    /// The ramp.
    pub ramp: RampPolicy,
    /// Give up provisioning after this long.
    pub provision_timeout_ms: u64,
    /// After a rollback, wait this long before migrating again.
    pub retry_after_ms: u64,
}

/// What the controller must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Scale the shadow pool to its full-size target.
    ProvisionShadow,
    /// Tell every proxy the shadow pool's members.
    AnnounceShadow,
    /// Set this shadow weight on every proxy.
    SetWeight(f64),
    /// Stop primary instances.
    DecommissionPrimary,
    /// Start primary instances again.
    RestorePrimary,
    /// Scale the shadow pool back to its idle size.
    IdleShadow,
    /// Notify operators (rollback, failed provisioning).
    Alert {
        /// Short kind, e.g. `rollback`, `provisioning_failed`.
        kind: &'static str,
        /// What happened.
        message: String,
    },
}

/// One transition: `(phase, inputs) -> (phase, actions, reason)`. The reason is logged with
/// every transition so each decision can be read back.
pub fn migration_step(
    phase: &Phase,
    i: &MigrationInputs,
    p: &MigrationPolicy,
) -> (Phase, Vec<Action>, String) {
    let now = i.now_ms;
    let rollback = |reason: String, restore: bool, kind: &'static str| {
        let mut actions = Vec::new();
        if restore {
            actions.push(Action::RestorePrimary);
        }
        actions.push(Action::SetWeight(0.0));
        actions.push(Action::IdleShadow);
        actions.push(Action::Alert {
            kind,
            message: reason.clone(),
        });
        (
            Phase::RolledBack {
                reason: reason.clone(),
                at_ms: now,
            },
            actions,
            reason,
        )
    };
    match phase {
        Phase::Idle => match i.trigger {
            TriggerVerdict::Migrate { in_ms, demand } => (
                Phase::Provisioning { since_ms: now },
                vec![Action::ProvisionShadow],
                format!(
                    "shortage predicted in {} s (demand {demand:.1})",
                    in_ms / 1000
                ),
            ),
            _ => (Phase::Idle, vec![], String::new()),
        },
        Phase::Provisioning { since_ms } => {
            if let Some(f) = &i.failure {
                return rollback(
                    format!("provisioning failed: {f}"),
                    false,
                    "provisioning_failed",
                );
            }
            if i.shadow_ready {
                let w = p.ramp.start();
                return (
                    Phase::Ramping {
                        weight: w,
                        step_since_ms: now,
                    },
                    vec![Action::AnnounceShadow, Action::SetWeight(w)],
                    format!("shadow pool ready; weight {w}"),
                );
            }
            if now.saturating_sub(*since_ms) > p.provision_timeout_ms {
                return rollback(
                    format!(
                        "shadow pool not ready after {} s",
                        p.provision_timeout_ms / 1000
                    ),
                    false,
                    "provisioning_failed",
                );
            }
            (phase.clone(), vec![Action::ProvisionShadow], String::new())
        }
        Phase::Ramping {
            weight,
            step_since_ms,
        } => {
            if let Some(reason) = failure_reason(i) {
                return rollback(reason, false, "rollback");
            }
            if let GateVerdict::Fail(why) = &i.gate {
                return rollback(
                    format!("gate failed at weight {weight}: {why}"),
                    false,
                    "rollback",
                );
            }
            let due = now.saturating_sub(*step_since_ms) >= p.ramp.interval_ms();
            if !(due && i.gate == GateVerdict::Pass) {
                return (phase.clone(), vec![], String::new());
            }
            if *weight >= 1.0 {
                let decommission = p.ramp.at_full() != AtFull::KeepWarm;
                let actions = if decommission {
                    vec![Action::DecommissionPrimary]
                } else {
                    vec![]
                };
                return (
                    Phase::Migrated {
                        since_ms: now,
                        primary_decommissioned: decommission,
                    },
                    actions,
                    format!(
                        "all traffic on shadow; primary {}",
                        match p.ramp.at_full() {
                            AtFull::Decommission => "decommissioned",
                            AtFull::KeepWarm => "kept warm",
                            AtFull::Adopt =>
                                "decommissioned; the shadow is the workload's pool now",
                        }
                    ),
                );
            }
            let next = next_weight(&p.ramp, *weight);
            (
                Phase::Ramping {
                    weight: next,
                    step_since_ms: now,
                },
                vec![Action::SetWeight(next)],
                format!("gate passed at {weight}; weight {next}"),
            )
        }
        Phase::Migrated {
            primary_decommissioned,
            ..
        } => {
            if let Some(reason) = failure_reason(i) {
                return rollback(reason, *primary_decommissioned, "rollback");
            }
            // Adopted, the shadow is the workload's pool: it shrinks with demand instead.
            if i.trigger == TriggerVerdict::Return && p.ramp.at_full() != AtFull::Adopt {
                return (
                    Phase::Returning { since_ms: now },
                    vec![Action::RestorePrimary],
                    "demand back under primary capacity; restoring primary".to_string(),
                );
            }
            (phase.clone(), vec![], String::new())
        }
        Phase::Returning { since_ms } => {
            if i.primary_ready {
                return (
                    Phase::Idle,
                    vec![Action::SetWeight(0.0), Action::IdleShadow],
                    "primary ready; traffic back on primary".to_string(),
                );
            }
            if now.saturating_sub(*since_ms) > p.provision_timeout_ms {
                // Primary did not come back: staying on the shadow beats dropping traffic.
                return (
                    Phase::Migrated {
                        since_ms: now,
                        primary_decommissioned: true,
                    },
                    vec![Action::Alert {
                        kind: "return_failed",
                        message: "primary not ready; staying on shadow".into(),
                    }],
                    "primary not ready in time; staying on shadow".to_string(),
                );
            }
            (phase.clone(), vec![Action::RestorePrimary], String::new())
        }
        Phase::RolledBack { at_ms, .. } => {
            if now.saturating_sub(*at_ms) >= p.retry_after_ms {
                (Phase::Idle, vec![], "rollback cooldown over".to_string())
            } else {
                (phase.clone(), vec![], String::new())
            }
        }
    }
}

fn failure_reason(i: &MigrationInputs) -> Option<String> {
    if i.proxy_rolled_back {
        return Some("a proxy rolled the shadow back".to_string());
    }
    if let Some(f) = &i.failure {
        return Some(f.clone());
    }
    if !i.shadow_ready {
        return Some("shadow pool lost healthy instances".to_string());
    }
    None
}

/// Whether the shadow a restarted controller finds can take back the traffic it had.
///
/// The instances found are not the plan: a controller killed mid scale-down leaves an
/// instance that got SIGTERM and is draining, one killed mid scale-up leaves instances still
/// starting. Neither means the shadow lost capacity. What matters is that the pool still has
/// its minimum of ready full-size instances; from then on the ramp gate and the proxy's guard
/// judge it under load, and the next tick scales it to the forecast's target.
pub fn shadow_ready_after_restart(ready_full: u32, min_instances: u32) -> bool {
    ready_full >= min_instances.max(1)
}

/// What to do with a phase found in the store after a controller restart: phases that had
/// put traffic on the shadow resume only if the shadow is still ready; otherwise roll back.
/// Phases before any traffic moved simply resume.
pub fn recover(phase: &Phase, shadow_ready: bool, now_ms: u64) -> (Phase, Vec<Action>, String) {
    match phase {
        Phase::Ramping { weight, .. } if shadow_ready => (
            Phase::Ramping {
                weight: *weight,
                step_since_ms: now_ms,
            },
            vec![Action::AnnounceShadow, Action::SetWeight(*weight)],
            format!("resumed ramp at weight {weight} after restart"),
        ),
        Phase::Migrated {
            primary_decommissioned,
            ..
        } if shadow_ready => (
            phase.clone(),
            vec![Action::AnnounceShadow, Action::SetWeight(1.0)],
            format!(
                "resumed migrated state after restart (primary {})",
                if *primary_decommissioned {
                    "decommissioned"
                } else {
                    "warm"
                }
            ),
        ),
        // Traffic stays on the shadow while primary is restored, so a return resumes like a
        // migration: only onto a shadow that can still carry it.
        Phase::Returning { .. } if shadow_ready => (
            phase.clone(),
            vec![
                Action::AnnounceShadow,
                Action::SetWeight(1.0),
                Action::RestorePrimary,
            ],
            "resumed return after restart".to_string(),
        ),
        Phase::Ramping { .. } | Phase::Migrated { .. } | Phase::Returning { .. } => {
            let restore = matches!(
                phase,
                Phase::Migrated {
                    primary_decommissioned: true,
                    ..
                } | Phase::Returning { .. }
            );
            let reason =
                "restarted with traffic on a shadow pool that is no longer ready".to_string();
            let mut actions = Vec::new();
            if restore {
                actions.push(Action::RestorePrimary);
            }
            actions.extend([
                Action::SetWeight(0.0),
                Action::IdleShadow,
                Action::Alert {
                    kind: "rollback",
                    message: reason.clone(),
                },
            ]);
            (
                Phase::RolledBack {
                    reason: reason.clone(),
                    at_ms: now_ms,
                },
                actions,
                reason,
            )
        }
        Phase::Idle | Phase::RolledBack { .. } => (
            phase.clone(),
            vec![Action::SetWeight(0.0)],
            "resumed after restart".to_string(),
        ),
        Phase::Provisioning { .. } => (
            phase.clone(),
            vec![Action::SetWeight(0.0), Action::ProvisionShadow],
            "resumed provisioning after restart".to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GateLimits, GateVerdict};
    use std::time::Duration;

    fn policy(at_full: AtFull) -> MigrationPolicy {
        let gate = GateLimits {
            max_p99: Duration::from_millis(250),
            max_error_rate: 0.02,
            max_cpu: 0.9,
            max_memory: 0.9,
            min_requests: 10,
        };
        MigrationPolicy {
            ramp: RampPolicy::new(0.1, 0.3, 1_000, gate, at_full).expect("valid"),
            provision_timeout_ms: 60_000,
            retry_after_ms: 300_000,
        }
    }

    fn inputs(now_ms: u64) -> MigrationInputs {
        MigrationInputs {
            now_ms,
            trigger: TriggerVerdict::Hold,
            shadow_ready: true,
            gate: GateVerdict::Pass,
            proxy_rolled_back: false,
            primary_ready: true,
            failure: None,
        }
    }

    #[test]
    fn full_migration_and_return() {
        let p = policy(AtFull::Decommission);
        let shortage = MigrationInputs {
            trigger: TriggerVerdict::Migrate {
                in_ms: 60_000,
                demand: 95.0,
            },
            ..inputs(0)
        };
        let (ph, acts, _) = migration_step(&Phase::Idle, &shortage, &p);
        assert_eq!(ph, Phase::Provisioning { since_ms: 0 });
        assert_eq!(acts, vec![Action::ProvisionShadow]);

        let (ph, acts, _) = migration_step(&ph, &inputs(5_000), &p);
        assert_eq!(
            ph,
            Phase::Ramping {
                weight: 0.1,
                step_since_ms: 5_000
            }
        );
        assert_eq!(acts, vec![Action::AnnounceShadow, Action::SetWeight(0.1)]);

        // Not due yet: nothing.
        let (same, acts, _) = migration_step(&ph, &inputs(5_500), &p);
        assert_eq!((same, acts), (ph.clone(), vec![]));

        let mut ph = ph;
        let mut weights = vec![];
        let mut t = 5_000;
        while !matches!(ph, Phase::Migrated { .. }) {
            t += 1_000;
            let (next, acts, _) = migration_step(&ph, &inputs(t), &p);
            for a in acts {
                if let Action::SetWeight(w) = a {
                    weights.push(w);
                }
                if a == Action::DecommissionPrimary {
                    weights.push(-1.0);
                }
            }
            ph = next;
        }
        assert_eq!(weights, vec![0.4, 0.7, 1.0, -1.0]);

        let back = MigrationInputs {
            trigger: TriggerVerdict::Return,
            ..inputs(t + 1)
        };
        let (ph, acts, _) = migration_step(&ph, &back, &p);
        assert_eq!(acts, vec![Action::RestorePrimary]);
        let (ph, acts, _) = migration_step(&ph, &inputs(t + 2), &p);
        assert_eq!(ph, Phase::Idle);
        assert_eq!(acts, vec![Action::SetWeight(0.0), Action::IdleShadow]);
    }

    #[test]
    fn gate_failure_rolls_back_and_cools_down() {
        let p = policy(AtFull::KeepWarm);
        let ramping = Phase::Ramping {
            weight: 0.4,
            step_since_ms: 0,
        };
        let bad = MigrationInputs {
            gate: GateVerdict::Fail("p99 300 ms above 250 ms".into()),
            ..inputs(100)
        };
        let (ph, acts, reason) = migration_step(&ramping, &bad, &p);
        assert!(matches!(ph, Phase::RolledBack { .. }));
        assert!(reason.contains("p99"));
        assert_eq!(acts[0], Action::SetWeight(0.0));
        assert!(acts.contains(&Action::IdleShadow));
        assert!(matches!(
            acts.last(),
            Some(Action::Alert {
                kind: "rollback",
                ..
            })
        ));
        // A shortage during the cooldown does not start a new attempt.
        let shortage = MigrationInputs {
            trigger: TriggerVerdict::Migrate {
                in_ms: 0,
                demand: 1.0,
            },
            ..inputs(200_000)
        };
        assert_eq!(migration_step(&ph, &shortage, &p).0.name(), "rolled_back");
        assert_eq!(migration_step(&ph, &inputs(300_100), &p).0, Phase::Idle);
    }

    #[test]
    fn a_proxy_side_rollback_is_respected_not_overridden() {
        let p = policy(AtFull::Decommission);
        let migrated = Phase::Migrated {
            since_ms: 0,
            primary_decommissioned: true,
        };
        let i = MigrationInputs {
            proxy_rolled_back: true,
            ..inputs(10)
        };
        let (ph, acts, _) = migration_step(&migrated, &i, &p);
        assert_eq!(ph.name(), "rolled_back");
        // Primary comes back before the weight drops to it.
        assert_eq!(acts[0], Action::RestorePrimary);
        assert_eq!(acts[1], Action::SetWeight(0.0));
    }

    #[test]
    fn an_adopted_workload_stays_on_the_shadow_until_it_fails() {
        let p = policy(AtFull::Adopt);
        let full = Phase::Ramping {
            weight: 1.0,
            step_since_ms: 0,
        };
        let (migrated, acts, why) = migration_step(&full, &inputs(1_000), &p);
        assert_eq!(
            migrated,
            Phase::Migrated {
                since_ms: 1_000,
                primary_decommissioned: true
            }
        );
        assert_eq!(acts, vec![Action::DecommissionPrimary]);
        assert!(why.contains("the shadow is the workload's pool"), "{why}");
        // Demand falls far under primary capacity: no return.
        let quiet = MigrationInputs {
            trigger: TriggerVerdict::Return,
            ..inputs(10_000_000)
        };
        let (ph, acts, _) = migration_step(&migrated, &quiet, &p);
        assert_eq!(ph, migrated);
        assert!(acts.is_empty());
        // A failing shadow still rolls back, primary restored first.
        let failing = MigrationInputs {
            proxy_rolled_back: true,
            trigger: TriggerVerdict::Return,
            ..inputs(10_000_000)
        };
        let (ph, acts, _) = migration_step(&migrated, &failing, &p);
        assert_eq!(ph.name(), "rolled_back");
        assert_eq!(acts[0], Action::RestorePrimary);
        // The same quiet demand returns a decommissioned (not adopted) workload to primary.
        let p = policy(AtFull::Decommission);
        assert_eq!(migration_step(&migrated, &quiet, &p).0.name(), "returning");
    }

    #[test]
    fn lost_shadow_instances_roll_back_and_provisioning_times_out() {
        let p = policy(AtFull::KeepWarm);
        let ramping = Phase::Ramping {
            weight: 0.1,
            step_since_ms: 0,
        };
        let i = MigrationInputs {
            shadow_ready: false,
            ..inputs(10)
        };
        assert_eq!(migration_step(&ramping, &i, &p).0.name(), "rolled_back");
        let prov = Phase::Provisioning { since_ms: 0 };
        let waiting = MigrationInputs {
            shadow_ready: false,
            ..inputs(30_000)
        };
        assert_eq!(migration_step(&prov, &waiting, &p).0.name(), "provisioning");
        let late = MigrationInputs {
            shadow_ready: false,
            ..inputs(60_001)
        };
        let (ph, acts, _) = migration_step(&prov, &late, &p);
        assert_eq!(ph.name(), "rolled_back");
        assert!(matches!(
            acts.last(),
            Some(Action::Alert {
                kind: "provisioning_failed",
                ..
            })
        ));
    }

    #[test]
    fn gate_wait_holds_the_weight() {
        let p = policy(AtFull::KeepWarm);
        let ramping = Phase::Ramping {
            weight: 0.1,
            step_since_ms: 0,
        };
        let i = MigrationInputs {
            gate: GateVerdict::Wait,
            ..inputs(5_000)
        };
        assert_eq!(migration_step(&ramping, &i, &p).0, ramping);
    }

    #[test]
    fn restart_resumes_or_rolls_back() {
        let ramping = Phase::Ramping {
            weight: 0.4,
            step_since_ms: 0,
        };
        let (ph, acts, _) = recover(&ramping, true, 99);
        assert_eq!(
            ph,
            Phase::Ramping {
                weight: 0.4,
                step_since_ms: 99
            }
        );
        assert_eq!(acts, vec![Action::AnnounceShadow, Action::SetWeight(0.4)]);
        let (ph, acts, _) = recover(&ramping, false, 99);
        assert_eq!(ph.name(), "rolled_back");
        assert_eq!(acts[0], Action::SetWeight(0.0));
        let migrated = Phase::Migrated {
            since_ms: 0,
            primary_decommissioned: true,
        };
        let (_, acts, _) = recover(&migrated, false, 99);
        assert_eq!(acts[0], Action::RestorePrimary);
        // Nothing had moved yet: provisioning just continues, weight pinned at 0.
        let (ph, acts, _) = recover(&Phase::Provisioning { since_ms: 1 }, false, 99);
        assert_eq!(ph.name(), "provisioning");
        assert_eq!(acts[0], Action::SetWeight(0.0));
    }

    #[test]
    fn a_restart_judges_the_ready_minimum_not_the_instances_found() {
        // Killed mid scale-down: 3 ready, the fourth draining after SIGTERM.
        assert!(shadow_ready_after_restart(3, 2));
        assert!(shadow_ready_after_restart(2, 2));
        assert!(!shadow_ready_after_restart(1, 2));
        // Every shadow instance died while the controller was down.
        assert!(!shadow_ready_after_restart(0, 0));
        assert!(shadow_ready_after_restart(1, 0));
    }

    #[test]
    fn phases_round_trip_through_json() {
        for ph in [
            Phase::Idle,
            Phase::Provisioning { since_ms: 1 },
            Phase::Ramping {
                weight: 0.3,
                step_since_ms: 2,
            },
            Phase::Migrated {
                since_ms: 3,
                primary_decommissioned: true,
            },
            Phase::Returning { since_ms: 4 },
            Phase::RolledBack {
                reason: "x".into(),
                at_ms: 5,
            },
        ] {
            let text = serde_json::to_string(&ph).expect("serialize");
            assert_eq!(serde_json::from_str::<Phase>(&text).expect("parse"), ph);
        }
    }
}
