//! The predictive strategy: the live controller's loop (forecast -> shadow plan -> trigger ->
//! migration step -> actions) over a fixed primary pool and a forecast-sized shadow pool.

use config::WorkloadPolicy;
use policies::{
    Action, GateVerdict, GuardThresholds, GuardVerdict, MigrationInputs, Outlook, Phase,
    PoolWindow, ShadowHealth, ShadowPlan, SizingInputs, gate, judge, judge_shortage,
    migration_step, plan_shadow_capacity,
};

use super::forecasting::ForecastView;
use super::pool::{Delays, Pool};
use super::reactive::Served;

/// Resolution of the trigger's outlook: one point per simulated minute.
pub const OUTLOOK_STEP_S: i64 = 60;

/// Something the predictive controller (or a proxy) did, for the log and the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Unix seconds.
    pub time: i64,
    /// Phase before (`Phase::name`).
    pub from: &'static str,
    /// Phase after, or `proxy_rollback` for the proxy's own guard.
    pub to: &'static str,
    /// Why, as the migration machine or the guard put it.
    pub reason: String,
}

/// How the split went in one step.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Split {
    /// Primary's share.
    pub primary: Served,
    /// Shadow's share.
    pub shadow: Served,
}

impl Split {
    /// Demand above ready capacity, both pools.
    pub fn unserved(&self) -> f64 {
        self.primary.unserved + self.shadow.unserved
    }
}

/// The gate's evidence, as the live orchestrator gathers it: requests the shadow took since
/// the phase (ramp step) began, and its failed share since the last tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Window {
    step_requests: f64,
    tick_requests: f64,
    tick_errors: f64,
}

/// The controller's state and the two pools.
#[derive(Clone, Debug)]
pub struct Predictive {
    policy: WorkloadPolicy,
    capacity: f64,
    delays: Delays,
    guard: GuardThresholds,
    primary_instances: u32,
    primary: Pool,
    shadow: Pool,
    phase: Phase,
    weight: f64,
    proxy_rolled_back: bool,
    /// ProvisionShadow was applied and IdleShadow not yet: the shadow follows the plan's
    /// count at full size.
    shadow_full: bool,
    idle_size: f64,
    window: Window,
}

/// What a decision changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Applied {
    /// Pool count/size changes.
    pub scaling_actions: u64,
    /// Phase changes and guard rollbacks.
    pub decisions: Vec<Decision>,
}

impl Predictive {
    /// `primary_instances` ready full-size instances of `capacity` requests/s, the shadow at
    /// the policy's minimum, idle.
    pub fn new(
        policy: WorkloadPolicy,
        capacity: f64,
        delays: Delays,
        guard: GuardThresholds,
        primary_instances: u32,
    ) -> Self {
        let sizing = &policy.sizing;
        let idle_size =
            f64::from(sizing.idle().cpu_millis) / f64::from(sizing.full().cpu_millis.max(1));
        let shadow = Pool::ready(sizing.min_instances() as usize, idle_size);
        Predictive {
            policy,
            capacity,
            delays,
            guard,
            primary_instances,
            primary: Pool::ready(primary_instances as usize, 1.0),
            shadow,
            phase: Phase::Idle,
            weight: 0.0,
            proxy_rolled_back: false,
            shadow_full: false,
            idle_size,
            window: Window::default(),
        }
    }

    /// Instances that finished starting or resizing by `now` serve from then.
    pub fn settle(&mut self, now: i64) {
        self.primary.settle(now);
        self.shadow.settle(now);
    }

    /// Splits `demand` by the proxies' weight over `step_s` seconds, then lets the proxy's
    /// guard judge the shadow's step (a rollback there is immediate: weight 0).
    pub fn serve(&mut self, now: i64, demand: f64, step_s: i64) -> (Split, Option<Decision>) {
        let to_shadow = demand * self.weight;
        let split = Split {
            primary: Served::of(
                demand - to_shadow,
                self.primary.ready_units() * self.capacity,
            ),
            shadow: Served::of(to_shadow, self.shadow.ready_units() * self.capacity),
        };
        if self.weight <= 0.0 {
            return (split, None);
        }
        let seconds = step_s as f64;
        let step = PoolWindow {
            requests: (to_shadow * seconds).round() as u64,
            errors: (split.shadow.unserved * seconds).round() as u64,
            p99: None,
        };
        self.window.step_requests += to_shadow * seconds;
        self.window.tick_requests += to_shadow * seconds;
        self.window.tick_errors += split.shadow.unserved * seconds;
        // Requests the shadow cannot take fail; the proxy's guard sees them as errors. Like
        // the proxy, it never rolls back onto a primary with nothing ready (decommissioned).
        let primary_up = self.primary.ready_units() > 0.0;
        match judge(&step, &PoolWindow::default(), &self.guard) {
            GuardVerdict::Rollback(reason) if primary_up => {
                self.weight = 0.0;
                self.proxy_rolled_back = true;
                let decision = Decision {
                    time: now,
                    from: self.phase.name(),
                    to: "proxy_rollback",
                    reason: reason.to_string(),
                };
                tracing::debug!(now, %decision.reason, "simulate: proxy rolled the shadow back");
                (split, Some(decision))
            }
            _ => (split, None),
        }
    }

    /// One controller tick at `now` with `observed` demand, the latest forecast and the rise
    /// learned with it ([`policies::startup_rise`]).
    pub fn decide(
        &mut self,
        now: i64,
        observed: f64,
        view: Option<&ForecastView>,
        rise: f64,
    ) -> Applied {
        let policy = &self.policy;
        let horizon_points = (policy.horizon.as_secs() as i64 / OUTLOOK_STEP_S).max(1) as usize;
        let outlook = view
            .map(|v| v.outlook(now, OUTLOOK_STEP_S, horizon_points))
            .unwrap_or_default();
        let lead_points =
            ((policy.trigger.lead_ms() / 1000) as i64 / OUTLOOK_STEP_S).max(1) as usize;
        // The horizon starts now, and the demand observed now is its first point: a plan
        // from the outlook alone shrinks the shadow below the load it carries as soon as a
        // surge's end enters the horizon, and the proxy then rolls every migration back.
        // The sizing takes observed demand (plus its buffer) beside the forecast's peak.
        let peak = |points: &[f64]| points.iter().copied().fold(observed, f64::max);
        let near_peak = peak(&outlook[..outlook.len().min(lead_points)]);
        let primary_capacity = f64::from(self.primary_instances) * self.capacity;
        let plan = self.plan(&SizingInputs {
            predicted_peak: outlook.iter().copied().fold(0.0, f64::max),
            observed,
            rise,
            near_peak,
            primary_capacity,
        });

        let now_ms = u64::try_from(now).unwrap_or(0).saturating_mul(1000);
        let (migrated, held_ms) = match &self.phase {
            Phase::Migrated { since_ms, .. } => (true, now_ms.saturating_sub(*since_ms)),
            _ => (false, 0),
        };
        let trigger = judge_shortage(
            &policy.trigger,
            &Outlook {
                upper: &outlook,
                step_ms: OUTLOOK_STEP_S as u64 * 1000,
                observed,
                primary_capacity,
            },
            migrated,
            held_ms,
        );
        let carrying = matches!(
            self.phase,
            Phase::Ramping { .. } | Phase::Migrated { .. } | Phase::Returning { .. }
        );
        // Before traffic moves, ready means the plan's full-size instances all serve. While
        // traffic is on the shadow it means none was lost: instances the plan is adding (it
        // grows with demand) are on their way, and instances never fail in a replay.
        let shadow_ready = if carrying {
            self.shadow.ready_at_size(1.0) + self.shadow.coming_at_size(1.0) >= self.shadow.count()
        } else {
            self.shadow.ready_at_size(1.0) >= plan.instances as usize
        };
        // Requests the shadow cannot serve fail: its gate passes while it covers its share
        // and fails once the failed share passes the ramp's max_error_rate. Like the live
        // orchestrator, no CPU or latency figure is fed in.
        let health = ShadowHealth {
            requests: self.window.step_requests.round() as u64,
            error_rate: if self.window.tick_requests > 0.0 {
                self.window.tick_errors / self.window.tick_requests
            } else {
                0.0
            },
            p99: None,
            cpu: None,
            memory: None,
        };
        let gate_verdict = if carrying {
            gate(&policy.migration.ramp, &health)
        } else {
            GateVerdict::Wait
        };
        let inputs = MigrationInputs {
            now_ms,
            trigger,
            shadow_ready,
            gate: gate_verdict,
            proxy_rolled_back: self.proxy_rolled_back,
            primary_ready: self.primary.ready_at_size(1.0) >= self.primary_instances as usize,
            failure: None,
        };
        let (next, actions, reason) = migration_step(&self.phase, &inputs, &policy.migration);
        let mut applied = Applied::default();
        for action in actions {
            applied.scaling_actions += u64::from(self.apply(now, &action));
        }
        if next != self.phase {
            // Every new phase (each ramp step is one) starts a fresh gate window.
            self.window.step_requests = 0.0;
        }
        if next.name() != self.phase.name() {
            tracing::debug!(now, from = self.phase.name(), to = next.name(), %reason, "simulate: phase");
            applied.decisions.push(Decision {
                time: now,
                from: self.phase.name(),
                to: next.name(),
                reason,
            });
        }
        self.phase = next;
        let size = if self.shadow_full || plan.warm {
            1.0
        } else {
            self.idle_size
        };
        if self
            .shadow
            .set_target(now, plan.instances as usize, size, self.delays)
        {
            applied.scaling_actions += 1;
        }
        self.window.tick_requests = 0.0;
        self.window.tick_errors = 0.0;
        applied
    }

    /// The shadow plan. The policy's sizing carries its own instance capacity and the replay's
    /// may differ; `plan_shadow_capacity` depends on demand only through demand / capacity,
    /// so demand is expressed in the policy's units.
    fn plan(&self, demand: &SizingInputs) -> ShadowPlan {
        let sizing = &self.policy.sizing;
        let k = sizing.instance_capacity() / self.capacity;
        plan_shadow_capacity(
            sizing,
            &SizingInputs {
                predicted_peak: demand.predicted_peak * k,
                observed: demand.observed * k,
                rise: demand.rise * k,
                near_peak: demand.near_peak * k,
                primary_capacity: demand.primary_capacity * k,
            },
        )
    }

    /// Performs one action; true if it changed a pool.
    fn apply(&mut self, now: i64, action: &Action) -> bool {
        match action {
            Action::ProvisionShadow => {
                self.shadow_full = true;
                false
            }
            Action::IdleShadow => {
                self.shadow_full = false;
                false
            }
            Action::SetWeight(w) => {
                self.weight = w.clamp(0.0, 1.0);
                // A new weight from the controller supersedes the proxy's own rollback.
                self.proxy_rolled_back = false;
                false
            }
            Action::DecommissionPrimary => self.primary.set_target(now, 0, 1.0, self.delays),
            Action::RestorePrimary => {
                self.primary
                    .set_target(now, self.primary_instances as usize, 1.0, self.delays)
            }
            Action::AnnounceShadow | Action::Alert { .. } => false,
        }
    }

    /// Cost rate of both pools in full-instance units.
    pub fn cost_units(&self) -> f64 {
        self.primary.cost_units() + self.shadow.cost_units()
    }

    /// Cost rate of the primary pool alone.
    pub fn primary_cost_units(&self) -> f64 {
        self.primary.cost_units()
    }

    /// Ready capacity of both pools, requests/s.
    pub fn ready_capacity(&self) -> f64 {
        (self.primary.ready_units() + self.shadow.ready_units()) * self.capacity
    }

    /// The migration phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The shadow weight the proxies apply now.
    pub fn weight(&self) -> f64 {
        self.weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> GuardThresholds {
        GuardThresholds::new(10, None, None, std::time::Duration::ZERO, 0.05).expect("valid")
    }

    #[test]
    fn the_guard_rolls_back_onto_a_ready_primary_but_never_onto_none() {
        let delays = Delays {
            startup: 120,
            resize: 30,
        };
        for (primary, rolls_back) in [(4, true), (0, false)] {
            let mut p = Predictive::new(WorkloadPolicy::builtin(), 50.0, delays, guard(), primary);
            p.apply(0, &Action::SetWeight(1.0));
            // The idle shadow (one small instance) cannot take 1000 requests/s.
            let (split, decision) = p.serve(0, 1000.0, 15);
            assert!(split.shadow.unserved > 0.0);
            assert_eq!(decision.is_some(), rolls_back, "primary {primary}");
            assert_eq!(p.weight() == 0.0, rolls_back, "primary {primary}");
        }
    }
}
