//! The live orchestrator under tokio's paused clock, with the proxy fleet in memory behind
//! `AdminApi` and a provisioner behind `Provisioner`: time only moves when every task waits,
//! so a hung proxy's read timeout, the tick and the transition's stamp are exact, not raced.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

#[path = "provision_support/fake_pods.rs"]
mod fake_pods;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use config::{AlertFormat, Mode};
use controller::alerts::Alerter;
use controller::board::Board;
use controller::clock::Clock;
use controller::history::scrape::PoolRate;
use controller::metrics::ControllerMetrics;
use controller::orchestrate::{Context, Orchestrator, PhaseStore};
use controller::proxies::{AdminApi, Proxies, ProxyError};
use controller::store::Store;
use fake_pods::FakeProvisioner;
use policies::Phase;
use tokio::sync::watch;

const TICK: Duration = Duration::from_millis(250);
/// What the orchestrator gives each proxy to answer a read: 0.8 of a 250 ms tick.
const READ_TIMEOUT: Duration = Duration::from_millis(200);

/// Unix time that moves with tokio's clock (paused here), from a fixed start.
struct TokioClock {
    base_ms: i64,
    start: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn unix_ms(&self) -> i64 {
        self.base_ms + self.start.elapsed().as_millis() as i64
    }
}

// ---- the proxy fleet, in memory ----------------------------------------------------------

#[derive(Default)]
struct ProxyState {
    /// Reads and changes never answer.
    hung: bool,
    weight: f64,
    members: Vec<String>,
    /// Every weight set, in order.
    weights: Vec<f64>,
    rolled_back_at_ms: Option<u64>,
}

#[derive(Clone, Default)]
struct FakeFleet {
    proxies: Arc<Mutex<HashMap<SocketAddr, ProxyState>>>,
}

impl FakeFleet {
    fn with(&self, proxy: SocketAddr, f: impl FnOnce(&mut ProxyState)) {
        f(self.proxies.lock().unwrap().entry(proxy).or_default());
    }

    fn weight(&self, proxy: SocketAddr) -> f64 {
        self.proxies
            .lock()
            .unwrap()
            .get(&proxy)
            .map_or(0.0, |s| s.weight)
    }

    fn weights(&self, proxy: SocketAddr) -> Vec<f64> {
        self.proxies
            .lock()
            .unwrap()
            .get(&proxy)
            .map_or_else(Vec::new, |s| s.weights.clone())
    }

    /// Waits forever if `proxy` is hung, like a proxy that accepts and never answers.
    async fn answer<T>(&self, proxy: SocketAddr, f: impl FnOnce(&mut ProxyState) -> T) -> T {
        let answer = {
            let mut all = self.proxies.lock().unwrap();
            let state = all.entry(proxy).or_default();
            (!state.hung).then(|| f(state))
        };
        match answer {
            Some(a) => a,
            None => std::future::pending().await,
        }
    }
}

fn pool(members: &[String]) -> wire::Pool {
    wire::Pool {
        upstreams: members
            .iter()
            .map(|m| wire::Upstream {
                address: m.clone(),
                healthy: true,
                in_flight: 0,
            })
            .collect(),
        window_requests: 0,
        p99_ms: None,
        error_rate: 0.0,
    }
}

#[async_trait]
impl AdminApi for FakeFleet {
    async fn workloads(&self, proxy: SocketAddr) -> Result<Vec<wire::Workload>, ProxyError> {
        self.answer(proxy, |s| {
            Ok(vec![wire::Workload {
                name: "web".into(),
                shadow_weight: s.weight,
                state: if s.rolled_back_at_ms.is_some() {
                    wire::GuardStatus::RolledBack
                } else {
                    wire::GuardStatus::Steady
                },
                priority: policies::Priority::Normal,
                stateless: true,
                hosts: Vec::new(),
                path_prefix: "/".into(),
                last_rollback: s.rolled_back_at_ms.map(|at| wire::Rollback {
                    reason: wire::RollbackCause::ErrorRate,
                    detail: "shadow error rate 1.00 over 0.50".into(),
                    at: String::new(),
                    at_unix_ms: at,
                }),
                cooldown_remaining_ms: 0,
                primary: pool(&[]),
                shadow: pool(&s.members),
            }])
        })
        .await
    }

    async fn metrics(&self, proxy: SocketAddr) -> Result<String, ProxyError> {
        self.answer(proxy, |_| Ok(String::new())).await
    }

    async fn set_weight(
        &self,
        proxy: SocketAddr,
        _: &str,
        body: &wire::WeightBody,
    ) -> Result<(), ProxyError> {
        self.answer(proxy, |s| {
            s.weight = body.weight;
            s.weights.push(body.weight);
            Ok(())
        })
        .await
    }

    async fn set_shadow_pool(
        &self,
        proxy: SocketAddr,
        _: &str,
        body: &wire::PoolBody,
    ) -> Result<(), ProxyError> {
        self.answer(proxy, |s| {
            s.members = body.upstreams.clone();
            Ok(())
        })
        .await
    }
}

// ---- the controller ----------------------------------------------------------------------

const CONFIG: &str = r#"
[proxy]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9901"

[[workloads]]
name = "web"
primary = ["127.0.0.1:7001"]

[workloads.instance]
command = ["web"]
"#;

/// Fast steps, no minimum of requests per step, two shadow instances at most.
const POLICY: &str = r#"
[sizing]
instance_capacity = 50.0
max_instances = 2
startup = "1s"

[trigger]
lead_time = "1s"

[forecast]
horizon = "1m"

[ramp]
start_weight = 0.2
step = 0.2
interval = "1s"
min_requests = 0
"#;

struct Controller {
    clock: Arc<TokioClock>,
    store: Arc<Store>,
    metrics: Arc<ControllerMetrics>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Orchestrator>,
}

/// `umbra run`'s orchestrator over `proxies`, with demand (80/s) above primary's capacity
/// (50/s) observed every tick, so the workload wants the shadow.
fn start(fleet: &FakeFleet, proxies: &[SocketAddr]) -> Controller {
    let config = config::parse(Path::new("umbra.toml"), CONFIG).unwrap();
    let policy = Arc::new(config::parse_policy(Path::new("fast.toml"), POLICY).unwrap());
    let clock = Arc::new(TokioClock {
        base_ms: 1_800_000_000_000,
        start: tokio::time::Instant::now(),
    });
    let store = Arc::new(Store::in_memory().unwrap());
    let metrics = Arc::new(ControllerMetrics::new().unwrap());
    let board = Arc::new(Board::default());
    let ctx = Context {
        store: Arc::clone(&store),
        phases: Arc::clone(&store) as Arc<dyn PhaseStore>,
        proxies: Proxies::over(proxies.to_vec(), Arc::new(fleet.clone())),
        board: Arc::clone(&board),
        metrics: Arc::clone(&metrics),
        alerter: Alerter::new(None, AlertFormat::Alertmanager),
        mode: Mode::Act,
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        tick: TICK,
        stale_after: Duration::from_secs(5),
        max_concurrent_migrations: 1,
    };
    let workloads = vec![(config.workloads[0].clone(), policy, None)];
    let orchestrator = Orchestrator::new(ctx, Arc::new(FakeProvisioner::default()), workloads);
    let (shutdown, stop) = watch::channel(false);
    let mut observing = stop.clone();
    let observed_clock = Arc::clone(&clock);
    tokio::spawn(async move {
        loop {
            let rate = PoolRate {
                workload: "web".into(),
                pool: "primary".into(),
                rps: 80.0,
                p99_ms: Some(10.0),
            };
            board.observe(&[rate], observed_clock.unix_ms());
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = observing.changed() => return,
            }
        }
    });
    Controller {
        clock,
        store,
        metrics,
        shutdown,
        task: tokio::spawn(orchestrator.run(stop)),
    }
}

impl Controller {
    fn phase(&self) -> Phase {
        self.store.phase("web").unwrap().unwrap_or(Phase::Idle)
    }

    fn proxy_up(&self, proxy: SocketAddr) -> i64 {
        self.metrics
            .proxy_up
            .with_label_values(&[&proxy.to_string()])
            .get()
    }

    async fn stop(self) {
        self.shutdown.send_replace(true);
        self.task.await.unwrap();
    }
}

/// Advances the paused clock a tick at a time until `check` holds, at most `ticks` ticks.
async fn ticks_until(ticks: u32, mut check: impl FnMut() -> bool) -> Option<u32> {
    for n in 0..=ticks {
        if check() {
            return Some(n);
        }
        tokio::time::sleep(TICK).await;
    }
    None
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[tokio::test(start_paused = true)]
async fn a_rollback_from_one_proxy_is_taken_within_a_tick_while_the_other_hangs() {
    let fleet = FakeFleet::default();
    let (a, b) = (addr(9901), addr(9902));
    let c = start(&fleet, &[a, b]);

    // The shortage starts a migration; both proxies follow the ramp.
    let ramped = ticks_until(40, || fleet.weight(a) >= 0.4 && fleet.weight(b) >= 0.4).await;
    assert!(ramped.is_some(), "never ramped: {:?}", c.phase());
    assert_eq!(c.phase().name(), "ramping");

    // B stops answering; A's guard rolls the shadow back on its own.
    fleet.with(b, |s| s.hung = true);
    let rolled_at = c.clock.unix_ms();
    fleet.with(a, |s| {
        s.weight = 0.0;
        s.rolled_back_at_ms = Some(rolled_at as u64);
    });
    let taken = ticks_until(4, || c.phase().name() == "rolled_back").await;
    assert!(taken.is_some(), "never rolled back: {:?}", c.phase());
    let transition = c.store.transitions(Some("web"), 10).unwrap()[0].clone();
    assert_eq!(transition.to, "rolled_back");
    assert!(
        transition.reason.contains("a proxy rolled the shadow back"),
        "{}",
        transition.reason
    );
    // The tick that reads A's report starts at most one tick after the rollback, waits out
    // B's read timeout, and stamps the transition after its reads: on a paused clock exactly
    // that, never more.
    let lag = Duration::from_millis((transition.ts_ms - rolled_at) as u64);
    eprintln!("rollback reached the controller's state {lag:?} after the proxy made it");
    assert!(lag <= TICK + READ_TIMEOUT, "lag {lag:?}");
    assert!(
        lag >= READ_TIMEOUT,
        "the tick did not wait for the hung proxy: {lag:?}"
    );
    assert_eq!((c.proxy_up(a), c.proxy_up(b)), (1, 0));
    assert_eq!(fleet.weight(a), 0.0);

    // B answers again, still at its ramp weight: its own report gets it repaired to 0.
    let stale = fleet.weight(b);
    assert!(stale >= 0.4, "B kept the ramp's weight while hung: {stale}");
    fleet.with(b, |s| s.hung = false);
    let repaired = ticks_until(4, || fleet.weight(b) == 0.0).await;
    assert!(
        repaired.is_some(),
        "B never repaired: {:?}",
        fleet.weights(b)
    );
    assert_eq!(c.proxy_up(b), 1);
    assert_eq!(c.phase().name(), "rolled_back");
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_proxy_costs_each_tick_its_read_timeout_and_no_more() {
    let fleet = FakeFleet::default();
    let (a, b) = (addr(9901), addr(9902));
    fleet.with(b, |s| s.hung = true);
    let c = start(&fleet, &[a, b]);
    let t0 = tokio::time::Instant::now();
    let ramped = ticks_until(40, || fleet.weight(a) >= 1.0).await;
    assert!(ramped.is_some(), "A never reached 1.0: {:?}", c.phase());
    // The ramp (0.2 -> 1.0, a step a second) takes the same time it would with B answering:
    // B's reads run beside A's, each tick waits 200 ms for B, and no change is sent to it.
    let took = t0.elapsed();
    eprintln!("ramped to 1.0 in {took:?} with one proxy hung");
    assert!(took <= Duration::from_secs(6), "{took:?}");
    assert!(fleet.weights(b).is_empty(), "{:?}", fleet.weights(b));
    assert_eq!(c.proxy_up(b), 0);
    c.stop().await;
}
