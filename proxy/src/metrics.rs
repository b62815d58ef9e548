//! Prometheus metrics with fixed names; label handles are resolved once, off the request path.

use std::sync::OnceLock;

use policies::{PoolKind, Priority};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
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
    /// TLS handshakes begun.
    pub tls_handshakes_started: IntCounter,
    /// TLS handshakes completed.
    pub tls_handshakes: IntCounter,
    cert_expiry: GaugeVec,
    by_version: [IntCounter; 3],
    /// Upgraded connections (WebSocket ...) open now.
    pub upgraded_open: IntGauge,
    /// Access log lines dropped because the writer fell behind.
    pub access_log_dropped: IntCounter,
    in_flight: IntGauge,
    redirects: IntCounter,
}

/// An HTTP version as a metric label index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/1.0.
    H10,
    /// HTTP/1.1.
    H11,
    /// HTTP/2.
    H2,
}

impl HttpVersion {
    /// The version of a request.
    pub fn of(v: http::Version) -> Self {
        match v {
            http::Version::HTTP_2 => HttpVersion::H2,
            http::Version::HTTP_10 | http::Version::HTTP_09 => HttpVersion::H10,
            _ => HttpVersion::H11,
        }
    }

    /// As the access log writes it.
    pub fn protocol(self) -> &'static str {
        match self {
            HttpVersion::H10 => "HTTP/1.0",
            HttpVersion::H11 => "HTTP/1.1",
            HttpVersion::H2 => "HTTP/2.0",
        }
    }
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
        let tls_handshakes_started = IntCounter::new(
            "umbra_tls_handshakes_started_total",
            "TLS handshakes begun on the TLS listeners; minus umbra_tls_handshakes_total, the failed (and in-progress) ones.",
        )?;
        let tls_handshakes =
            IntCounter::new("umbra_tls_handshakes_total", "TLS handshakes completed.")?;
        let cert_expiry = GaugeVec::new(
            Opts::new(
                "umbra_tls_certificate_expiry_seconds",
                "End of validity (Unix seconds) of each served certificate.",
            ),
            &["cert", "name"],
        )?;
        let versions = IntCounterVec::new(
            Opts::new(
                "umbra_http_requests_total",
                "Client requests by HTTP version.",
            ),
            &["version"],
        )?;
        let by_version = ["1.0", "1.1", "2"].map(|v| versions.with_label_values(&[v]));
        let upgraded_open = IntGauge::new(
            "umbra_upgraded_connections",
            "Upgraded connections (WebSocket and other HTTP Upgrade) open now.",
        )?;
        let access_log_dropped = IntCounter::new(
            "umbra_access_log_dropped_total",
            "Access log lines dropped because the writer fell behind (traffic is never slowed for the log).",
        )?;
        let in_flight = IntGauge::new(
            "umbra_requests_in_flight",
            "Client requests (and upgraded connections) in flight.",
        )?;
        let redirects = IntCounter::new(
            "umbra_https_redirects_total",
            "Plain-HTTP requests answered with a redirect to https.",
        )?;
        registry.register(Box::new(tls_handshakes_started.clone()))?;
        registry.register(Box::new(tls_handshakes.clone()))?;
        registry.register(Box::new(cert_expiry.clone()))?;
        registry.register(Box::new(versions))?;
        registry.register(Box::new(upgraded_open.clone()))?;
        registry.register(Box::new(access_log_dropped.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(redirects.clone()))?;
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
            tls_handshakes_started,
            tls_handshakes,
            cert_expiry,
            by_version,
            upgraded_open,
            access_log_dropped,
            in_flight,
            redirects,
        })
    }

    /// Counts a client request by HTTP version.
    #[inline]
    pub fn request_version(&self, v: HttpVersion) {
        self.by_version[v as usize].inc();
    }

    /// Counts a redirect to https.
    pub fn https_redirect(&self) {
        self.redirects.inc();
    }

    /// Publishes the served certificates' expiry times, replacing the previous set.
    pub fn set_certificates<'a>(&self, certs: impl Iterator<Item = (&'a str, &'a str, i64)>) {
        self.cert_expiry.reset();
        for (path, name, not_after) in certs {
            self.cert_expiry
                .with_label_values(&[path, name])
                .set(not_after as f64);
        }
    }

    /// Publishes the number of requests in flight (read at scrape time).
    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.set(i64::try_from(n).unwrap_or(i64::MAX));
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
