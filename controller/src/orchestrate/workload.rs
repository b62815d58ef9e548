//! One workload's tick: facts in, `migration_step`, actions out, phase persisted.

use std::sync::Arc;

use config::{Mode, WorkloadPolicy, WorkloadSpec};
use policies::{
    Action, Candidate, GateVerdict, MigrationInputs, Outlook, Phase, ShadowHealth, ShadowPlan,
    SizingInputs, TriggerVerdict, gate, judge_shortage, migration_step, plan_shadow_capacity,
    recover, shadow_ready_after_restart,
};

use super::journal::{Journal, Written};
use super::shadow::{ShadowManager, ShadowView};
use super::{Context, PrimarySupervisor};
use crate::board::WorkloadStatus;
use crate::provision::{Resources, ShadowTarget};
use crate::proxies::ProxyWorkload;

/// What one tick knows before acting.
struct Facts {
    observed: crate::board::Observed,
    /// Highest upper-quantile forecast (or observed) demand over the horizon.
    peak: f64,
    /// Highest upper-quantile forecast over the horizon alone (0 without a forecast).
    forecast_peak: f64,
    /// The same within the lead time.
    near: f64,
    /// The rise learned with the forecast (0 without one).
    rise: f64,
    trigger: TriggerVerdict,
}

/// A workload under orchestration.
pub struct WorkloadRuntime {
    spec: WorkloadSpec,
    policy: Arc<WorkloadPolicy>,
    shadow: ShadowManager,
    primary: Option<Arc<PrimarySupervisor>>,
    phase: Phase,
    /// Observe mode: the phase the controller would be in.
    virtual_phase: Phase,
    failure: Option<String>,
    /// When the current migration attempt began (unix ms): a proxy rollback after it counts.
    attempt_started_ms: i64,
    /// Shadow requests seen during the current ramp step (for the gate's minimum).
    step_requests: f64,
    step_p99_ms: Option<f64>,
    /// Full-size instances the migration provisions; fixed when it starts so that a growing
    /// forecast scales the pool up instead of making it look "not ready".
    target: u32,
    /// Ready full-size instances the migration needs; fewer means the shadow is unhealthy.
    required: u32,
    last_reason: String,
    would_do: Vec<String>,
    /// Transitions made but not yet in the phase store.
    journal: Journal,
    /// The phase store failed at the last attempt (logged once per outage).
    store_failing: bool,
}

fn resources(size: policies::InstanceSize) -> Resources {
    Resources {
        cpu_millis: size.cpu_millis,
        memory_mib: size.memory_mib,
    }
}

impl WorkloadRuntime {
    /// A runtime starting from `Idle` (recovery replaces it with the stored phase).
    pub fn new(
        spec: WorkloadSpec,
        policy: Arc<WorkloadPolicy>,
        shadow: ShadowManager,
        primary: Option<Arc<PrimarySupervisor>>,
    ) -> Self {
        WorkloadRuntime {
            spec,
            policy,
            shadow,
            primary,
            phase: Phase::Idle,
            virtual_phase: Phase::Idle,
            failure: None,
            attempt_started_ms: 0,
            step_requests: 0.0,
            step_p99_ms: None,
            target: 1,
            required: 1,
            last_reason: String::new(),
            would_do: Vec::new(),
            journal: Journal::default(),
            store_failing: false,
        }
    }

    fn name(&self) -> &str {
        self.spec.name.as_str()
    }

    fn primary_capacity(&self) -> f64 {
        self.spec.primary.len() as f64 * self.policy.sizing.instance_capacity()
    }

    /// Acting needs act mode and a way to run instances; otherwise the workload is observed.
    fn acting(&self, ctx: &Context) -> bool {
        let runnable = !self.spec.instance.command.is_empty() || self.spec.instance.image.is_some();
        ctx.mode == Mode::Act && runnable
    }

    /// Reads the stored phase and reconciles the world with it.
    pub async fn recover(&mut self, ctx: &Context) {
        let now = crate::clock::unix_ms();
        let stored = match ctx.phases.load(self.name()).await {
            Ok(p) => p.unwrap_or(Phase::Idle),
            Err(e) => {
                ctx.metrics.error("store");
                tracing::error!(workload = %self.name(), error = %e, "reading the stored phase failed; starting idle");
                Phase::Idle
            }
        };
        if let Some(p) = &self.primary {
            if !matches!(
                stored,
                Phase::Migrated {
                    primary_decommissioned: true,
                    ..
                }
            ) {
                if let Err(e) = p.ensure_running().await {
                    tracing::error!(workload = %self.name(), error = %e, "starting primary instances failed");
                }
            }
        }
        if !self.acting(ctx) {
            self.phase = stored;
            self.publish(ctx, None, None);
            return;
        }
        let full = resources(self.policy.sizing.full());
        let view = self.shadow.observe(full).await.unwrap_or_default();
        // What the migration had provisioned before the restart is what the provisioner finds.
        let min = self.policy.sizing.min_instances().max(1);
        self.target = (view.instances.len() as u32).max(min);
        // Until the pool reaches its target again, it is judged against its minimum (see
        // `shadow_ready_after_restart`: a draining or starting instance is not a lost one).
        self.required = min;
        let shadow_ready = shadow_ready_after_restart(view.ready_full, min);
        let (next, actions, reason) = recover(&stored, shadow_ready, now as u64);
        tracing::info!(workload = %self.name(), from = stored.name(), to = next.name(), reason = %reason, "recovered migration state");
        if matches!(
            next,
            Phase::Ramping { .. } | Phase::Migrated { .. } | Phase::Provisioning { .. }
        ) {
            self.attempt_started_ms = now;
        }
        if !self.commit(ctx, &stored, next, &reason, now).await {
            return;
        }
        // Force: after a restart the provisioner must re-apply what the store says.
        self.execute(ctx, actions, &view, true).await;
    }

    /// What the board says about this workload now: observed demand, the forecast's peaks,
    /// and the trigger's verdict.
    fn facts(&self, ctx: &Context, now: i64) -> Facts {
        let name = self.name();
        let capacity = self.primary_capacity();
        let observed = ctx
            .board
            .observed()
            .get(name)
            .filter(|o| now - o.at_ms <= ctx.stale_after.as_millis() as i64)
            .cloned()
            .unwrap_or_default();
        let forecast = ctx.board.demand_forecast(name);
        let horizon_ms = self.policy.horizon.as_millis() as i64;
        let lead_ms = self.policy.trigger.lead_ms() as i64;
        let upper = forecast
            .as_ref()
            .map(|f| f.upper_from(now))
            .unwrap_or_default();
        let step_ms = forecast.as_ref().map_or(1000, |f| f.step_ms.max(1)) as u64;
        let forecast_within = |ms| {
            forecast
                .as_ref()
                .and_then(|f| f.upper_peak_within(now, ms))
                .unwrap_or(0.0)
        };
        let forecast_peak = forecast_within(horizon_ms);
        let peak = forecast_peak.max(observed.rps);
        let near = forecast_within(lead_ms).max(observed.rps);
        let on_shadow = matches!(self.phase, Phase::Ramping { .. } | Phase::Migrated { .. });
        let held_ms = match &self.phase {
            Phase::Migrated { since_ms, .. } => (now as u64).saturating_sub(*since_ms),
            _ => 0,
        };
        let outlook = Outlook {
            upper: &upper,
            step_ms,
            observed: observed.rps,
            primary_capacity: capacity,
        };
        let trigger = judge_shortage(&self.policy.trigger, &outlook, on_shadow, held_ms);
        Facts {
            observed,
            peak,
            forecast_peak,
            near,
            rise: forecast.as_ref().map_or(0.0, |f| f.rise),
            trigger,
        }
    }

    /// Whether this workload wants to start a migration now, as a ranking candidate.
    pub fn candidate(&self, ctx: &Context) -> Option<Candidate> {
        if self.phase != Phase::Idle || !self.acting(ctx) {
            return None;
        }
        let facts = self.facts(ctx, crate::clock::unix_ms());
        matches!(facts.trigger, TriggerVerdict::Migrate { .. }).then(|| Candidate {
            name: self.name().to_string(),
            stateless: self.spec.stateless,
            allow_stateful: self.policy.allow_stateful,
            demand: facts.peak,
            priority: self.spec.priority,
        })
    }

    /// Whether a migration is under way (it holds one of the concurrent-migration slots).
    pub fn migrating(&self) -> bool {
        matches!(
            self.phase,
            Phase::Provisioning { .. }
                | Phase::Ramping { .. }
                | Phase::Migrated { .. }
                | Phase::Returning { .. }
        )
    }

    /// One tick. `hold`: a reason this workload may not start a migration now (another one
    /// ranked first, or a stateful workload whose policy forbids it).
    pub async fn tick(&mut self, ctx: &Context, hold: Option<&str>) {
        if !self.journal.is_empty() && !self.write_journal(ctx).await {
            return;
        }
        let now = crate::clock::unix_ms();
        let name = self.name().to_string();
        let capacity = self.primary_capacity();
        let Facts {
            observed,
            forecast_peak,
            near,
            rise,
            mut trigger,
            ..
        } = self.facts(ctx, now);
        // Observe mode reports each workload's own verdict: nothing is started, so no slot is
        // taken and nobody waits for one.
        let hold = hold.filter(|_| self.acting(ctx));
        if let (Some(why), Phase::Idle, TriggerVerdict::Migrate { .. }) =
            (hold, &self.phase, trigger)
        {
            if self.last_reason != why {
                tracing::info!(workload = %name, reason = why, "shortage predicted, migration held");
                self.last_reason = why.to_string();
            }
            trigger = TriggerVerdict::Hold;
        }
        let migrating = matches!(
            self.phase,
            Phase::Provisioning { .. } | Phase::Ramping { .. } | Phase::Migrated { .. }
        );
        let on_shadow = matches!(self.phase, Phase::Ramping { .. } | Phase::Migrated { .. });

        // The shadow plan: sized for the peak; full size whenever a migration needs it.
        let mut plan = plan_shadow_capacity(
            &self.policy.sizing,
            &SizingInputs {
                predicted_peak: forecast_peak,
                observed: observed.rps,
                rise,
                near_peak: near,
                primary_capacity: capacity,
            },
        );
        if migrating || matches!(trigger, TriggerVerdict::Migrate { .. }) {
            plan.size = self.policy.sizing.full();
            plan.warm = true;
            plan.instances = plan.instances.max(1);
        }
        match self.phase {
            // A new attempt provisions for the plan of the moment.
            Phase::Idle | Phase::RolledBack { .. } => {
                self.target = plan.instances.max(1);
                self.required = self.target;
            }
            // While migrated the shadow is the workload's whole pool and follows the plan both
            // ways: up with demand (readiness is still judged against what was ready before,
            // until the new instances are up), and down when the peak has passed (the plan
            // counts observed demand, so it never drops below the load it carries; the
            // instances about to stop are withdrawn from the proxies first). This is what the
            // simulator measured in bench/simulate does too.
            Phase::Migrated { .. } if plan.instances != self.target => {
                self.target = plan.instances;
                let target = ShadowTarget {
                    instances: self.target,
                    resources: resources(self.policy.sizing.full()),
                };
                if let Err(e) = self.shadow.apply(&ctx.proxies, target, false).await {
                    ctx.metrics.error("provision");
                    tracing::error!(workload = %name, error = %e, "resizing the migrated shadow pool failed");
                }
            }
            _ => {}
        }

        let proxy_view = ctx.proxies.workloads().await;
        let mut reports: Vec<ProxyWorkload> = Vec::new();
        for (proxy, result) in proxy_view {
            match result {
                Ok(list) => reports.extend(list.into_iter().filter(|w| w.name == name)),
                Err(e) => {
                    ctx.metrics.error("proxy");
                    tracing::warn!(%proxy, error = %e, "reading proxy state failed");
                }
            }
        }
        let proxy_rolled_back = on_shadow
            && reports.iter().any(|r| {
                r.state == "rolled_back"
                    && r.last_rollback
                        .as_ref()
                        .is_some_and(|lr| lr.at_unix_ms as i64 >= self.attempt_started_ms)
            });

        if !self.acting(ctx) {
            self.observe_only(ctx, trigger, plan, now);
            return;
        }

        // Keep the idle pool at its plan; the machine drives sizes during migrations.
        if matches!(self.phase, Phase::Idle | Phase::RolledBack { .. }) {
            let target = ShadowTarget {
                instances: plan.instances,
                resources: resources(plan.size),
            };
            if let Err(e) = self.shadow.apply(&ctx.proxies, target, false).await {
                ctx.metrics.error("provision");
                tracing::error!(workload = %name, error = %e, "sizing the idle shadow pool failed");
            }
        }
        let full = resources(self.policy.sizing.full());
        let view = match self.shadow.observe(full).await {
            Ok(v) => v,
            Err(e) => {
                ctx.metrics.error("provision");
                self.failure
                    .get_or_insert_with(|| format!("listing shadow instances: {e}"));
                ShadowView::default()
            }
        };
        // A proxy that restarted lost the members; tell it again even if nothing changed here.
        let repair = self.shadow.proxies_differ(&reports);
        if let Err(e) = self
            .shadow
            .announce(&ctx.proxies, &view.ready, repair)
            .await
        {
            ctx.metrics.error("proxy");
            tracing::warn!(workload = %name, error = %e, "announcing the shadow pool failed");
        }
        if view.ready_full >= self.target {
            self.required = self.target;
        }
        let shadow_ready = view.ready_full >= self.required;

        // The gate: what the shadow did during this ramp step.
        if let Some(shadow) = observed.pools.get("shadow") {
            self.step_requests += shadow.rps * ctx.tick.as_secs_f64();
            if let Some(p) = shadow.p99_ms {
                self.step_p99_ms = Some(self.step_p99_ms.map_or(p, |m: f64| m.max(p)));
            }
        }
        let error_rate = reports
            .iter()
            .map(|r| r.shadow.error_rate)
            .fold(0.0, f64::max);
        let health = ShadowHealth {
            requests: self.step_requests as u64,
            error_rate,
            p99: self
                .step_p99_ms
                .map(|ms| std::time::Duration::from_secs_f64(ms / 1000.0)),
            cpu: None,
            memory: None,
        };
        let verdict = if on_shadow {
            gate(&self.policy.migration.ramp, &health)
        } else {
            GateVerdict::Wait
        };
        let primary_ready = match &self.primary {
            Some(p) => p.ready().await,
            None => true,
        };
        let inputs = MigrationInputs {
            now_ms: now as u64,
            trigger,
            shadow_ready,
            gate: verdict,
            proxy_rolled_back,
            primary_ready,
            failure: self.failure.take(),
        };
        let (next, actions, reason) = migration_step(&self.phase, &inputs, &self.policy.migration);
        let from = self.phase.clone();
        if next != from {
            if matches!(next, Phase::Provisioning { .. }) {
                self.attempt_started_ms = now;
            }
            // Every new phase (each ramp step is one) starts a fresh gate window.
            self.step_requests = 0.0;
            self.step_p99_ms = None;
            self.count_outcome(ctx, &from, &next);
            if !self.commit(ctx, &from, next, &reason, now).await {
                return;
            }
        }
        let sets_weight = actions.iter().any(|a| matches!(a, Action::SetWeight(_)));
        self.execute(ctx, actions, &view, false).await;
        // Repair: keep the proxies' weight at the phase's weight (a failed call, a restarted
        // proxy), unless this tick set it already (the reports predate that) or a proxy-side
        // rollback is being handled.
        let want = self.phase.weight();
        if !proxy_rolled_back
            && !sets_weight
            && reports.iter().any(|r| {
                (r.shadow_weight - want).abs() > 1e-6 && !(want > 0.0 && r.state == "rolled_back")
            })
        {
            if let Err(e) = ctx.proxies.set_weight(&name, want).await {
                tracing::warn!(workload = %name, error = %e, weight = want, "re-applying the shadow weight failed");
            }
        }
        self.publish(ctx, Some(&view), Some(plan));
    }

    fn observe_only(&mut self, ctx: &Context, trigger: TriggerVerdict, plan: ShadowPlan, now: i64) {
        // Run the machine on a virtual phase, assuming provisioning and every gate succeed.
        let inputs = MigrationInputs {
            now_ms: now as u64,
            trigger,
            shadow_ready: true,
            gate: GateVerdict::Pass,
            proxy_rolled_back: false,
            primary_ready: true,
            failure: None,
        };
        let (next, actions, reason) =
            migration_step(&self.virtual_phase, &inputs, &self.policy.migration);
        if next != self.virtual_phase {
            tracing::info!(
                workload = %self.name(), mode = "observe", from = self.virtual_phase.name(), to = next.name(),
                reason = %reason, "would transition"
            );
            self.would_do.push(format!(
                "{}: {} -> {}: {reason}",
                now,
                self.virtual_phase.name(),
                next.name()
            ));
            let keep = self.would_do.len().saturating_sub(20);
            self.would_do.drain(..keep);
            self.virtual_phase = next;
        }
        for a in actions {
            tracing::info!(workload = %self.name(), mode = "observe", action = ?a, "would act");
        }
        self.publish(ctx, None, Some(plan));
    }

    fn count_outcome(&self, ctx: &Context, from: &Phase, to: &Phase) {
        let outcome = match (from, to) {
            (_, Phase::Migrated { .. }) if !matches!(from, Phase::Returning { .. }) => "completed",
            (_, Phase::RolledBack { .. }) => "rolled_back",
            (Phase::Returning { .. }, Phase::Idle) => "returned",
            _ => return,
        };
        ctx.metrics
            .migrations
            .with_label_values(&[self.name(), outcome])
            .inc();
    }

    /// Persists `to` and makes it the phase. `false` when another controller wrote the phase
    /// since this one read it (it leads now): then nothing of this transition may be done.
    async fn commit(
        &mut self,
        ctx: &Context,
        from: &Phase,
        to: Phase,
        reason: &str,
        now: i64,
    ) -> bool {
        self.journal.record(from, &to, reason, now);
        if !self.write_journal(ctx).await {
            tracing::error!(workload = %self.name(), from = from.name(), to = to.name(), "transition not made");
            return false;
        }
        if *from != to {
            tracing::info!(
                workload = %self.name(), from = from.name(), to = to.name(), weight = to.weight(), reason = %reason,
                "migration transition"
            );
            self.last_reason = reason.to_string();
        }
        ctx.metrics
            .migration_state
            .with_label_values(&[self.name()])
            .set(to.code());
        self.phase = to;
        true
    }

    /// Writes the transitions the phase store has not taken yet. The store failing must not
    /// leave traffic where it is: the transition is made anyway and kept until the store takes
    /// it, so a restart recovers from the last phase acted on. `false` only when another
    /// controller holds the phase (fenced): then nothing may be done.
    async fn write_journal(&mut self, ctx: &Context) -> bool {
        let name = self.name().to_string();
        match self.journal.write(ctx.phases.as_ref(), &name).await {
            Written::All => {
                if self.store_failing {
                    self.store_failing = false;
                    let dropped = self.journal.take_dropped();
                    tracing::info!(workload = %name, dropped, "phase store works again; the transitions it missed are written");
                }
                true
            }
            Written::Held(e) => {
                ctx.metrics.error("store");
                if !self.store_failing {
                    self.store_failing = true;
                    tracing::error!(workload = %name, error = %e, held = self.journal.len(), "persisting the migration phase failed; retrying every tick");
                }
                true
            }
            Written::Fenced(e) => {
                ctx.metrics.error("store");
                self.store_failing = false;
                tracing::error!(workload = %name, error = %e, "another controller holds the phase");
                false
            }
        }
    }

    async fn execute(
        &mut self,
        ctx: &Context,
        actions: Vec<Action>,
        view: &ShadowView,
        force: bool,
    ) {
        let name = self.name().to_string();
        for action in actions {
            let result: Result<(), String> = match &action {
                Action::ProvisionShadow => {
                    let target = ShadowTarget {
                        instances: self.target.max(1),
                        resources: resources(self.policy.sizing.full()),
                    };
                    self.shadow
                        .apply(&ctx.proxies, target, force)
                        .await
                        .map_err(|e| e.to_string())
                }
                Action::IdleShadow => {
                    let idle = plan_shadow_capacity(
                        &self.policy.sizing,
                        &SizingInputs {
                            primary_capacity: self.primary_capacity(),
                            ..SizingInputs::default()
                        },
                    );
                    let target = ShadowTarget {
                        instances: idle.instances,
                        resources: resources(idle.size),
                    };
                    self.shadow
                        .apply(&ctx.proxies, target, force)
                        .await
                        .map_err(|e| e.to_string())
                }
                Action::AnnounceShadow => self
                    .shadow
                    .announce(&ctx.proxies, &view.ready, true)
                    .await
                    .map_err(|e| e.to_string()),
                Action::SetWeight(w) => ctx
                    .proxies
                    .set_weight(&name, *w)
                    .await
                    .map_err(|e| e.to_string()),
                Action::DecommissionPrimary => {
                    match &self.primary {
                        Some(p) => p.stop().await,
                        None => {
                            tracing::info!(workload = %name, "primary is not run by umbra; nothing to decommission")
                        }
                    }
                    Ok(())
                }
                Action::RestorePrimary => match &self.primary {
                    Some(p) => p.ensure_running().await,
                    None => Ok(()),
                },
                Action::Alert { kind, message } => {
                    let sent = ctx
                        .alerter
                        .send(kind, &name, message, crate::clock::unix_ms())
                        .await;
                    if let Err(e) = &sent {
                        ctx.metrics.error("alert");
                        tracing::error!(workload = %name, error = %e, "alert not delivered");
                    }
                    Ok(())
                }
            };
            if let Err(e) = result {
                ctx.metrics.error("action");
                tracing::error!(workload = %name, action = ?action, error = %e, "action failed");
                self.failure.get_or_insert(e);
            }
        }
    }

    fn publish(&self, ctx: &Context, view: Option<&ShadowView>, plan: Option<ShadowPlan>) {
        let phase = if ctx.mode == Mode::Observe {
            &self.virtual_phase
        } else {
            &self.phase
        };
        ctx.board.set_status(
            self.name(),
            WorkloadStatus {
                migration_state: phase.name().to_string(),
                shadow_weight: self.phase.weight(),
                shadow_instances: view
                    .map(|v| v.ready.iter().map(|a| a.to_string()).collect())
                    .unwrap_or_default(),
                planned_instances: plan.map_or(0, |p| p.instances),
                shadow_warm: plan.is_some_and(|p| p.warm),
                primary_capacity: self.primary_capacity(),
                last_reason: self.last_reason.clone(),
                would_do: self.would_do.clone(),
            },
        );
        if let Some(v) = view {
            let full = v.ready_full as i64;
            ctx.metrics
                .shadow_instances
                .with_label_values(&[self.name(), "full"])
                .set(full);
            ctx.metrics
                .shadow_instances
                .with_label_values(&[self.name(), "idle"])
                .set(v.instances.len() as i64 - full);
        }
    }

    /// Stops shadow and primary instances.
    pub async fn stop_instances(&self) {
        if let Err(e) = self.shadow.stop_all().await {
            tracing::warn!(workload = %self.name(), error = %e, "stopping shadow instances failed");
        }
        if let Some(p) = &self.primary {
            p.stop().await;
        }
    }
}
