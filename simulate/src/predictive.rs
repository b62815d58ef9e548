//! The predictive strategy: the live controller's reconciler (`policies::reconcile`) driving a
//! model of a fixed primary pool, a shadow pool and one proxy.

use config::WorkloadPolicy;
use policies::{
    Change, Facts, GuardThresholds, GuardVerdict, Memory, Phase, PoolShape, PoolWindow, ProxyFacts,
    ShadowFacts, TriggerVerdict, judge, near_peak, reconcile,
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

/// What the shadow did since the last tick, as the proxies' reports and the scrape give it to
/// the live controller.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Window {
    tick_requests: f64,
    tick_errors: f64,
}

/// The controller's memory, the two pools and the proxy.
#[derive(Clone, Debug)]
pub struct Predictive {
    policy: WorkloadPolicy,
    capacity: f64,
    delays: Delays,
    guard: GuardThresholds,
    primary_instances: u32,
    primary: Pool,
    shadow: Pool,
    memory: Memory,
    /// The shadow shape last asked for.
    applied: Option<PoolShape>,
    /// The proxy's weight.
    weight: f64,
    /// When the proxy's guard rolled the shadow back (ms), until the controller sets a weight.
    rolled_back_at_ms: Option<u64>,
    window: Window,
    /// What the last tick saw and decided, for the shortage episodes' explanations.
    note: TickNote,
}

/// What the controller saw and decided at its last tick, in the replay's requests/s.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct TickNote {
    /// The trigger's verdict.
    trigger: Option<TriggerVerdict>,
    /// The forecast's peak within the trigger's lead time, or observed demand when higher
    /// ([`near_peak`], what the shadow was sized for); none before the first forecast.
    lead_peak: Option<f64>,
    /// What the trigger compares it to: the threshold's share of primary capacity.
    trigger_at: f64,
    /// Instances the shadow plan asked for.
    plan_instances: u32,
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
        let shadow = Pool::ready(
            sizing.min_instances() as usize,
            size_units(&policy, sizing.idle()),
        );
        Predictive {
            policy,
            capacity,
            delays,
            guard,
            primary_instances,
            primary: Pool::ready(primary_instances as usize, 1.0),
            shadow,
            memory: Memory::new(Phase::Idle),
            applied: None,
            weight: 0.0,
            rolled_back_at_ms: None,
            window: Window::default(),
            note: TickNote::default(),
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
        self.window.tick_requests += to_shadow * seconds;
        self.window.tick_errors += split.shadow.unserved * seconds;
        // Requests the shadow cannot take fail; the proxy's guard sees them as errors. Like
        // the proxy, it never rolls back onto a primary with nothing ready (decommissioned).
        let primary_up = self.primary.ready_units() > 0.0;
        match judge(&step, &PoolWindow::default(), &self.guard) {
            GuardVerdict::Rollback(reason) if primary_up => {
                self.weight = 0.0;
                self.rolled_back_at_ms = Some(ms(now));
                let decision = Decision {
                    time: now,
                    from: self.memory.phase.name(),
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
    /// learned with it ([`policies::startup_rise`]): the facts the live controller would read,
    /// the reconciler's step, its changes applied to the model.
    pub fn decide(
        &mut self,
        now: i64,
        observed: f64,
        view: Option<&ForecastView>,
        rise: f64,
    ) -> Applied {
        let policy = &self.policy;
        let horizon_points = (policy.horizon.as_secs() as i64 / OUTLOOK_STEP_S).max(1) as usize;
        // The policy's sizing carries its own instance capacity and the replay's may differ;
        // every decision depends on demand only through demand / capacity, so demand is
        // expressed in the policy's units.
        let k = policy.sizing.instance_capacity() / self.capacity;
        let upper: Vec<f64> = view
            .map(|v| v.outlook(now, OUTLOOK_STEP_S, horizon_points))
            .unwrap_or_default()
            .into_iter()
            .map(|u| u * k)
            .collect();
        let proxy = [ProxyFacts {
            weight: self.weight,
            rolled_back_at_ms: self.rolled_back_at_ms,
            shadow_error_rate: if self.window.tick_requests > 0.0 {
                self.window.tick_errors / self.window.tick_requests
            } else {
                0.0
            },
        }];
        let facts = Facts {
            now_ms: ms(now),
            observed: observed * k,
            shadow_requests: self.window.tick_requests,
            // No latency in a replay: the gate judges the shadow by its failed share.
            shadow_p99_ms: None,
            upper: &upper,
            step_ms: OUTLOOK_STEP_S as u64 * 1000,
            rise: rise * k,
            primary_capacity: f64::from(self.primary_instances) * policy.sizing.instance_capacity(),
            primary_ready: self.primary.ready_at_size(1.0) >= self.primary_instances as usize,
            proxies: &proxy,
            shadow: ShadowFacts {
                instances: u32::try_from(self.shadow.count()).unwrap_or(u32::MAX),
                ready_full: u32::try_from(self.shadow.ready_at_size(1.0)).unwrap_or(u32::MAX),
                applied: self.applied,
                ready_changed: false,
                proxies_stale: false,
            },
            ..Facts::default()
        };
        let rules = policy.rules();
        let step = reconcile(&self.memory, &facts, &rules);
        self.note = TickNote {
            trigger: Some(step.trigger),
            lead_peak: (!upper.is_empty()).then(|| near_peak(&facts, &rules) / k),
            trigger_at: policy.trigger.threshold() * facts.primary_capacity / k,
            plan_instances: step.plan.instances,
        };
        let mut applied = Applied::default();
        for change in &step.changes {
            applied.scaling_actions += u64::from(self.apply(now, change));
        }
        if step.next.phase.name() != self.memory.phase.name() {
            tracing::debug!(now, from = self.memory.phase.name(), to = step.next.phase.name(), reason = %step.reason, "simulate: phase");
            applied.decisions.push(Decision {
                time: now,
                from: self.memory.phase.name(),
                to: step.next.phase.name(),
                reason: step.reason,
            });
        }
        self.memory = step.next;
        self.window = Window::default();
        applied
    }

    /// Carries one change out on the model; true if it changed a pool.
    fn apply(&mut self, now: i64, change: &Change) -> bool {
        match change {
            Change::ResizeShadow { to, .. } => {
                self.applied = Some(*to);
                let size = size_units(&self.policy, to.size);
                self.shadow
                    .set_target(now, to.instances as usize, size, self.delays)
            }
            Change::SetWeight(w) => {
                self.weight = w.clamp(0.0, 1.0);
                // A new weight from the controller supersedes the proxy's own rollback.
                self.rolled_back_at_ms = None;
                false
            }
            Change::DecommissionPrimary => self.primary.set_target(now, 0, 1.0, self.delays),
            Change::RestorePrimary => {
                self.primary
                    .set_target(now, self.primary_instances as usize, 1.0, self.delays)
            }
            Change::AnnounceShadow { .. } | Change::Alert { .. } => false,
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
        &self.memory.phase
    }

    /// The shadow weight the proxies apply now.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// Why the pools are what they are at `now`, in a sentence: the phase, what the trigger made
    /// of the forecast at the last tick, and what each pool has ready.
    pub fn explain(&self, now: i64) -> String {
        let n = &self.note;
        let ready = format!(
            "primary ready {:.0} rps, shadow ready {:.0} rps at weight {:.2}",
            self.primary.ready_units() * self.capacity,
            self.shadow.ready_units() * self.capacity,
            self.weight
        );
        let forecast = match n.lead_peak {
            Some(peak) => format!(
                "the forecast's peak within the lead time (or observed demand) was {peak:.0} rps against the trigger's {:.0}",
                n.trigger_at
            ),
            None => "no forecast yet".to_string(),
        };
        let what = match (&self.memory.phase, n.trigger) {
            (Phase::Idle, Some(TriggerVerdict::Migrate { in_ms, .. })) => {
                format!(
                    "migration starting: shortage predicted in {} s",
                    in_ms / 1000
                )
            }
            (Phase::Idle, _) => format!("on primary, trigger not fired: {forecast}"),
            (Phase::Provisioning { since_ms }, _) => format!(
                "shadow starting ({} instances) for {} s",
                n.plan_instances,
                ms(now).saturating_sub(*since_ms) / 1000
            ),
            (Phase::Ramping { weight, .. }, _) => format!("ramping onto the shadow at {weight:.2}"),
            (Phase::Migrated { .. }, _) => format!(
                "migrated; the shadow plan was {} instances ({:.0} rps)",
                n.plan_instances,
                f64::from(n.plan_instances) * self.capacity
            ),
            (Phase::Returning { .. }, _) => {
                "returning: waiting for primary to be ready".to_string()
            }
            (Phase::RolledBack { reason, .. }, _) => format!("rolled back ({reason}); {forecast}"),
        };
        format!("{what}; {ready}")
    }
}

/// An instance size as a share of the full size (the model's capacity unit).
fn size_units(policy: &WorkloadPolicy, size: policies::InstanceSize) -> f64 {
    f64::from(size.cpu_millis) / f64::from(policy.sizing.full().cpu_millis.max(1))
}

/// Unix seconds as the reconciler's unix ms.
fn ms(seconds: i64) -> u64 {
    u64::try_from(seconds).unwrap_or(0).saturating_mul(1000)
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
            p.apply(0, &Change::SetWeight(1.0));
            // The idle shadow (one small instance) cannot take 1000 requests/s.
            let (split, decision) = p.serve(0, 1000.0, 15);
            assert!(split.shadow.unserved > 0.0);
            assert_eq!(decision.is_some(), rolls_back, "primary {primary}");
            assert_eq!(p.weight() == 0.0, rolls_back, "primary {primary}");
        }
    }
}
