//! The migration orchestrator: each tick reads the proxy fleet once, then, for every workload at
//! once, gathers the facts (forecast, observed demand, shadow instances, what the proxies
//! report), asks the pure reconciler in `policies` what to do, persists the new phase, and
//! carries the changes out.

mod fleet;
mod journal;
mod phases;
mod primary;
pub mod probe;
mod readiness;
mod shadow;
mod workload;

use std::sync::Arc;
use std::time::Duration;

use config::{Mode, WorkloadPolicy, WorkloadSpec};
use futures::StreamExt;
use policies::{Candidate, rank_workloads};
use tokio::sync::watch;

use crate::alerts::Alerter;
use crate::board::Board;
use crate::clock::Clock;
use crate::metrics::ControllerMetrics;
use crate::proxies::Proxies;
use crate::store::Store;
use provision::{InstanceTemplate, Provisioner};

pub use fleet::Fleet;
pub use phases::{PhaseStore, PhaseStoreError};
pub use primary::PrimarySupervisor;
pub use shadow::{ShadowManager, ShadowView};
pub use workload::WorkloadRuntime;

/// How many workloads' ticks run at once (their provisioner and probe calls overlap; one slow
/// provisioner call holds up only its own workload).
const CONCURRENT_TICKS: usize = 16;

/// What every workload's tick shares.
pub struct Context {
    /// State.
    pub store: Arc<Store>,
    /// Where migration phases are kept: `store` itself, or ConfigMaps under leader election.
    pub phases: Arc<dyn PhaseStore>,
    /// The proxies.
    pub proxies: Proxies,
    /// Latest observations and forecasts; where status is published.
    pub board: Arc<Board>,
    /// Metrics.
    pub metrics: Arc<ControllerMetrics>,
    /// Alerts.
    pub alerter: Alerter,
    /// Act or observe.
    pub mode: Mode,
    /// Where the time is read (the wall clock but in tests).
    pub clock: Arc<dyn Clock>,
    /// Tick period.
    pub tick: Duration,
    /// Observed demand older than this is ignored.
    pub stale_after: Duration,
    /// How many workloads may be migrating at once.
    pub max_concurrent_migrations: usize,
}

/// The orchestrator over every configured workload.
pub struct Orchestrator {
    ctx: Context,
    workloads: Vec<WorkloadRuntime>,
}

/// The instance template of a workload, with `{umbra}` resolved to this binary.
pub fn template(spec: &WorkloadSpec) -> InstanceTemplate {
    let umbra = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "umbra".into());
    InstanceTemplate {
        workload: spec.name.to_string(),
        command: spec
            .instance
            .command
            .iter()
            .map(|a| a.replace("{umbra}", &umbra))
            .collect(),
        image: spec.instance.image.clone(),
        container_port: spec.instance.container_port,
        health_path: spec.instance.health_path.clone(),
        env: spec.instance.env.clone(),
    }
}

impl Orchestrator {
    /// An orchestrator for `workloads` (spec, policy, primary supervisor if managed).
    pub fn new(
        ctx: Context,
        provisioner: Arc<dyn Provisioner>,
        workloads: Vec<(
            WorkloadSpec,
            Arc<WorkloadPolicy>,
            Option<Arc<PrimarySupervisor>>,
        )>,
    ) -> Self {
        let workloads = workloads
            .into_iter()
            .map(|(spec, policy, primary)| {
                let grace = policy.startup * 3;
                let shadow = ShadowManager::new(template(&spec), Arc::clone(&provisioner), grace);
                WorkloadRuntime::new(spec, policy, shadow, primary)
            })
            .collect();
        Orchestrator { ctx, workloads }
    }

    /// Restores every workload's phase from the store and makes the world match it: resume
    /// when the shadow is still ready, otherwise roll back. Like a tick, it reads the fleet
    /// once and changes only the proxies that answered (a silent one is repaired from its own
    /// report once it answers), and recovers workloads side by side: one hung proxy used to
    /// cost every workload its full call timeout, one after another.
    pub async fn recover(&mut self) {
        let fleet = self.read_fleet().await;
        let ctx = &self.ctx;
        let answering = fleet.answering();
        futures::stream::iter(self.workloads.iter_mut())
            .for_each_concurrent(CONCURRENT_TICKS, |w| async move {
                w.recover(ctx, answering).await;
            })
            .await;
    }

    /// One pass over every workload. Workloads that want to start a migration are ranked
    /// (stateless first, then higher demand, then priority); only as many start as there are
    /// free migration slots, and stateful ones only if their policy allows it.
    pub async fn tick(&mut self) {
        let started = std::time::Instant::now();
        let candidates: Vec<(usize, Candidate)> = self
            .workloads
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.candidate(&self.ctx).map(|c| (i, c)))
            .collect();
        let ranked = rank_workloads(
            &candidates
                .iter()
                .map(|(_, c)| c.clone())
                .collect::<Vec<_>>(),
        );
        let busy = self.workloads.iter().filter(|w| w.migrating()).count();
        let free = self.ctx.max_concurrent_migrations.saturating_sub(busy);
        // Only the ranked few may start; a workload whose forecast turns into a shortage between
        // the ranking and its own tick waits for the next ranking.
        let mut holds: Vec<Option<String>> =
            vec![
                Some("waiting for the next ranking of migrations".to_string());
                self.workloads.len()
            ];
        for (i, c) in &candidates {
            holds[*i] = Some(if c.stateless || c.allow_stateful {
                "waiting: other workloads ranked first hold the migration slots".to_string()
            } else {
                "stateful: its policy does not allow migrating it (migration.allow_stateful)"
                    .to_string()
            });
        }
        for &j in ranked.iter().take(free) {
            holds[candidates[j].0] = None;
        }
        let fleet = self.read_fleet().await;
        let ctx = &self.ctx;
        let fleet = &fleet;
        // Workloads a proxy's guard has just rolled back go first: at 1,000 workloads the last
        // one's turn came a quarter of a second into the tick.
        let mut turns: Vec<_> = self.workloads.iter_mut().zip(holds).collect();
        turns.sort_by_key(|(w, _)| !fleet.rolled_back(w.name()));
        futures::stream::iter(turns)
            .for_each_concurrent(CONCURRENT_TICKS, |(w, hold)| async move {
                w.tick(ctx, hold.as_deref(), fleet).await;
            })
            .await;
        ctx.metrics
            .tick_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Every proxy read once, each given most of a tick (what a tick and a recovery act on).
    async fn read_fleet(&self) -> Fleet {
        Fleet::read(
            &self.ctx.proxies,
            read_timeout(self.ctx.tick),
            &self.ctx.metrics,
        )
        .await
    }

    /// Ticks until shutdown.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Self {
        self.recover().await;
        let mut interval = tokio::time::interval(self.ctx.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => self.tick().await,
                _ = shutdown.changed() => return self,
            }
        }
    }

    /// Acts only while `leading` says so (leader election): each time this replica becomes
    /// the leader it recovers every workload from the stored phases first, which re-applies
    /// the proxies' weights to what those phases say; when it stops leading, the tick or
    /// recovery under way is dropped at once and nothing more is done until it leads again.
    pub async fn run_while_leader(
        mut self,
        mut leading: watch::Receiver<bool>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Self {
        loop {
            while !*leading.borrow_and_update() {
                tokio::select! {
                    changed = leading.changed() => if changed.is_err() { return self },
                    _ = shutdown.changed() => return self,
                }
            }
            tracing::info!(
                phases = self.ctx.phases.kind(),
                "leading: recovering every workload from its stored phase"
            );
            let mut interval = tokio::time::interval(self.ctx.tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let term = async {
                self.recover().await;
                loop {
                    interval.tick().await;
                    self.tick().await;
                }
            };
            tokio::select! {
                () = term => {}
                _ = stepped_down(&mut leading) => {
                    tracing::warn!("no longer leading: stopped acting");
                }
                _ = shutdown.changed() => return self,
            }
        }
    }

    /// Stops every shadow and primary instance (used when `umbra up` exits).
    pub async fn stop_instances(&self) {
        for w in &self.workloads {
            w.stop_instances().await;
        }
    }
}

/// How long a proxy has to report its state each tick: most of a tick (a proxy that accepts
/// and never answers must not hold the tick past its period), within 0.2 to 3 s.
fn read_timeout(tick: Duration) -> Duration {
    tick.mul_f64(0.8)
        .clamp(Duration::from_millis(200), Duration::from_secs(3))
}

/// Resolves once `leading` turns false (or its sender is gone).
async fn stepped_down(leading: &mut watch::Receiver<bool>) {
    while *leading.borrow_and_update() {
        if leading.changed().await.is_err() {
            return;
        }
    }
}
