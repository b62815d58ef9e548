//! One workload's reconciler: what the controller knows now in, its next memory and every change to the world out.
//!
//! The live controller and `umbra simulate` both call [`reconcile`]: the controller gathers
//! [`Facts`] from the board, the provisioner and the proxies and carries the [`Change`]s out;
//! the simulator gathers them from its model of the pools and applies them to that model. No
//! clock reads and no I/O here, so what the replay measures is what production runs.

use crate::{
    Action, GateVerdict, InstanceSize, MigrationInputs, MigrationPolicy, Outlook, Phase,
    ShadowHealth, ShadowPlan, SizingInputs, SizingPolicy, TriggerPolicy, TriggerVerdict, gate,
    judge_shortage, migration_step, plan_shadow_capacity, recover, shadow_ready_after_restart,
};

/// The rules one workload is reconciled by (its policy file).
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    /// Shadow sizing.
    pub sizing: &'a SizingPolicy,
    /// Migration trigger.
    pub trigger: &'a TriggerPolicy,
    /// Ramp, gate, timeouts.
    pub migration: &'a MigrationPolicy,
}

/// What the reconciler keeps between ticks. Only `phase` is persisted; [`recover_from`]
/// rebuilds the rest after a restart.
#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    /// Where the migration stands.
    pub phase: Phase,
    /// When the current attempt began (unix ms): a proxy rollback after it counts.
    pub attempt_started_ms: u64,
    /// Shadow requests seen during the current phase (the gate's minimum).
    pub step_requests: f64,
    /// Highest shadow p99 seen during the current phase.
    pub step_p99_ms: Option<f64>,
    /// Full-size instances the migration provisions: fixed when it starts, then following the
    /// plan while traffic is on the shadow.
    pub target: u32,
    /// Ready full-size instances the migration needs; fewer means the shadow lost capacity.
    /// Lags `target` while added instances start.
    pub required: u32,
}

impl Memory {
    /// A workload in `phase` that has not started an attempt.
    pub fn new(phase: Phase) -> Self {
        Memory {
            phase,
            attempt_started_ms: 0,
            step_requests: 0.0,
            step_p99_ms: None,
            target: 1,
            required: 1,
        }
    }

    /// Whether traffic is (partly) on the shadow.
    pub fn on_shadow(&self) -> bool {
        matches!(
            self.phase,
            Phase::Ramping { .. } | Phase::Migrated { .. } | Phase::Returning { .. }
        )
    }

    /// Whether a migration holds one of the concurrent-migration slots.
    pub fn migrating(&self) -> bool {
        matches!(
            self.phase,
            Phase::Provisioning { .. }
                | Phase::Ramping { .. }
                | Phase::Migrated { .. }
                | Phase::Returning { .. }
        )
    }
}

/// A shadow pool's shape: how many instances of which size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    /// Instances.
    pub instances: u32,
    /// Size of each.
    pub size: InstanceSize,
}

/// One proxy's report on the workload.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProxyFacts {
    /// The shadow weight it applies.
    pub weight: f64,
    /// When its guard rolled the shadow back, while it stays rolled back (`Some(0)` if it
    /// did not say when).
    pub rolled_back_at_ms: Option<u64>,
    /// The shadow's failed share over its guard window.
    pub shadow_error_rate: f64,
}

/// The shadow pool as the provisioner and the probes report it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ShadowFacts {
    /// Instances that exist, ready or not.
    pub instances: u32,
    /// Ready instances at full size.
    pub ready_full: u32,
    /// The shape the provisioner was last asked for (`None`: nothing asked since start).
    pub applied: Option<PoolShape>,
    /// The ready members are not the ones the proxies were last told.
    pub ready_changed: bool,
    /// A proxy's members differ from what it was told (it restarted): tell it again.
    pub proxies_stale: bool,
}

/// Everything one tick knows. Demand figures share the unit of the sizing's
/// `instance_capacity`.
#[derive(Clone, Debug, Default)]
pub struct Facts<'a> {
    /// Unix ms, taken after everything below was read.
    pub now_ms: u64,
    /// Demand observed now.
    pub observed: f64,
    /// Requests the shadow served since the previous tick.
    pub shadow_requests: f64,
    /// The shadow's p99 latency since the previous tick.
    pub shadow_p99_ms: Option<f64>,
    /// Upper-quantile forecast, `upper[i]` at `now + (i + 1) * step_ms`; empty without one.
    pub upper: &'a [f64],
    /// The forecast's step, ms.
    pub step_ms: u64,
    /// How far demand rises within a start-up time ([`crate::startup_rise`]); 0 unknown.
    pub rise: f64,
    /// Demand the primary pool serves at full strength.
    pub primary_capacity: f64,
    /// Primary has its healthy instances.
    pub primary_ready: bool,
    /// What each proxy that answered reports.
    pub proxies: &'a [ProxyFacts],
    /// The shadow pool.
    pub shadow: ShadowFacts,
    /// Why this workload may not start a migration now (ranked behind others, stateful).
    pub hold: Option<&'a str>,
    /// A change of the previous tick that failed.
    pub failure: Option<String>,
    /// Observe mode: judge as if provisioning, gates and proxies all succeed.
    pub assume_success: bool,
}

/// A change to the world, in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Bring the shadow pool to this shape. `force`: even if it was the last shape asked for
    /// (after a restart the provisioner must re-apply what the store says).
    ResizeShadow {
        /// The shape.
        to: PoolShape,
        /// Re-apply even if unchanged.
        force: bool,
    },
    /// Tell every proxy the ready shadow members. `force`: even if unchanged.
    AnnounceShadow {
        /// Re-send even if unchanged.
        force: bool,
    },
    /// Set this shadow weight on every proxy.
    SetWeight(f64),
    /// Stop primary instances.
    DecommissionPrimary,
    /// Start primary instances again.
    RestorePrimary,
    /// Notify operators.
    Alert {
        /// Short kind, e.g. `rollback`.
        kind: &'static str,
        /// What happened.
        message: String,
    },
}

/// What one tick decided.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// The memory after the tick (its phase is what must be persisted).
    pub next: Memory,
    /// Changes to make, in order.
    pub changes: Vec<Change>,
    /// Why the phase changed (empty when it did not).
    pub reason: String,
    /// The trigger's verdict, after any hold.
    pub trigger: TriggerVerdict,
    /// Whether a hold stopped a migration the trigger asked for.
    pub held: bool,
    /// The shadow plan of the moment.
    pub plan: ShadowPlan,
}

/// The outlook's peak within the trigger's lead time (at least one start-up), or observed
/// demand when that is higher: what the shadow is sized for and the trigger is read against.
pub fn near_peak(f: &Facts<'_>, rules: &Rules<'_>) -> f64 {
    let n = usize::try_from(rules.trigger.lead_ms() / f.step_ms.max(1)).unwrap_or(usize::MAX);
    f.upper
        .iter()
        .take(n)
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(f.observed)
}

/// The trigger's verdict for a workload in `memory` (the ranking of migrations asks it first).
pub fn shortage(memory: &Memory, f: &Facts<'_>, rules: &Rules<'_>) -> TriggerVerdict {
    let held_ms = match &memory.phase {
        Phase::Migrated { since_ms, .. } => f.now_ms.saturating_sub(*since_ms),
        _ => 0,
    };
    judge_shortage(
        rules.trigger,
        &Outlook {
            upper: f.upper,
            step_ms: f.step_ms.max(1),
            observed: f.observed,
            primary_capacity: f.primary_capacity,
        },
        memory.on_shadow(),
        held_ms,
    )
}

/// The shadow the workload needs in its current situation: sized for the forecast's peak,
/// at full size whenever a migration needs it.
fn shadow_plan(
    memory: &Memory,
    f: &Facts<'_>,
    rules: &Rules<'_>,
    trigger: TriggerVerdict,
) -> ShadowPlan {
    let near = near_peak(f, rules);
    let mut plan = plan_shadow_capacity(
        rules.sizing,
        &SizingInputs {
            // Capacity for a peak further out than the lead time (at least one start-up) can
            // be started later; holding it now only costs (2 h ahead at q0.9 ran 1.5-2x the
            // HPA's instance-hours on the wide replay benchmark, bench/simulate/README.md).
            predicted_peak: near,
            observed: f.observed,
            rise: f.rise,
            near_peak: near,
            primary_capacity: f.primary_capacity,
        },
    );
    let provisioning = matches!(
        memory.phase,
        Phase::Provisioning { .. } | Phase::Ramping { .. } | Phase::Migrated { .. }
    );
    if provisioning || matches!(trigger, TriggerVerdict::Migrate { .. }) {
        plan.size = rules.sizing.full();
        plan.warm = true;
        plan.instances = plan.instances.max(1);
    }
    plan
}

/// The shadow an idle workload keeps (no demand in view).
fn idle_shape(f: &Facts<'_>, rules: &Rules<'_>) -> PoolShape {
    let idle = plan_shadow_capacity(
        rules.sizing,
        &SizingInputs {
            primary_capacity: f.primary_capacity,
            ..SizingInputs::default()
        },
    );
    PoolShape {
        instances: idle.instances,
        size: idle.size,
    }
}

/// One tick: `(memory, facts) -> (memory', changes, reason)`.
///
/// The shadow's shape follows the phase: idle (or cooling down after a rollback) it is the
/// plan; from the start of a migration it is `target` full-size instances, growing with the
/// plan during the ramp, and once migrated it follows the plan both ways (the plan counts observed demand plus its buffer, so it never
/// drops below the load the shadow carries). The migration machine's own changes
/// (provision, idle, weights, primary) come in the order it gives; one repair keeps every
/// proxy's weight at the phase's.
pub fn reconcile(memory: &Memory, f: &Facts<'_>, rules: &Rules<'_>) -> Step {
    let now = f.now_ms;
    let mut next = memory.clone();
    let full = rules.sizing.full();

    let mut trigger = shortage(memory, f, rules);
    let held = f.hold.is_some()
        && memory.phase == Phase::Idle
        && matches!(trigger, TriggerVerdict::Migrate { .. });
    if held {
        trigger = TriggerVerdict::Hold;
    }
    let plan = shadow_plan(memory, f, rules, trigger);

    // The shape this phase keeps, before any transition.
    let steady = match memory.phase {
        Phase::Idle | Phase::RolledBack { .. } => {
            next.target = plan.instances.max(1);
            next.required = next.target;
            Some(PoolShape {
                instances: plan.instances,
                size: plan.size,
            })
        }
        // Once migrated the shadow is the workload's whole pool: it follows the plan both ways.
        Phase::Migrated { .. } => {
            next.target = plan.instances;
            Some(PoolShape {
                instances: next.target,
                size: full,
            })
        }
        // During the ramp the pool grows with the plan (demand rising while weight moves onto
        // the shadow), but never shrinks: stopping instances the gate is judging, only to start
        // them again at the next step, churns the pool for nothing.
        Phase::Ramping { .. } => {
            next.target = next.target.max(plan.instances);
            Some(PoolShape {
                instances: next.target,
                size: full,
            })
        }
        Phase::Provisioning { .. } | Phase::Returning { .. } => None,
    };
    if f.shadow.ready_full >= next.target {
        next.required = next.target;
    }
    let shadow_ready = f.assume_success || f.shadow.ready_full >= next.required;

    // The gate: what the shadow did during this phase (each ramp step is one).
    let on_shadow = memory.on_shadow();
    next.step_requests += f.shadow_requests.max(0.0);
    if let Some(p) = f.shadow_p99_ms.filter(|p| p.is_finite()) {
        next.step_p99_ms = Some(next.step_p99_ms.map_or(p, |m| m.max(p)));
    }
    let health = ShadowHealth {
        requests: next.step_requests as u64,
        error_rate: f
            .proxies
            .iter()
            .map(|p| p.shadow_error_rate)
            .filter(|r| r.is_finite())
            .fold(0.0, f64::max),
        p99: next
            .step_p99_ms
            .map(|ms| std::time::Duration::from_secs_f64(ms.max(0.0) / 1000.0)),
        cpu: None,
        memory: None,
    };
    let verdict = match (on_shadow, f.assume_success) {
        (false, _) => GateVerdict::Wait,
        (true, true) => GateVerdict::Pass,
        (true, false) => gate(&rules.migration.ramp, &health),
    };
    let proxy_rolled_back = on_shadow
        && !f.assume_success
        && f.proxies.iter().any(|p| {
            p.rolled_back_at_ms
                .is_some_and(|at| at >= memory.attempt_started_ms)
        });
    let inputs = MigrationInputs {
        now_ms: now,
        trigger,
        shadow_ready,
        gate: verdict,
        proxy_rolled_back,
        primary_ready: f.assume_success || f.primary_ready,
        failure: if f.assume_success {
            None
        } else {
            f.failure.clone()
        },
    };
    let (phase, actions, reason) = migration_step(&memory.phase, &inputs, rules.migration);
    if phase != memory.phase {
        if matches!(phase, Phase::Provisioning { .. }) {
            next.attempt_started_ms = now;
        }
        next.step_requests = 0.0;
        next.step_p99_ms = None;
    }
    next.phase = phase;

    let moved = translate(&actions, &next, f, rules, false);
    let mut changes = Vec::with_capacity(moved.len() + 3);
    let resizes = moved
        .iter()
        .any(|c| matches!(c, Change::ResizeShadow { .. }));
    if let Some(to) = steady.filter(|_| !resizes) {
        changes.push(Change::ResizeShadow { to, force: false });
    }
    let announces = moved
        .iter()
        .any(|c| matches!(c, Change::AnnounceShadow { .. }));
    if !announces && (f.shadow.ready_changed || f.shadow.proxies_stale) {
        changes.push(Change::AnnounceShadow {
            force: f.shadow.proxies_stale,
        });
    }
    changes.extend(moved);
    // A resize to the shape already asked for, not forced, has nothing to do.
    changes.retain(|c| !matches!(c, Change::ResizeShadow { to, force: false } if f.shadow.applied == Some(*to)));

    // Repair: keep every proxy at the phase's weight (a failed call, a restarted proxy),
    // unless this tick sets it already or a proxy's own rollback is being handled.
    let want = next.phase.weight();
    let sets_weight = changes.iter().any(|c| matches!(c, Change::SetWeight(_)));
    if !proxy_rolled_back
        && !sets_weight
        && f.proxies.iter().any(|p| {
            (p.weight - want).abs() > 1e-6 && !(want > 0.0 && p.rolled_back_at_ms.is_some())
        })
    {
        changes.push(Change::SetWeight(want));
    }
    Step {
        next,
        changes,
        reason,
        trigger,
        held,
        plan,
    }
}

/// After a controller restart: resume from the stored phase when the shadow found can still
/// carry what it carried, otherwise roll back. Every change is forced (the provisioner and the
/// proxies must be told again what the store says).
pub fn recover_from(stored: &Phase, f: &Facts<'_>, rules: &Rules<'_>) -> Step {
    let now = f.now_ms;
    let min = rules.sizing.min_instances().max(1);
    let mut next = Memory::new(stored.clone());
    // What the migration had provisioned is what the provisioner finds; until the pool
    // reaches it again it is judged against its minimum (a draining or starting instance is
    // not a lost one).
    next.target = f.shadow.instances.max(min);
    next.required = min;
    let ready = shadow_ready_after_restart(f.shadow.ready_full, min);
    let (phase, actions, reason) = recover(stored, ready, now);
    if matches!(
        phase,
        Phase::Ramping { .. } | Phase::Migrated { .. } | Phase::Provisioning { .. }
    ) {
        next.attempt_started_ms = now;
    }
    next.phase = phase;
    let changes = translate(&actions, &next, f, rules, true);
    Step {
        next,
        changes,
        reason,
        trigger: TriggerVerdict::Hold,
        held: false,
        plan: ShadowPlan {
            instances: f.shadow.instances,
            size: rules.sizing.full(),
            warm: true,
        },
    }
}

/// The migration machine's actions as changes to the world.
fn translate(
    actions: &[Action],
    next: &Memory,
    f: &Facts<'_>,
    rules: &Rules<'_>,
    force: bool,
) -> Vec<Change> {
    actions
        .iter()
        .map(|a| match a {
            Action::ProvisionShadow => Change::ResizeShadow {
                to: PoolShape {
                    instances: next.target.max(1),
                    size: rules.sizing.full(),
                },
                force,
            },
            Action::IdleShadow => Change::ResizeShadow {
                to: idle_shape(f, rules),
                force,
            },
            Action::AnnounceShadow => Change::AnnounceShadow { force: true },
            Action::SetWeight(w) => Change::SetWeight(w.clamp(0.0, 1.0)),
            Action::DecommissionPrimary => Change::DecommissionPrimary,
            Action::RestorePrimary => Change::RestorePrimary,
            Action::Alert { kind, message } => Change::Alert {
                kind,
                message: message.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::{AtFull, GateLimits, RampPolicy};

    const IDLE: InstanceSize = InstanceSize {
        cpu_millis: 100,
        memory_mib: 64,
    };
    const FULL: InstanceSize = InstanceSize {
        cpu_millis: 1000,
        memory_mib: 512,
    };

    struct Owned {
        sizing: SizingPolicy,
        trigger: TriggerPolicy,
        migration: MigrationPolicy,
    }

    impl Owned {
        fn new() -> Self {
            let gate = GateLimits {
                max_p99: Duration::from_millis(250),
                max_error_rate: 0.02,
                max_cpu: 0.9,
                max_memory: 0.9,
                min_requests: 10,
            };
            Owned {
                // 100 requests/s per instance, 20% buffer, 1..=20 instances.
                sizing: SizingPolicy::new(100.0, 1.0, 0.2, 1, 20, IDLE, FULL, 0.7).expect("valid"),
                // Migrate above 90% of primary within 10 min; return below 70% after 1 min.
                trigger: TriggerPolicy::new(0.9, 0.7, 600_000, 60_000, 60_000).expect("valid"),
                migration: MigrationPolicy {
                    ramp: RampPolicy::new(0.1, 0.3, 1_000, gate, AtFull::KeepWarm).expect("valid"),
                    provision_timeout_ms: 60_000,
                    retry_after_ms: 300_000,
                },
            }
        }

        fn rules(&self) -> Rules<'_> {
            Rules {
                sizing: &self.sizing,
                trigger: &self.trigger,
                migration: &self.migration,
            }
        }
    }

    /// A quiet workload: 200 requests/s on a 1,000 requests/s primary, a healthy shadow.
    fn quiet(now_ms: u64) -> Facts<'static> {
        Facts {
            now_ms,
            observed: 200.0,
            step_ms: 60_000,
            primary_capacity: 1000.0,
            primary_ready: true,
            shadow: ShadowFacts {
                instances: 20,
                ready_full: 20,
                ..ShadowFacts::default()
            },
            ..Facts::default()
        }
    }

    const SURGE: [f64; 5] = [300.0, 600.0, 1200.0, 1500.0, 1500.0];

    fn ramping(weight: f64) -> Memory {
        Memory {
            target: 18,
            required: 18,
            attempt_started_ms: 1_000,
            ..Memory::new(Phase::Ramping {
                weight,
                step_since_ms: 10_000,
            })
        }
    }

    #[test]
    fn a_predicted_surge_provisions_the_planned_full_size_pool() {
        let o = Owned::new();
        let mut f = quiet(5_000);
        f.upper = &SURGE;
        let step = reconcile(&Memory::new(Phase::Idle), &f, &o.rules());
        assert_eq!(step.next.phase, Phase::Provisioning { since_ms: 5_000 });
        assert_eq!(step.next.attempt_started_ms, 5_000);
        // 1,500 at the peak / 100 per instance.
        let to = PoolShape {
            instances: 15,
            size: FULL,
        };
        assert_eq!(
            step.changes,
            vec![Change::ResizeShadow { to, force: false }]
        );
        assert_eq!(step.next.target, 15);
    }

    #[test]
    fn a_held_workload_keeps_its_idle_plan_and_says_why() {
        let o = Owned::new();
        let mut f = quiet(5_000);
        f.upper = &SURGE;
        f.hold = Some("ranked behind others");
        let step = reconcile(&Memory::new(Phase::Idle), &f, &o.rules());
        assert!(step.held);
        assert_eq!(step.next.phase, Phase::Idle);
        assert_eq!(step.trigger, TriggerVerdict::Hold);
    }

    #[test]
    fn a_proxy_rollback_during_the_attempt_rolls_back_at_once_and_idles_after_weight_zero() {
        let o = Owned::new();
        let mut f = quiet(20_000);
        let proxies = [
            ProxyFacts {
                weight: 0.0,
                rolled_back_at_ms: Some(15_000),
                shadow_error_rate: 0.5,
            },
            ProxyFacts {
                weight: 0.4,
                ..ProxyFacts::default()
            },
        ];
        f.proxies = &proxies;
        let step = reconcile(&ramping(0.4), &f, &o.rules());
        assert_eq!(step.next.phase.name(), "rolled_back");
        let weight_at = step
            .changes
            .iter()
            .position(|c| *c == Change::SetWeight(0.0))
            .expect("weight 0");
        let idle_at = step
            .changes
            .iter()
            .position(|c| matches!(c, Change::ResizeShadow { .. }))
            .expect("idle resize");
        assert!(weight_at < idle_at, "{:?}", step.changes);
        // A rollback from before this attempt is old news.
        let mut stale = proxies;
        stale[0].rolled_back_at_ms = Some(500);
        stale[0].shadow_error_rate = 0.0;
        f.proxies = &stale;
        f.shadow_requests = 100.0;
        let step = reconcile(&ramping(0.4), &f, &o.rules());
        assert_eq!(step.next.phase.name(), "ramping");
    }

    #[test]
    fn a_proxy_that_lost_its_weight_is_repaired_and_told_its_members_again() {
        let o = Owned::new();
        // Within the ramp step's interval: the gate does not move the weight.
        let mut f = quiet(10_500);
        f.shadow_requests = 50.0;
        f.shadow.applied = Some(PoolShape {
            instances: 3,
            size: FULL,
        });
        f.shadow.proxies_stale = true;
        let proxies = [
            ProxyFacts {
                weight: 0.4,
                ..ProxyFacts::default()
            },
            ProxyFacts::default(),
        ];
        f.proxies = &proxies;
        let step = reconcile(&ramping(0.4), &f, &o.rules());
        assert!(
            step.changes
                .contains(&Change::AnnounceShadow { force: true }),
            "{:?}",
            step.changes
        );
        assert_eq!(step.changes.last(), Some(&Change::SetWeight(0.4)));
    }

    #[test]
    fn while_migrated_the_shadow_follows_the_plan_and_readiness_waits_for_added_instances() {
        let o = Owned::new();
        let memory = Memory {
            target: 10,
            required: 10,
            ..Memory::new(Phase::Migrated {
                since_ms: 0,
                primary_decommissioned: false,
            })
        };
        let mut f = quiet(20_000);
        f.observed = 1_400.0;
        f.shadow.ready_full = 10;
        f.shadow.applied = Some(PoolShape {
            instances: 10,
            size: FULL,
        });
        let step = reconcile(&memory, &f, &o.rules());
        // 1,400 plus its 20% buffer.
        assert_eq!(step.next.target, 17);
        assert_eq!(step.next.required, 10, "the added instances are starting");
        assert_eq!(step.next.phase.name(), "migrated");
        assert!(matches!(
            step.changes[0],
            Change::ResizeShadow { to, force: false } if to.instances == 17
        ));
    }

    #[test]
    fn a_return_keeps_traffic_on_the_shadow_until_primary_is_ready() {
        let o = Owned::new();
        let migrated = Memory {
            target: 3,
            required: 3,
            ..Memory::new(Phase::Migrated {
                since_ms: 0,
                primary_decommissioned: true,
            })
        };
        // Demand well under primary, long enough: return.
        let mut f = quiet(200_000);
        f.observed = 100.0;
        f.primary_ready = false;
        let on_shadow = [ProxyFacts {
            weight: 1.0,
            ..ProxyFacts::default()
        }];
        f.proxies = &on_shadow;
        let step = reconcile(&migrated, &f, &o.rules());
        assert_eq!(step.next.phase.name(), "returning");
        assert!(step.changes.contains(&Change::RestorePrimary));
        assert!(
            !step
                .changes
                .iter()
                .any(|c| matches!(c, Change::SetWeight(_)))
        );
        // Primary still starting: nothing moves.
        f.now_ms += 1_000;
        let step = reconcile(&step.next, &f, &o.rules());
        assert_eq!(step.next.phase.name(), "returning");
        assert!(
            !step
                .changes
                .iter()
                .any(|c| matches!(c, Change::SetWeight(_)))
        );
        // Primary ready: traffic back, then the shadow idles.
        f.primary_ready = true;
        let step = reconcile(&step.next, &f, &o.rules());
        assert_eq!(step.next.phase, Phase::Idle);
        assert_eq!(step.changes[0], Change::SetWeight(0.0));
        assert!(matches!(step.changes[1], Change::ResizeShadow { .. }));
    }

    #[test]
    fn recovery_forces_every_change_and_rolls_back_onto_primary_without_a_ready_shadow() {
        let o = Owned::new();
        let stored = Phase::Migrated {
            since_ms: 0,
            primary_decommissioned: true,
        };
        let mut f = quiet(50_000);
        f.shadow = ShadowFacts::default();
        let step = recover_from(&stored, &f, &o.rules());
        assert_eq!(step.next.phase.name(), "rolled_back");
        assert_eq!(step.changes[0], Change::RestorePrimary);
        assert!(step.changes.iter().all(|c| !matches!(
            c,
            Change::ResizeShadow { force: false, .. } | Change::AnnounceShadow { force: false }
        )));
    }

    #[test]
    fn observe_mode_walks_the_whole_migration_without_evidence() {
        let o = Owned::new();
        let mut memory = Memory::new(Phase::Idle);
        let mut seen = Vec::new();
        for tick in 0..10u64 {
            let mut f = quiet(tick * 2_000);
            f.upper = &SURGE;
            f.shadow = ShadowFacts::default();
            f.assume_success = true;
            memory = reconcile(&memory, &f, &o.rules()).next;
            seen.push(memory.phase.name());
        }
        assert_eq!(seen.last(), Some(&"migrated"), "{seen:?}");
    }

    fn any_phase() -> impl Strategy<Value = Phase> {
        prop_oneof![
            Just(Phase::Idle),
            (0u64..100_000).prop_map(|since_ms| Phase::Provisioning { since_ms }),
            (0.05f64..=1.0, 0u64..100_000).prop_map(|(weight, step_since_ms)| Phase::Ramping {
                weight,
                step_since_ms
            }),
            (0u64..100_000, any::<bool>()).prop_map(|(since_ms, d)| Phase::Migrated {
                since_ms,
                primary_decommissioned: d
            }),
            (0u64..100_000).prop_map(|since_ms| Phase::Returning { since_ms }),
            (0u64..100_000).prop_map(|at_ms| Phase::RolledBack {
                reason: "x".into(),
                at_ms
            }),
        ]
    }

    fn any_proxy() -> impl Strategy<Value = ProxyFacts> {
        (
            0.0f64..=1.0,
            proptest::option::of(0u64..200_000),
            0.0f64..=1.0,
        )
            .prop_map(
                |(weight, rolled_back_at_ms, shadow_error_rate)| ProxyFacts {
                    weight,
                    rolled_back_at_ms,
                    shadow_error_rate,
                },
            )
    }

    fn any_memory() -> impl Strategy<Value = Memory> {
        (any_phase(), 0u64..200_000, 0u32..30, 0u32..30, 0.0f64..1e5).prop_map(
            |(phase, attempt_started_ms, target, required, step_requests)| Memory {
                phase,
                attempt_started_ms,
                step_requests,
                step_p99_ms: None,
                target,
                required,
            },
        )
    }

    proptest! {
        #[test]
        fn changes_never_contradict_and_weights_stay_in_range(
            memory in any_memory(),
            now in 100_000u64..400_000,
            observed in 0.0f64..5_000.0,
            upper in proptest::collection::vec(0.0f64..5_000.0, 0..20),
            proxies in proptest::collection::vec(any_proxy(), 0..4),
            instances in 0u32..30,
            ready_full in 0u32..30,
            stale in any::<bool>(),
            failure in proptest::option::of(Just("boom".to_string())),
            primary_ready in any::<bool>(),
            assume_success in any::<bool>(),
        ) {
            let o = Owned::new();
            let f = Facts {
                now_ms: now,
                observed,
                shadow_requests: observed,
                upper: &upper,
                step_ms: 60_000,
                primary_capacity: 1000.0,
                primary_ready,
                proxies: &proxies,
                shadow: ShadowFacts { instances, ready_full, applied: None, ready_changed: stale, proxies_stale: stale },
                failure,
                assume_success,
                ..Facts::default()
            };
            let step = reconcile(&memory, &f, &o.rules());
            let count = |pred: fn(&Change) -> bool| step.changes.iter().filter(|c| pred(c)).count();
            prop_assert!(count(|c| matches!(c, Change::ResizeShadow { .. })) <= 1, "{:?}", step.changes);
            prop_assert!(count(|c| matches!(c, Change::SetWeight(_))) <= 1, "{:?}", step.changes);
            prop_assert!(count(|c| matches!(c, Change::AnnounceShadow { .. })) <= 1, "{:?}", step.changes);
            prop_assert!(
                !(step.changes.contains(&Change::DecommissionPrimary) && step.changes.contains(&Change::RestorePrimary)),
                "{:?}", step.changes
            );
            for c in &step.changes {
                if let Change::SetWeight(w) = c {
                    prop_assert!((0.0..=1.0).contains(w));
                    // The weight set is the phase's: nothing leaves the proxies elsewhere.
                    prop_assert_eq!(*w, step.next.phase.weight());
                }
            }
            let w = step.next.phase.weight();
            prop_assert!((0.0..=1.0).contains(&w));
            // The shadow never shrinks under traffic below what the phase must carry (or the
            // policy's maximum).
            if step.next.on_shadow() {
                for c in &step.changes {
                    if let Change::ResizeShadow { to, .. } = c {
                        let carried = f64::from(to.instances) * 100.0 >= observed * w - 1e-9;
                        prop_assert!(carried || to.instances >= 20, "{:?}", step.changes);
                    }
                }
            }
        }

        #[test]
        fn a_rollback_is_always_reachable_from_traffic_on_the_shadow(
            memory in any_memory(),
            now in 100_000u64..400_000,
        ) {
            // While returning, a proxy's rollback has already sent traffic where the return
            // takes it; the return goes on.
            prop_assume!(matches!(memory.phase, Phase::Ramping { .. } | Phase::Migrated { .. }));
            let o = Owned::new();
            let proxies = [ProxyFacts { weight: 0.0, rolled_back_at_ms: Some(memory.attempt_started_ms), shadow_error_rate: 1.0 }];
            let mut f = quiet(now);
            f.proxies = &proxies;
            let step = reconcile(&memory, &f, &o.rules());
            prop_assert_eq!(step.next.phase.name(), "rolled_back");
            prop_assert!(step.changes.contains(&Change::SetWeight(0.0)));
            if matches!(memory.phase, Phase::Migrated { primary_decommissioned: true, .. }) {
                prop_assert_eq!(&step.changes[0], &Change::RestorePrimary);
            }
        }

        #[test]
        fn recovery_from_any_stored_phase_lands_on_a_phase_that_can_proceed(
            stored in any_phase(),
            instances in 0u32..30,
            ready_full in 0u32..30,
            now in 100_000u64..400_000,
        ) {
            let o = Owned::new();
            let mut f = quiet(now);
            f.shadow = ShadowFacts { instances, ready_full, ..ShadowFacts::default() };
            let step = recover_from(&stored, &f, &o.rules());
            // Traffic stays on a shadow only if the pool found can carry it.
            if step.next.on_shadow() {
                prop_assert!(ready_full >= 1);
                prop_assert!(step.changes.contains(&Change::SetWeight(step.next.phase.weight())));
            } else {
                prop_assert_eq!(step.next.phase.weight(), 0.0);
            }
            let unforced = step.changes.iter().any(|c| matches!(
                c,
                Change::ResizeShadow { force: false, .. } | Change::AnnounceShadow { force: false }
            ));
            prop_assert!(!unforced, "{:?}", step.changes);
            // And the next tick continues from there without contradiction.
            f.shadow.applied = None;
            let next = reconcile(&step.next, &f, &o.rules());
            prop_assert!(next.changes.iter().filter(|c| matches!(c, Change::SetWeight(_))).count() <= 1);
        }
    }
}
