//! One workload's shadow pool: keeps it at its target through the provisioner, probes every
//! instance, replaces the ones that stay unhealthy, and tells the proxies who is ready.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::proxies::Proxies;
use provision::{Instance, InstanceTemplate, ProvisionError, Provisioner, Resources, ShadowTarget};

use super::probe;
use super::readiness::{Readiness, Verdict};

/// What the shadow pool looks like now.
#[derive(Clone, Debug, Default)]
pub struct ShadowView {
    /// Every instance the provisioner reports.
    pub instances: Vec<Instance>,
    /// Addresses of instances that passed their probe.
    pub ready: Vec<SocketAddr>,
    /// How many ready instances have at least `full` resources.
    pub ready_full: u32,
}

/// Manages one workload's shadow pool.
pub struct ShadowManager {
    workload: String,
    template: InstanceTemplate,
    provisioner: Arc<dyn Provisioner>,
    startup_grace: Duration,
    applied: Option<ShadowTarget>,
    readiness: Readiness,
    announced: Option<Vec<SocketAddr>>,
    /// The instances a scale left running, since this tick's [`Self::observe`]: an instance
    /// observed ready and then stopped by a scale-down in the same tick must not be announced
    /// (the proxies would send requests to a closed port, and their guard rolls back on the
    /// errors).
    running_after_scale: Option<Vec<SocketAddr>>,
}

impl ShadowManager {
    /// A manager; instances younger than `startup_grace` are never replaced for being unready.
    pub fn new(
        template: InstanceTemplate,
        provisioner: Arc<dyn Provisioner>,
        startup_grace: Duration,
    ) -> Self {
        ShadowManager {
            workload: template.workload.clone(),
            template,
            provisioner,
            startup_grace,
            applied: None,
            readiness: Readiness::default(),
            announced: None,
            running_after_scale: None,
        }
    }

    /// The target last applied.
    pub fn applied(&self) -> Option<ShadowTarget> {
        self.applied
    }

    /// Whether `ready` is not what the proxies were last told.
    pub fn ready_changed(&self, ready: &[SocketAddr]) -> bool {
        self.announced.as_deref() != Some(ready)
    }

    /// Scales to `target` unless it is already the applied target. `force` re-applies anyway
    /// (after a restart, or to repair a pool that lost an instance).
    ///
    /// A scale-down first withdraws the instances about to stop from every proxy: a request
    /// must not be sent to an instance that is exiting (it would fail even after a retry when
    /// two of them stop at once).
    pub async fn apply(
        &mut self,
        proxies: &Proxies,
        target: ShadowTarget,
        force: bool,
    ) -> Result<(), ProvisionError> {
        if !force && self.applied == Some(target) {
            return Ok(());
        }
        self.drain_before(proxies, target.instances).await;
        let instances = self.provisioner.scale(&self.template, target).await?;
        tracing::info!(
            workload = %self.workload,
            instances = target.instances,
            cpu_millis = target.resources.cpu_millis,
            memory_mib = target.resources.memory_mib,
            now = instances.len(),
            provisioner = self.provisioner.name(),
            "shadow pool scaled"
        );
        self.applied = Some(target);
        self.running_after_scale = Some(instances.iter().map(|i| i.addr).collect());
        Ok(())
    }

    /// Announces the members that survive a scale-down to `keep` instances. Both local
    /// provisioners stop the newest instances first and keep the oldest; Kubernetes drains
    /// terminating pods from EndpointSlices itself.
    async fn drain_before(&mut self, proxies: &Proxies, keep: u32) {
        let Some(announced) = self.announced.clone() else {
            return;
        };
        let Ok(mut current) = self.provisioner.instances(&self.workload).await else {
            return;
        };
        if current.len() <= keep as usize {
            return;
        }
        current.sort_by_key(|i| i.started_at);
        let survivors: Vec<SocketAddr> =
            current.iter().take(keep as usize).map(|i| i.addr).collect();
        let remaining: Vec<SocketAddr> = announced
            .iter()
            .copied()
            .filter(|a| survivors.contains(a))
            .collect();
        if remaining.len() < announced.len() {
            if let Err(e) = self.announce(proxies, &remaining, false).await {
                tracing::warn!(workload = %self.workload, error = %e, "withdrawing stopping instances from the proxies failed");
            }
        }
    }

    /// Probes every instance; replaces those that keep failing after their start-up grace
    /// (their age taken at `now`). A serving instance that misses one probe stays ready (see
    /// `readiness`).
    pub async fn observe(
        &mut self,
        full: Resources,
        now: SystemTime,
    ) -> Result<ShadowView, ProvisionError> {
        self.running_after_scale = None;
        let instances = self.provisioner.instances(&self.workload).await?;
        let ids: Vec<&str> = instances.iter().map(|i| i.id.as_str()).collect();
        self.readiness.retain(&ids);
        let mut view = ShadowView::default();
        for inst in &instances {
            let ok = probe::ready(
                inst.addr,
                self.template.health_path.as_deref(),
                Duration::from_millis(500),
            )
            .await;
            match self.readiness.probed(&inst.id, ok) {
                Verdict::Ready => {
                    view.ready.push(inst.addr);
                    if inst.resources.cpu_millis >= full.cpu_millis
                        && inst.resources.memory_mib >= full.memory_mib
                    {
                        view.ready_full += 1;
                    }
                }
                Verdict::Unready => {}
                Verdict::Replace => {
                    let age = now.duration_since(inst.started_at).unwrap_or_default();
                    if age < self.startup_grace {
                        continue;
                    }
                    tracing::warn!(workload = %self.workload, instance = %inst.id, addr = %inst.addr, "shadow instance unhealthy; replacing");
                    if let Err(e) = self.provisioner.replace(&self.template, &inst.id).await {
                        tracing::error!(workload = %self.workload, instance = %inst.id, error = %e, "replacing a shadow instance failed");
                    }
                }
            }
        }
        view.ready.sort();
        view.instances = instances;
        Ok(view)
    }

    /// Whether a proxy's shadow members differ from those last announced: a restarted proxy
    /// comes back with its config's (none, for a pool the controller fills), and would keep a
    /// weight on a shadow it no longer knows.
    pub fn proxies_differ(&self, reports: &[wire::Workload]) -> bool {
        self.announced
            .as_deref()
            .is_some_and(|announced| members_differ(announced, reports))
    }

    /// Tells every proxy the ready members, when they changed (or when `force`); members a
    /// scale stopped since they were observed are left out.
    pub async fn announce(
        &mut self,
        proxies: &Proxies,
        ready: &[SocketAddr],
        force: bool,
    ) -> Result<(), crate::proxies::ProxyError> {
        let ready = &still_running(ready, self.running_after_scale.as_deref());
        if !force && self.announced.as_deref() == Some(ready.as_slice()) {
            return Ok(());
        }
        proxies.set_shadow_pool(&self.workload, ready).await?;
        tracing::info!(workload = %self.workload, members = ?ready, "shadow pool announced to proxies");
        self.announced = Some(ready.to_vec());
        Ok(())
    }

    /// Stops every instance (shutdown of `umbra up`).
    pub async fn stop_all(&self) -> Result<(), ProvisionError> {
        self.provisioner.stop_all(&self.workload).await
    }
}

/// The `ready` members a scale left running (all of them when no scale ran).
fn still_running(ready: &[SocketAddr], running: Option<&[SocketAddr]>) -> Vec<SocketAddr> {
    ready
        .iter()
        .copied()
        .filter(|a| running.is_none_or(|r| r.contains(a)))
        .collect()
}

/// Whether any report's shadow pool is not exactly `announced` (order aside).
fn members_differ(announced: &[SocketAddr], reports: &[wire::Workload]) -> bool {
    let mut want = announced.to_vec();
    want.sort();
    reports.iter().any(|r| {
        let mut have: Vec<SocketAddr> = r
            .shadow
            .upstreams
            .iter()
            .filter_map(|u| u.address.parse().ok())
            .collect();
        have.sort();
        have != want
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use policies::Priority;

    fn report(shadow: &[&str]) -> wire::Workload {
        let pool = |members: &[&str]| wire::Pool {
            upstreams: members
                .iter()
                .map(|a| wire::Upstream {
                    address: a.to_string(),
                    healthy: true,
                    in_flight: 0,
                })
                .collect(),
            window_requests: 0,
            p99_ms: None,
            error_rate: 0.0,
        };
        wire::Workload {
            name: "api".into(),
            shadow_weight: 0.3,
            state: wire::GuardStatus::Steady,
            priority: Priority::Normal,
            stateless: true,
            hosts: Vec::new(),
            path_prefix: "/".into(),
            last_rollback: None,
            cooldown_remaining_ms: 0,
            primary: pool(&["127.0.0.1:1"]),
            shadow: pool(shadow),
        }
    }

    #[test]
    fn a_proxy_that_lost_or_reordered_its_members_is_told_again_only_when_they_differ() {
        let a: SocketAddr = "127.0.0.1:7001".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:7002".parse().expect("addr");
        let same = report(&["127.0.0.1:7002", "127.0.0.1:7001"]);
        assert!(!members_differ(&[a, b], std::slice::from_ref(&same)));
        // Restarted: its config had no shadow members.
        let restarted = report(&[]);
        assert!(members_differ(&[a, b], &[same.clone(), restarted]));
        assert!(members_differ(&[a], &[same]));
        assert!(!members_differ(&[], &[report(&[])]));
    }

    /// Seen in `umbra demo`: a tick observed a new instance ready, shrank the pool (stopping
    /// that newest instance), then announced what it had observed; the proxies sent requests
    /// to the closed port and their guard rolled the shadow back.
    #[test]
    fn an_instance_a_scale_stopped_in_the_same_tick_is_not_announced() {
        let [a, b, c]: [SocketAddr; 3] = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
            .map(|s| s.parse().expect("addr"));
        assert_eq!(still_running(&[a, b, c], Some(&[a, b])), vec![a, b]);
        // No scale this tick: what was observed ready is announced.
        assert_eq!(still_running(&[a, b, c], None), vec![a, b, c]);
        // A scale-up this tick: instances not yet ready stay out until observed.
        assert_eq!(still_running(&[a], Some(&[a, b, c])), vec![a]);
    }
}
