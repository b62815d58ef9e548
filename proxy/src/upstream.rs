//! One upstream server's live state (load, latency, health) and the registry that shares it.
//!
//! State is keyed by address: two workloads pointing at the same backend see the same
//! in-flight count and health, which is what admission and balancing need.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};

use config::{Timeouts, UpstreamProtocol, UpstreamTls};
use pingora_core::upstreams::peer::HttpPeer;
use policies::UpstreamLoad;

/// A backend server and what the proxy knows about it right now.
pub struct Upstream {
    addr: SocketAddr,
    label: String,
    peer: HttpPeer,
    in_flight: AtomicU32,
    ewma_us: AtomicU32,
    active_ok: AtomicBool,
    ejected_until_ms: AtomicU64,
    /// Consecutive check results: positive = successes, negative = failures.
    streak: AtomicI32,
}

/// How an upstream is spoken to: part of its identity, since one address may serve HTTP/1.1
/// to one workload and h2c to another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerSpec {
    /// HTTP version towards it.
    pub protocol: UpstreamProtocol,
    /// TLS towards it, if any.
    pub tls: Option<UpstreamTls>,
}

impl PeerSpec {
    /// The spec a workload's pools use.
    pub fn of(spec: &config::WorkloadSpec) -> Self {
        PeerSpec {
            protocol: spec.upstream_protocol,
            tls: spec.upstream_tls.clone(),
        }
    }
}

impl Upstream {
    fn new(addr: SocketAddr, timeouts: &Timeouts, spec: &PeerSpec) -> Self {
        // Built once per upstream so the request path only clones it.
        let sni = spec
            .tls
            .as_ref()
            .and_then(|t| t.sni.clone())
            .unwrap_or_default();
        let mut peer = HttpPeer::new(addr, spec.tls.is_some(), sni);
        match spec.protocol {
            UpstreamProtocol::H1 => {}
            // ALPN offers h2 first and accepts an HTTP/1.1 answer.
            UpstreamProtocol::H2 => peer.options.set_http_version(2, 1),
            // Cleartext has no negotiation: HTTP/2 with prior knowledge.
            UpstreamProtocol::H2c => peer.options.set_http_version(2, 2),
        }
        if let Some(tls) = &spec.tls {
            peer.options.verify_cert = tls.verify;
            peer.options.verify_hostname = tls.verify && tls.sni.is_some();
        }
        peer.options.connection_timeout = Some(timeouts.connect);
        peer.options.total_connection_timeout = Some(timeouts.connect);
        peer.options.read_timeout = Some(timeouts.read);
        peer.options.write_timeout = Some(timeouts.write);
        peer.options.idle_timeout = Some(timeouts.idle);
        Upstream {
            addr,
            label: addr.to_string(),
            peer,
            in_flight: AtomicU32::new(0),
            ewma_us: AtomicU32::new(0),
            // Optimistic start: a new member takes traffic at once; checks demote it if needed.
            active_ok: AtomicBool::new(true),
            ejected_until_ms: AtomicU64::new(0),
            streak: AtomicI32::new(0),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its address as text, for labels and JSON.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The prebuilt peer to hand to Pingora.
    pub fn peer(&self) -> &HttpPeer {
        &self.peer
    }

    /// Passing active checks and not ejected at `now_ms`.
    pub fn healthy(&self, now_ms: u64) -> bool {
        self.active_ok.load(Relaxed) && now_ms >= self.ejected_until_ms.load(Relaxed)
    }

    /// Requests outstanding right now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Relaxed)
    }

    /// What the balancer needs.
    pub fn load(&self, now_ms: u64) -> UpstreamLoad {
        UpstreamLoad {
            healthy: self.healthy(now_ms),
            in_flight: self.in_flight(),
            ewma_us: self.ewma_us.load(Relaxed),
        }
    }

    /// Takes it out of rotation until `until_ms` (passive ejection after a connect failure).
    pub fn eject(&self, until_ms: u64) {
        self.ejected_until_ms.fetch_max(until_ms, Relaxed);
    }

    /// Feeds a response time into the peak-sensitive moving average: a slower sample is taken
    /// at once, faster ones decay it by 1/8 (linkerd's peak-EWMA, without the time decay).
    pub fn observe_latency(&self, us: u32) {
        let old = self.ewma_us.load(Relaxed);
        let new = if us >= old || old == 0 {
            us
        } else {
            old - (old - us) / 8
        };
        self.ewma_us.store(new.max(1), Relaxed);
    }

    /// Records an active check result; returns the new health when it flips.
    /// Only the health checker calls this, so the streak needs no compare-and-swap.
    pub fn observe_check(
        &self,
        ok: bool,
        healthy_after: u32,
        unhealthy_after: u32,
    ) -> Option<bool> {
        let s = self.streak.load(Relaxed);
        let s = match (ok, s) {
            (true, s) if s > 0 => s.saturating_add(1),
            (true, _) => 1,
            (false, s) if s < 0 => s.saturating_sub(1),
            (false, _) => -1,
        };
        self.streak.store(s, Relaxed);
        let was = self.active_ok.load(Relaxed);
        let now = if was {
            !(s < 0 && s.unsigned_abs() >= unhealthy_after)
        } else {
            s > 0 && s.unsigned_abs() >= healthy_after
        };
        if now != was {
            self.active_ok.store(now, Relaxed);
            if now {
                // A passing check clears a passive ejection too.
                self.ejected_until_ms.store(0, Relaxed);
            }
            Some(now)
        } else {
            None
        }
    }
}

/// Holds one unit of an upstream's in-flight count for as long as it lives.
pub struct InFlight(Arc<Upstream>);

impl InFlight {
    /// Counts a request against `upstream`.
    pub fn new(upstream: Arc<Upstream>) -> Self {
        upstream.in_flight.fetch_add(1, Relaxed);
        InFlight(upstream)
    }

    /// The upstream it counts against.
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

/// (address, protocol) -> shared upstream state, so reloads and pool changes keep health and
/// load.
pub struct UpstreamRegistry {
    timeouts: Timeouts,
    map: Mutex<HashMap<(SocketAddr, PeerSpec), Weak<Upstream>>>,
}

impl UpstreamRegistry {
    /// An empty registry whose peers use `timeouts`.
    pub fn new(timeouts: Timeouts) -> Self {
        UpstreamRegistry {
            timeouts,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The timeouts its peers are built with.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// The live state for `addr` spoken to as `spec`, created on first use.
    pub fn get(&self, addr: SocketAddr, spec: &PeerSpec) -> Arc<Upstream> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let key = (addr, spec.clone());
        if let Some(up) = map.get(&key).and_then(Weak::upgrade) {
            return up;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let up = Arc::new(Upstream::new(addr, &self.timeouts, spec));
        map.insert(key, Arc::downgrade(&up));
        up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn timeouts() -> Timeouts {
        let s = Duration::from_secs(1);
        Timeouts {
            connect: s,
            read: s,
            write: s,
            idle: s,
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn registry_shares_state_by_address() {
        let r = UpstreamRegistry::new(timeouts());
        let h1 = PeerSpec::default();
        let a = r.get(addr(1), &h1);
        let b = r.get(addr(1), &h1);
        let h2c = PeerSpec {
            protocol: UpstreamProtocol::H2c,
            tls: None,
        };
        assert!(!Arc::ptr_eq(&a, &r.get(addr(1), &h2c)));
        assert!(Arc::ptr_eq(&a, &b));
        let _held = InFlight::new(a.clone());
        assert_eq!(b.in_flight(), 1);
        drop(_held);
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn health_hysteresis() {
        let u = Upstream::new(addr(1), &timeouts(), &PeerSpec::default());
        assert!(u.healthy(0));
        assert_eq!(u.observe_check(false, 1, 2), None);
        assert_eq!(u.observe_check(false, 1, 2), Some(false));
        assert!(!u.healthy(0));
        assert_eq!(u.observe_check(true, 1, 2), Some(true));
        assert!(u.healthy(0));
    }

    #[test]
    fn ejection_expires_and_a_passing_check_lifts_it() {
        let u = Upstream::new(addr(1), &timeouts(), &PeerSpec::default());
        u.eject(1000);
        assert!(!u.healthy(999));
        assert!(u.healthy(1000));
        u.eject(5000);
        u.observe_check(false, 1, 1);
        u.observe_check(true, 1, 1);
        assert!(u.healthy(10));
    }

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        let u = Upstream::new(addr(1), &timeouts(), &PeerSpec::default());
        u.observe_latency(1000);
        u.observe_latency(9000);
        assert_eq!(u.load(0).ewma_us, 9000);
        u.observe_latency(1000);
        assert_eq!(u.load(0).ewma_us, 8000);
    }
}
