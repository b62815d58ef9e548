//! One workload's live state: weight, pools, latency windows and the rollback guard.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};
use config::{WorkloadName, WorkloadSpec};
use policies::{
    GuardEvent, GuardOutcome, GuardState, GuardVerdict, PoolKind, PoolWindow, RollbackReason,
    ShadowWeight, UpstreamLoad, guard_transition, judge, pick_two_choices,
};

use crate::headers::CompiledRules;
use crate::metrics::{Metrics, WorkloadMetrics};
use crate::upstream::{PeerSpec, Upstream, UpstreamRegistry};
use crate::window::LatencyWindow;

/// The members of one pool.
pub struct Pool {
    members: Vec<Arc<Upstream>>,
}

impl Pool {
    /// A pool of the registry's upstreams at `addrs`, spoken to as `spec`.
    pub fn new(
        addrs: &[std::net::SocketAddr],
        registry: &UpstreamRegistry,
        spec: &PeerSpec,
    ) -> Self {
        Pool {
            members: addrs.iter().map(|a| registry.get(*a, spec)).collect(),
        }
    }

    /// Its members.
    pub fn members(&self) -> &[Arc<Upstream>] {
        &self.members
    }

    /// Whether any member takes traffic at `now_ms`.
    pub fn has_healthy(&self, now_ms: u64) -> bool {
        self.members.iter().any(|u| u.healthy(now_ms))
    }

    /// A healthy member by two random choices over peak-EWMA load.
    pub fn pick(&self, now_ms: u64, draws: (u32, u32)) -> Option<&Arc<Upstream>> {
        let i = pick_two_choices(self.members.len(), |i| self.members[i].load(now_ms), draws)?;
        self.members.get(i)
    }

    /// Like [`Pool::pick`], passing over `avoid` (where a retried request's first attempt
    /// failed): `None` when no other member is healthy.
    pub fn pick_avoiding(
        &self,
        now_ms: u64,
        draws: (u32, u32),
        avoid: &Upstream,
    ) -> Option<&Arc<Upstream>> {
        let load = |i: usize| {
            let u = &self.members[i];
            let mut load = u.load(now_ms);
            load.healthy &= !std::ptr::eq(Arc::as_ptr(u), avoid);
            load
        };
        let i = pick_two_choices(self.members.len(), load, draws)?;
        self.members.get(i)
    }

    /// (requests in flight, healthy members) for admission.
    pub fn occupancy(&self, now_ms: u64) -> (u64, u64) {
        self.members
            .iter()
            .filter(|u| u.healthy(now_ms))
            .fold((0, 0), |(f, n), u| (f + u64::from(u.in_flight()), n + 1))
    }

    /// Admission's occupancy and the balancer's pick for one request, from one read of each
    /// member when the pool is small enough to copy (the common case): the same snapshot
    /// answers both, and each read is three atomic loads on the member's own cache line.
    pub fn survey(&self, now_ms: u64, draws: (u32, u32)) -> Survey<'_> {
        let n = self.members.len();
        if n > SNAPSHOT {
            let (in_flight, healthy) = self.occupancy(now_ms);
            return Survey {
                in_flight,
                healthy,
                pick: self.pick(now_ms, draws),
            };
        }
        let mut loads = [UpstreamLoad::default(); SNAPSHOT];
        let (mut in_flight, mut healthy) = (0, 0);
        for (slot, u) in loads.iter_mut().zip(&self.members) {
            *slot = u.load(now_ms);
            if slot.healthy {
                in_flight += u64::from(slot.in_flight);
                healthy += 1;
            }
        }
        let pick = pick_two_choices(n, |i| loads[i], draws).and_then(|i| self.members.get(i));
        Survey {
            in_flight,
            healthy,
            pick,
        }
    }
}

/// Pools up to this size are read once per request into a copy on the stack.
const SNAPSHOT: usize = 8;

/// What one request reads of a pool: see [`Pool::survey`].
pub struct Survey<'a> {
    /// Requests in flight to its healthy members.
    pub in_flight: u64,
    /// Its healthy members.
    pub healthy: u64,
    /// The member two random choices picked; `None` when none is healthy.
    pub pick: Option<&'a Arc<Upstream>>,
}

/// Refusal to change the weight.
#[derive(Debug, thiserror::Error)]
#[error(
    "workload {workload} was rolled back ({reason}); raising its weight is refused for another {remaining:?}"
)]
pub struct CooldownError {
    /// The workload.
    pub workload: String,
    /// Why it was rolled back.
    pub reason: RollbackReason,
    /// Cooldown left.
    pub remaining: Duration,
}

/// The most recent rollback, kept after the workload returns to steady.
#[derive(Clone, Copy, Debug)]
pub struct LastRollback {
    /// Why.
    pub reason: RollbackReason,
    /// When (wall clock, for display).
    pub at: SystemTime,
}

struct GuardCell {
    state: GuardState,
    last: Option<LastRollback>,
}

/// A workload as the proxy runs it. Shared by every route table version that contains it, so
/// a reload keeps its weight, rollback state and windows.
pub struct Workload {
    name: WorkloadName,
    spec: ArcSwap<WorkloadSpec>,
    edge: ArcSwap<EdgeRules>,
    weight_ppm: AtomicU32,
    /// Mirrors `GuardState::RolledBack` for readers that must not take the guard lock (the
    /// access log on every request).
    rolled_back: AtomicBool,
    pools: [ArcSwap<Pool>; 2],
    windows: [LatencyWindow; 2],
    guard: Mutex<GuardCell>,
    metrics: WorkloadMetrics,
}

/// What the request path applies on the way to and from a workload's upstreams.
#[derive(Debug, Default)]
pub struct EdgeRules {
    /// Header changes towards the upstream.
    pub request: CompiledRules,
    /// Header changes towards the client.
    pub response: CompiledRules,
    /// Answer plain-HTTP requests with a redirect to https.
    pub redirect_https: bool,
    /// How upstreams are spoken to.
    pub peer: PeerSpec,
}

impl EdgeRules {
    fn of(spec: &WorkloadSpec) -> Self {
        EdgeRules {
            request: CompiledRules::compile(&spec.request_headers),
            response: CompiledRules::compile(&spec.response_headers),
            redirect_https: spec.redirect_https,
            peer: PeerSpec::of(spec),
        }
    }
}

impl Workload {
    /// Live state for a newly configured workload.
    pub fn new(spec: WorkloadSpec, registry: &UpstreamRegistry, metrics: &Metrics) -> Self {
        let edge = EdgeRules::of(&spec);
        let w = Workload {
            name: spec.name.clone(),
            weight_ppm: AtomicU32::new(spec.shadow_weight.to_ppm()),
            rolled_back: AtomicBool::new(false),
            pools: [
                ArcSwap::from_pointee(Pool::new(&spec.primary, registry, &edge.peer)),
                ArcSwap::from_pointee(Pool::new(&spec.shadow, registry, &edge.peer)),
            ],
            edge: ArcSwap::from_pointee(edge),
            windows: [
                LatencyWindow::new(spec.guard.window),
                LatencyWindow::new(spec.guard.window),
            ],
            guard: Mutex::new(GuardCell {
                state: GuardState::Steady,
                last: None,
            }),
            metrics: metrics.workload(spec.name.as_str()),
            spec: ArcSwap::from_pointee(spec),
        };
        w.metrics.set_shadow_weight(w.shadow_weight().get());
        w
    }

    /// Applies a reloaded spec. File values win only where the file changed them, so a reload
    /// does not undo what the controller did through the admin API (weight, shadow members).
    pub fn update(
        &self,
        new: WorkloadSpec,
        registry: &UpstreamRegistry,
        registry_changed: bool,
        now_ms: u64,
    ) {
        let old = self.spec.load_full();
        let edge = EdgeRules::of(&new);
        let peer = edge.peer.clone();
        // A new protocol makes new upstream identities, like new timeouts do.
        let registry_changed = registry_changed || peer != self.edge.load().peer;
        self.edge.store(Arc::new(edge));
        if registry_changed || new.primary != old.primary {
            self.pools[0].store(Arc::new(Pool::new(&new.primary, registry, &peer)));
        }
        if new.shadow != old.shadow {
            self.pools[1].store(Arc::new(Pool::new(&new.shadow, registry, &peer)));
            self.windows[1].clear();
        } else if registry_changed {
            let addrs: Vec<_> = self
                .pool(PoolKind::Shadow)
                .members()
                .iter()
                .map(|u| u.addr())
                .collect();
            self.pools[1].store(Arc::new(Pool::new(&addrs, registry, &peer)));
        }
        if new.guard.window != old.guard.window {
            self.windows[0].resize(new.guard.window);
            self.windows[1].resize(new.guard.window);
        }
        let file_weight_changed = new.shadow_weight != old.shadow_weight;
        let weight = new.shadow_weight;
        self.spec.store(Arc::new(new));
        if file_weight_changed && let Err(e) = self.set_weight(weight, now_ms, "reload") {
            tracing::warn!(workload = %self.name, error = %e, "reload did not raise the shadow weight");
        }
    }

    /// Its name.
    pub fn name(&self) -> &WorkloadName {
        &self.name
    }

    /// The current spec.
    pub fn spec(&self) -> Guard<Arc<WorkloadSpec>> {
        self.spec.load()
    }

    /// Header rules, redirect and upstream protocol.
    #[inline]
    pub fn edge(&self) -> Guard<Arc<EdgeRules>> {
        self.edge.load()
    }

    /// Whether the guard's rollback cooldown is running (lock-free; may lag the guard by one
    /// evaluation).
    #[inline]
    pub fn is_rolled_back(&self) -> bool {
        self.rolled_back.load(Relaxed)
    }

    /// The current shadow weight in parts per million (what the request path reads).
    #[inline]
    pub fn weight_ppm(&self) -> u32 {
        self.weight_ppm.load(Relaxed)
    }

    /// The current shadow weight.
    pub fn shadow_weight(&self) -> ShadowWeight {
        ShadowWeight::from_ppm(self.weight_ppm())
    }

    /// The current members of a pool.
    #[inline]
    pub fn pool(&self, kind: PoolKind) -> Guard<Arc<Pool>> {
        self.pools[kind.index()].load()
    }

    /// Its metric handles.
    pub fn metrics(&self) -> &WorkloadMetrics {
        &self.metrics
    }

    /// Records a finished request of `pool`.
    #[inline]
    pub fn record(&self, pool: PoolKind, now_ms: u64, latency: Duration, error: bool) {
        self.windows[pool.index()].record(now_ms, latency, error);
    }

    /// Records a failed attempt that produced no latency (connect refused, timed out).
    pub fn record_failed_attempt(&self, pool: PoolKind, now_ms: u64) {
        self.windows[pool.index()].record_error(now_ms);
    }

    /// What a pool did over the guard window.
    pub fn window(&self, pool: PoolKind, now_ms: u64) -> PoolWindow {
        self.windows[pool.index()].snapshot(now_ms)
    }

    fn guard_cell(&self) -> MutexGuard<'_, GuardCell> {
        // The cell holds plain data; a panic elsewhere cannot leave it half-updated.
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Guard state and last rollback.
    pub fn guard_state(&self) -> (GuardState, Option<LastRollback>) {
        let cell = self.guard_cell();
        (cell.state, cell.last)
    }

    /// Sets the weight unless a rollback cooldown forbids raising it. `source` is logged.
    pub fn set_weight(
        &self,
        w: ShadowWeight,
        now_ms: u64,
        source: &str,
    ) -> Result<(), CooldownError> {
        let cooldown = self.spec.load().guard.cooldown;
        let mut cell = self.guard_cell();
        let (to, outcome) = guard_transition(
            cell.state,
            GuardEvent::SetWeight(w),
            now_ms,
            millis(cooldown),
        );
        cell.state = to;
        self.rolled_back
            .store(matches!(to, GuardState::RolledBack { .. }), Relaxed);
        match outcome {
            GuardOutcome::WeightRefused {
                remaining_ms,
                reason,
            } => Err(CooldownError {
                workload: self.name.to_string(),
                reason,
                remaining: Duration::from_millis(remaining_ms),
            }),
            _ => {
                let previous = self.shadow_weight();
                if previous.is_zero() && !w.is_zero() {
                    // Samples from before the shadow was (re)enabled must not judge it now.
                    self.windows[1].clear();
                }
                self.weight_ppm.store(w.to_ppm(), Relaxed);
                self.metrics.set_shadow_weight(w.get());
                tracing::info!(
                    workload = %self.name, from = %previous, to = %w, source,
                    state = to.as_str(), "shadow weight set"
                );
                Ok(())
            }
        }
    }

    /// One guard evaluation: judges the shadow window and rolls back on a bad verdict.
    /// Returns the reason when it rolled back.
    pub fn evaluate_guard(&self, now_ms: u64) -> Option<RollbackReason> {
        if self.weight_ppm() == 0 {
            return None;
        }
        let spec = self.spec.load();
        let shadow = self.window(PoolKind::Shadow, now_ms);
        let primary = self.window(PoolKind::Primary, now_ms);
        let verdict = judge(&shadow, &primary, &spec.guard.thresholds);
        if !matches!(verdict, GuardVerdict::Rollback(_)) {
            return None;
        }
        // A rollback moves traffic to primary; with no healthy primary member (decommissioned
        // after a migration, or down) it would turn a degraded shadow into an outage. The
        // shadow keeps its traffic and the controller, which sees the same errors, scales it.
        if !self.pool(PoolKind::Primary).has_healthy(now_ms) {
            tracing::debug!(workload = %self.name, "guard would roll back, but primary has no healthy member; holding");
            return None;
        }
        let mut cell = self.guard_cell();
        let (to, outcome) = guard_transition(
            cell.state,
            GuardEvent::Verdict(verdict),
            now_ms,
            millis(spec.guard.cooldown),
        );
        cell.state = to;
        self.rolled_back
            .store(matches!(to, GuardState::RolledBack { .. }), Relaxed);
        let GuardOutcome::RollBack(reason) = outcome else {
            return None;
        };
        // Stop new shadow traffic first; everything else is bookkeeping.
        let from = self.shadow_weight();
        self.weight_ppm.store(0, Relaxed);
        cell.last = Some(LastRollback {
            reason,
            at: SystemTime::now(),
        });
        drop(cell);
        self.metrics.set_shadow_weight(0.0);
        tracing::warn!(
            workload = %self.name,
            reason = reason.label(),
            detail = %reason,
            from = %from,
            shadow_requests = shadow.requests,
            shadow_errors = shadow.errors,
            cooldown = ?spec.guard.cooldown,
            "rollback: shadow weight set to 0"
        );
        Some(reason)
    }

    /// Resumes a rollback cooldown handed over by the process this one replaced (binary
    /// upgrade): weight 0, raising it refused until `until_ms`.
    pub fn restore_cooldown(
        &self,
        reason: RollbackReason,
        at: SystemTime,
        until_ms: u64,
        now_ms: u64,
    ) {
        let mut cell = self.guard_cell();
        cell.state = GuardState::RolledBack {
            reason,
            at_ms: now_ms,
            until_ms,
        };
        cell.last = Some(LastRollback { reason, at });
        self.weight_ppm.store(0, Relaxed);
        self.rolled_back.store(true, Relaxed);
        drop(cell);
        self.metrics.set_shadow_weight(0.0);
        tracing::info!(workload = %self.name, reason = reason.label(), cooldown_left_ms = until_ms.saturating_sub(now_ms), "rollback cooldown handed over");
    }

    /// Replaces the shadow pool's members (the controller announcing instances). Returns the
    /// previous members.
    pub fn replace_shadow(&self, pool: Pool) -> Arc<Pool> {
        let old = self.pools[1].swap(Arc::new(pool));
        self.windows[1].clear();
        tracing::info!(
            workload = %self.name,
            members = self.pool(PoolKind::Shadow).members().len(),
            "shadow pool replaced"
        );
        old
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_retry_passes_over_the_upstream_that_failed_whatever_the_draws() {
        let s = Duration::from_secs(1);
        let registry = UpstreamRegistry::new(config::Timeouts {
            connect: s,
            read: s,
            write: s,
            idle: s,
        });
        let addrs: Vec<std::net::SocketAddr> = (1..=3)
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let pool = Pool::new(&addrs, &registry, &PeerSpec::default());
        let failed = Arc::clone(&pool.members()[1]);
        for a in 0..6 {
            for b in 0..6 {
                let picked = pool.pick_avoiding(0, (a, b), &failed).expect("two others");
                assert!(!Arc::ptr_eq(picked, &failed), "draws ({a}, {b})");
            }
        }
        let alone = Pool::new(&addrs[1..2], &registry, &PeerSpec::default());
        assert!(alone.pick_avoiding(0, (0, 0), &failed).is_none());
        assert!(alone.pick(0, (0, 0)).is_some());
    }
}
