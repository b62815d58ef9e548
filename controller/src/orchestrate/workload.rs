//! One workload's tick: read the world, ask the reconciler, persist the phase, carry the changes out.

use std::sync::Arc;

use config::{Mode, WorkloadPolicy, WorkloadSpec};
use policies::{
    Candidate, Change, Facts, Memory, Phase, PoolShape, ProxyFacts, ShadowFacts, ShadowPlan, Step,
    TriggerVerdict, reconcile, recover_from, shortage,
};

use super::fleet::{Fleet, proxy_facts};
use super::journal::{Journal, Written};
use super::shadow::{ShadowManager, ShadowView};
use super::{Context, PrimarySupervisor};
use crate::board::WorkloadStatus;
use crate::proxies::Proxies;
use provision::{Resources, ShadowTarget};

/// What the board says about a workload: demand now and the forecast from now on.
#[derive(Default)]
struct Outlook {
    observed: crate::board::Observed,
    upper: Vec<f64>,
    step_ms: u64,
    rise: f64,
}

/// A workload under orchestration: the I/O around [`policies::reconcile`].
pub struct WorkloadRuntime {
    spec: WorkloadSpec,
    policy: Arc<WorkloadPolicy>,
    shadow: ShadowManager,
    primary: Option<Arc<PrimarySupervisor>>,
    memory: Memory,
    /// Observe mode: where the controller would be.
    virtual_memory: Memory,
    /// A change of the previous tick that failed (the reconciler rolls back on it).
    failure: Option<String>,
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

fn shape(t: ShadowTarget) -> PoolShape {
    PoolShape {
        instances: t.instances,
        size: policies::InstanceSize {
            cpu_millis: t.resources.cpu_millis,
            memory_mib: t.resources.memory_mib,
        },
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
            memory: Memory::new(Phase::Idle),
            virtual_memory: Memory::new(Phase::Idle),
            failure: None,
            last_reason: String::new(),
            would_do: Vec::new(),
            journal: Journal::default(),
            store_failing: false,
        }
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
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

    /// Demand now (if fresh) and the forecast from `now` on.
    fn outlook(&self, ctx: &Context, now: i64) -> Outlook {
        let name = self.name();
        let observed = ctx
            .board
            .observed_of(name)
            .filter(|o| now - o.at_ms <= ctx.stale_after.as_millis() as i64)
            .unwrap_or_default();
        let forecast = ctx.board.demand_forecast(name);
        Outlook {
            observed,
            upper: forecast
                .as_ref()
                .map(|f| f.upper_from(now))
                .unwrap_or_default(),
            step_ms: forecast.as_ref().map_or(1000, |f| f.step_ms.max(1)) as u64,
            rise: forecast.as_ref().map_or(0.0, |f| f.rise),
        }
    }

    /// The facts the board alone gives (demand, forecast, primary capacity).
    fn facts<'a>(&self, o: &'a Outlook, now: i64) -> Facts<'a> {
        Facts {
            now_ms: u64::try_from(now).unwrap_or(0),
            observed: o.observed.rps,
            upper: &o.upper,
            step_ms: o.step_ms,
            rise: o.rise,
            primary_capacity: self.primary_capacity(),
            primary_ready: true,
            ..Facts::default()
        }
    }

    /// The shadow pool in the reconciler's terms. `listed`: the provisioner answered (an
    /// empty view from a failed listing must not be announced to the proxies). `reports`: what
    /// the proxies say of this workload (none at recovery).
    fn shadow_facts(
        &self,
        view: &ShadowView,
        listed: bool,
        reports: &[wire::Workload],
    ) -> ShadowFacts {
        ShadowFacts {
            instances: u32::try_from(view.instances.len()).unwrap_or(u32::MAX),
            ready_full: view.ready_full,
            applied: self.shadow.applied().map(shape),
            ready_changed: listed && self.shadow.ready_changed(&view.ready),
            proxies_stale: self.shadow.proxies_differ(reports),
        }
    }

    /// Reads the stored phase and reconciles the world with it; changes go to `proxies` (the
    /// ones that answered the recovery's read).
    pub async fn recover(&mut self, ctx: &Context, proxies: &Proxies) {
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
            self.memory = Memory::new(stored);
            self.publish(ctx, None, None);
            return;
        }
        let full = resources(self.policy.sizing.full());
        let view = self
            .shadow
            .observe(full, system_time(ctx))
            .await
            .unwrap_or_default();
        let now = ctx.clock.unix_ms();
        let outlook = self.outlook(ctx, now);
        let facts = Facts {
            shadow: self.shadow_facts(&view, true, &[]),
            ..self.facts(&outlook, now)
        };
        let step = recover_from(&stored, &facts, &self.policy.rules());
        tracing::info!(workload = %self.name(), from = stored.name(), to = step.next.phase.name(), reason = %step.reason, "recovered migration state");
        if !self.commit(ctx, &stored, &step, now).await {
            return;
        }
        self.memory = step.next;
        self.execute(ctx, proxies, step.changes, &view).await;
    }

    /// Whether this workload wants to start a migration now, as a ranking candidate.
    pub fn candidate(&self, ctx: &Context) -> Option<Candidate> {
        if self.memory.phase != Phase::Idle || !self.acting(ctx) {
            return None;
        }
        let now = ctx.clock.unix_ms();
        let outlook = self.outlook(ctx, now);
        let facts = self.facts(&outlook, now);
        let trigger = shortage(&self.memory, &facts, &self.policy.rules());
        let peak = outlook.upper.iter().copied().fold(facts.observed, f64::max);
        matches!(trigger, TriggerVerdict::Migrate { .. }).then(|| Candidate {
            name: self.name().to_string(),
            stateless: self.spec.stateless,
            allow_stateful: self.policy.allow_stateful,
            demand: peak,
            priority: self.spec.priority,
        })
    }

    /// Whether a migration is under way (it holds one of the concurrent-migration slots).
    pub fn migrating(&self) -> bool {
        self.memory.migrating()
    }

    /// One tick. `hold`: a reason this workload may not start a migration now (another one
    /// ranked first, or a stateful workload whose policy forbids it). `fleet`: what the
    /// proxies reported this tick; changes go to the proxies that answered.
    pub async fn tick(&mut self, ctx: &Context, hold: Option<&str>, fleet: &Fleet) {
        if !self.journal.is_empty() && !self.write_journal(ctx).await {
            return;
        }
        let reports = fleet.reports(self.name());
        let proxies: Vec<ProxyFacts> = reports.iter().map(proxy_facts).collect();
        if !self.acting(ctx) {
            self.observe_only(ctx);
            return;
        }
        let full = resources(self.policy.sizing.full());
        let (view, listed) = match self.shadow.observe(full, system_time(ctx)).await {
            Ok(v) => (v, true),
            Err(e) => {
                ctx.metrics.error("provision");
                self.failure
                    .get_or_insert_with(|| format!("listing shadow instances: {e}"));
                (ShadowView::default(), false)
            }
        };
        let primary_ready = match &self.primary {
            Some(p) => p.ready().await,
            None => true,
        };
        // Taken after every read: a transition is stamped no earlier than what it saw.
        let now = ctx.clock.unix_ms();
        let outlook = self.outlook(ctx, now);
        let shadow_pool = outlook.observed.pools.get("shadow");
        let facts = Facts {
            shadow_requests: shadow_pool.map_or(0.0, |p| p.rps * ctx.tick.as_secs_f64()),
            shadow_p99_ms: shadow_pool.and_then(|p| p.p99_ms),
            primary_ready,
            proxies: &proxies,
            shadow: self.shadow_facts(&view, listed, reports),
            hold,
            failure: self.failure.take(),
            ..self.facts(&outlook, now)
        };
        let step = reconcile(&self.memory, &facts, &self.policy.rules());
        if step.held {
            let why = hold.unwrap_or_default();
            if self.last_reason != why {
                tracing::info!(workload = %self.name(), reason = why, "shortage predicted, migration held");
                self.last_reason = why.to_string();
            }
        }
        let from = self.memory.phase.clone();
        if step.next.phase != from {
            self.count_outcome(ctx, &from, &step.next.phase);
            if !self.commit(ctx, &from, &step, now).await {
                return;
            }
        }
        self.memory = step.next;
        self.execute(ctx, fleet.answering(), step.changes, &view)
            .await;
        self.publish(ctx, Some(&view), Some(step.plan));
    }

    /// Observe mode: the reconciler on a virtual memory, as if provisioning, every gate and
    /// every proxy succeeded; what it would do is logged and shown, nothing is done.
    fn observe_only(&mut self, ctx: &Context) {
        let now = ctx.clock.unix_ms();
        let outlook = self.outlook(ctx, now);
        let facts = Facts {
            assume_success: true,
            ..self.facts(&outlook, now)
        };
        let Step {
            next,
            changes,
            reason,
            plan,
            ..
        } = reconcile(&self.virtual_memory, &facts, &self.policy.rules());
        if next.phase != self.virtual_memory.phase {
            tracing::info!(
                workload = %self.name(), mode = "observe", from = self.virtual_memory.phase.name(), to = next.phase.name(),
                reason = %reason, "would transition"
            );
            self.would_do.push(format!(
                "{}: {} -> {}: {reason}",
                now,
                self.virtual_memory.phase.name(),
                next.phase.name()
            ));
            let keep = self.would_do.len().saturating_sub(20);
            self.would_do.drain(..keep);
        }
        for c in changes {
            tracing::info!(workload = %self.name(), mode = "observe", change = ?c, "would act");
        }
        self.virtual_memory = next;
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

    /// Persists the step's phase. `false` when another controller wrote the phase since this
    /// one read it (it leads now): then nothing of this transition may be done.
    async fn commit(&mut self, ctx: &Context, from: &Phase, step: &Step, now: i64) -> bool {
        let to = &step.next.phase;
        self.journal.record(from, to, &step.reason, now);
        if !self.write_journal(ctx).await {
            tracing::error!(workload = %self.name(), from = from.name(), to = to.name(), "transition not made");
            return false;
        }
        if from != to {
            tracing::info!(
                workload = %self.name(), from = from.name(), to = to.name(), weight = to.weight(), reason = %step.reason,
                "migration transition"
            );
            self.last_reason = step.reason.clone();
        }
        ctx.metrics
            .migration_state
            .with_label_values(&[self.name()])
            .set(to.code());
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

    /// Carries the changes out in order through `proxies` (this tick's answering fleet). A
    /// failure is kept for the next tick: a migration under way rolls back on it.
    async fn execute(
        &mut self,
        ctx: &Context,
        proxies: &Proxies,
        changes: Vec<Change>,
        view: &ShadowView,
    ) {
        let name = self.name().to_string();
        for change in changes {
            let result: Result<(), String> = match &change {
                Change::ResizeShadow { to, force } => {
                    let target = ShadowTarget {
                        instances: to.instances,
                        resources: resources(to.size),
                    };
                    self.shadow
                        .apply(proxies, target, *force)
                        .await
                        .map_err(|e| e.to_string())
                }
                Change::AnnounceShadow { force } => self
                    .shadow
                    .announce(proxies, &view.ready, *force)
                    .await
                    .map_err(|e| e.to_string()),
                Change::SetWeight(w) => proxies
                    .set_weight(&name, *w)
                    .await
                    .map_err(|e| e.to_string()),
                Change::DecommissionPrimary => {
                    match &self.primary {
                        Some(p) => p.stop().await,
                        None => {
                            tracing::info!(workload = %name, "primary is not run by umbra; nothing to decommission")
                        }
                    }
                    Ok(())
                }
                Change::RestorePrimary => match &self.primary {
                    Some(p) => p.ensure_running().await,
                    None => Ok(()),
                },
                Change::Alert { kind, message } => {
                    let sent = ctx
                        .alerter
                        .send(kind, &name, message, ctx.clock.unix_ms())
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
                tracing::error!(workload = %name, change = ?change, error = %e, "change failed");
                self.failure.get_or_insert(e);
            }
        }
    }

    fn publish(&self, ctx: &Context, view: Option<&ShadowView>, plan: Option<ShadowPlan>) {
        let phase = if ctx.mode == Mode::Observe {
            &self.virtual_memory.phase
        } else {
            &self.memory.phase
        };
        ctx.board.set_status(
            self.name(),
            WorkloadStatus {
                migration_state: phase.name().to_string(),
                shadow_weight: self.memory.phase.weight(),
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

/// The context's clock as a `SystemTime` (what instances' start times are).
fn system_time(ctx: &Context) -> std::time::SystemTime {
    let ms = u64::try_from(ctx.clock.unix_ms()).unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}
