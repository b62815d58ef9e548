//! Prometheus metrics with fixed names; label handles are resolved once, off the request path.

use std::sync::OnceLock;

use policies::{PoolKind, Priority};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the proxy exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    shadow_weight: GaugeVec,
    rollbacks: IntCounterVec,
    upstream_healthy: IntGaugeVec,
    shed: IntCounterVec,
    reloads: IntCounterVec,
    unrouted: IntCounter,
    health_check_errors: IntCounter,
}

/// Latency buckets from 0.5 ms to 30 s: sidecar hops are sub-millisecond, timeouts are seconds.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "umbra_requests_total",
                "Requests answered, by workload, pool and status code.",
            ),
            &["workload", "pool", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "umbra_request_duration_seconds",
                "Time from request arrival to the end of the response, by workload and pool.",
            )
            .buckets(BUCKETS.to_vec()),
            &["workload", "pool"],
        )?;
        let shadow_weight = GaugeVec::new(
            Opts::new(
                "umbra_shadow_weight",
                "Share of requests routed to the shadow pool.",
            ),
            &["workload"],
        )?;
        let rollbacks = IntCounterVec::new(
            Opts::new(
                "umbra_rollbacks_total",
                "Automatic shadow rollbacks, by reason.",
            ),
            &["workload", "reason"],
        )?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "umbra_upstream_healthy",
                "1 when the upstream takes traffic, 0 when not.",
            ),
            &["workload", "pool", "upstream"],
        )?;
        let shed = IntCounterVec::new(
            Opts::new(
                "umbra_shed_requests_total",
                "Requests refused with 503 under overload.",
            ),
            &["workload", "priority"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "umbra_config_reloads_total",
                "Config reload attempts, by result.",
            ),
            &["result"],
        )?;
        let unrouted = IntCounter::new(
            "umbra_unrouted_requests_total",
            "Requests that matched no workload (answered 404).",
        )?;
        let health_check_errors = IntCounter::new(
            "umbra_health_check_failures_total",
            "Active health checks that failed.",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(shadow_weight.clone()))?;
        registry.register(Box::new(rollbacks.clone()))?;
        registry.register(Box::new(upstream_healthy.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(unrouted.clone()))?;
        registry.register(Box::new(health_check_errors.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            duration,
            shadow_weight,
            rollbacks,
            upstream_healthy,
            shed,
            reloads,
            unrouted,
            health_check_errors,
        })
    }

    /// Handles for one workload's series.
    pub fn workload(&self, name: &str) -> WorkloadMetrics {
        let pool = |kind: PoolKind| PoolMetrics {
            requests: self.requests.clone(),
            workload: name.to_string(),
            pool: kind,
            codes: (0..=CODES).map(|_| OnceLock::new()).collect(),
            duration: self.duration.with_label_values(&[name, kind.as_str()]),
        };
        WorkloadMetrics {
            name: name.to_string(),
            pools: [pool(PoolKind::Primary), pool(PoolKind::Shadow)],
            shadow_weight: self.shadow_weight.with_label_values(&[name]),
            shed: Priority::ALL.map(|p| self.shed.with_label_values(&[name, p.as_str()])),
        }
    }

    /// Counts a rollback.
    pub fn rollback(&self, workload: &str, reason: &str) {
        self.rollbacks.with_label_values(&[workload, reason]).inc();
    }

    /// Sets the health gauge of one pool member.
    pub fn set_upstream_healthy(
        &self,
        workload: &str,
        pool: PoolKind,
        upstream: &str,
        healthy: bool,
    ) {
        self.upstream_healthy
            .with_label_values(&[workload, pool.as_str(), upstream])
            .set(i64::from(healthy));
    }

    /// Drops the health gauge of a member that left its pool.
    pub fn forget_upstream(&self, workload: &str, pool: PoolKind, upstream: &str) {
        // Absent label sets are fine: the member may never have been checked.
        let _absent =
            self.upstream_healthy
                .remove_label_values(&[workload, pool.as_str(), upstream]);
    }

    /// Counts a reload attempt.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }

    /// Counts a request that matched no workload.
    pub fn unrouted(&self) {
        self.unrouted.inc();
    }

    /// Counts a failed health check.
    pub fn health_check_failed(&self) {
        self.health_check_errors.inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// Status codes 100..=599 get a pre-resolved counter each; anything else shares "other".
const FIRST_CODE: u16 = 100;
const CODES: usize = 500;

/// One workload's handles.
pub struct WorkloadMetrics {
    name: String,
    pools: [PoolMetrics; 2],
    shadow_weight: Gauge,
    shed: [IntCounter; 4],
}

impl WorkloadMetrics {
    /// The handles of one pool.
    pub fn pool(&self, kind: PoolKind) -> &PoolMetrics {
        &self.pools[kind.index()]
    }

    /// Publishes the current weight.
    pub fn set_shadow_weight(&self, w: f64) {
        self.shadow_weight.set(w);
    }

    /// Counts a shed request.
    pub fn shed(&self, p: Priority) {
        self.shed[p.index()].inc();
    }

    /// The workload's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// One pool's request counters and latency histogram.
pub struct PoolMetrics {
    requests: IntCounterVec,
    workload: String,
    pool: PoolKind,
    /// One cell per code in 100..=599, then one for "other".
    codes: Box<[OnceLock<IntCounter>]>,
    duration: Histogram,
}

impl PoolMetrics {
    /// Counts one answered request and its duration.
    pub fn observe(&self, code: u16, seconds: f64) {
        self.counter(code).inc();
        self.duration.observe(seconds);
    }

    fn counter(&self, code: u16) -> &IntCounter {
        let slot = usize::from(code.wrapping_sub(FIRST_CODE));
        let resolve = |label: &str| {
            self.requests
                .with_label_values(&[self.workload.as_str(), self.pool.as_str(), label])
        };
        if slot < CODES {
            self.codes[slot].get_or_init(|| resolve(&code.to_string()))
        } else {
            self.codes[CODES].get_or_init(|| resolve("other"))
        }
    }
}
