//! Two controller replicas in one process, each with its own identity, store, board and
//! metrics, sharing the fake Kubernetes API server (Lease, phase ConfigMaps), one fake proxy
//! admin API and one fake provisioner (its instances outlive a controller, like pods). The
//! leader is killed mid-ramp while its weight call to the proxy hangs, so the proxy holds a
//! weight the stored phase has already moved past; the other replica must take the Lease and
//! resume (or, with the shadow gone, roll back) within about one lease period, leaving the
//! proxy at exactly the weight of the phase it stored.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report
#![cfg(feature = "kubernetes")]

#[allow(dead_code)]
#[path = "provision_support/fake_api_server.rs"]
mod fake_api_server;
#[allow(dead_code)]
#[path = "provision_support/fake_cluster.rs"]
mod fake_cluster;
#[path = "provision_support/fake_pods.rs"]
mod fake_pods;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::{get, put};
use config::{AlertFormat, LeaderElection, Mode};
use controller::alerts::Alerter;
use controller::board::Board;
use controller::history::scrape::PoolRate;
use controller::metrics::ControllerMetrics;
use controller::orchestrate::{Context, Orchestrator, PhaseStore};
use controller::proxies::Proxies;
use controller::store::Store;
use fake_api_server::FakeApiServer;
use fake_pods::FakeProvisioner;
use policies::Phase;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

const LEASE: Duration = Duration::from_secs(2);
const TICK: Duration = Duration::from_millis(100);
const PHASE_CONFIGMAP: &str = "umbra-controller-phase-web";

// ---- a proxy's admin API: records weights; can hang one weight call forever -------------

#[derive(Default)]
struct ProxyState {
    weight: f64,
    /// Every weight set, in order.
    weights: Vec<f64>,
    /// The next PUT of this weight never answers (the caller is killed meanwhile).
    hang_on: Option<f64>,
}

#[derive(Clone, Default)]
struct FakeProxy {
    state: Arc<Mutex<ProxyState>>,
    hung: Arc<Notify>,
}

impl FakeProxy {
    async fn start(self) -> SocketAddr {
        let app = axum::Router::new()
            .route("/v1/workloads", get(workloads))
            .route("/v1/workloads/web/shadow-weight", put(set_weight))
            .route("/v1/workloads/web/pools/shadow", put(|| async { "{}" }))
            .with_state(self);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    fn weight(&self) -> f64 {
        self.state.lock().unwrap().weight
    }

    fn weights(&self) -> Vec<f64> {
        self.state.lock().unwrap().weights.clone()
    }
}

fn pool() -> wire::Pool {
    wire::Pool {
        upstreams: Vec::new(),
        window_requests: 0,
        p99_ms: None,
        error_rate: 0.0,
    }
}

async fn workloads(State(proxy): State<FakeProxy>) -> Json<wire::WorkloadList> {
    let weight = proxy.weight();
    Json(wire::WorkloadList {
        workloads: vec![wire::Workload {
            name: "web".into(),
            shadow_weight: weight,
            state: wire::GuardStatus::Steady,
            priority: policies::Priority::Normal,
            stateless: true,
            hosts: Vec::new(),
            path_prefix: "/".into(),
            last_rollback: None,
            cooldown_remaining_ms: 0,
            primary: pool(),
            shadow: pool(),
        }],
    })
}

async fn set_weight(State(proxy): State<FakeProxy>, Json(body): Json<Value>) -> &'static str {
    let weight = body["weight"].as_f64().unwrap();
    let hang = {
        let mut s = proxy.state.lock().unwrap();
        if s.hang_on.is_some_and(|h| (h - weight).abs() < 1e-9) {
            s.hang_on = None;
            true
        } else {
            s.weight = weight;
            s.weights.push(weight);
            false
        }
    };
    if hang {
        proxy.hung.notify_one();
        std::future::pending::<()>().await;
    }
    "{}"
}

// ---- one replica ---------------------------------------------------------------------------

struct Replica {
    task: tokio::task::JoinHandle<Orchestrator>,
    leading: watch::Receiver<bool>,
    metrics: Arc<ControllerMetrics>,
    shutdown: watch::Sender<bool>,
}

const CONFIG: &str = r#"
[proxy]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:9901"

[[workloads]]
name = "web"
primary = ["127.0.0.1:7001"]

[workloads.instance]
image = "registry.example/web:1"
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

fn start_replica(
    identity: &str,
    server: &FakeApiServer,
    proxy: SocketAddr,
    provisioner: &FakeProvisioner,
) -> Replica {
    let config = config::parse(Path::new("umbra.toml"), CONFIG).unwrap();
    let policy = Arc::new(config::parse_policy(Path::new("fast.toml"), POLICY).unwrap());
    let store = Arc::new(Store::in_memory().unwrap());
    let metrics = Arc::new(ControllerMetrics::new().unwrap());
    let board = Arc::new(Board::default());
    let settings = LeaderElection {
        lease_name: "umbra-controller".into(),
        lease_duration: LEASE,
        identity: identity.into(),
    };
    let (elector, leading, phases) = controller::ha::replica(
        &server.client(),
        "default",
        &settings,
        Arc::clone(&store),
        Some(metrics.leader.clone()),
    );
    let ctx = Context {
        store,
        phases: phases as Arc<dyn PhaseStore>,
        proxies: Proxies::new(vec![proxy], None),
        board: Arc::clone(&board),
        metrics: Arc::clone(&metrics),
        alerter: Alerter::new(None, AlertFormat::Alertmanager),
        mode: Mode::Act,
        clock: Arc::new(controller::clock::WallClock),
        tick: TICK,
        stale_after: Duration::from_secs(5),
        max_concurrent_migrations: 1,
    };
    let workloads = vec![(config.workloads[0].clone(), policy, None)];
    let orchestrator = Orchestrator::new(ctx, Arc::new(provisioner.clone()), workloads);
    let (shutdown, stop) = watch::channel(false);
    // Followers keep observing: demand above primary's capacity (50/s) on every board.
    let mut observing = stop.clone();
    tokio::spawn(async move {
        loop {
            let rate = PoolRate {
                workload: "web".into(),
                pool: "primary".into(),
                rps: 80.0,
                p99_ms: Some(10.0),
            };
            board.observe(&[rate], controller::clock::unix_ms());
            tokio::select! {
                () = tokio::time::sleep(TICK) => {}
                _ = observing.changed() => return,
            }
        }
    });
    let task = tokio::spawn(controller::ha::run_replica(
        elector,
        leading.clone(),
        orchestrator,
        stop,
    ));
    Replica {
        task,
        leading,
        metrics,
        shutdown,
    }
}

fn stored_phase(server: &FakeApiServer) -> Option<(Phase, String)> {
    let cm = server.configmap(PHASE_CONFIGMAP)?;
    let phase = serde_json::from_str(cm["data"]["phase"].as_str()?).ok()?;
    Some((phase, cm["data"]["written_by"].as_str()?.to_string()))
}

/// Polls `check` every 10 ms until it holds, failing after `limit`.
async fn wait_until(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn leader_gauge(r: &Replica) -> i64 {
    r.metrics.leader.get()
}

struct Setup {
    server: FakeApiServer,
    proxy: FakeProxy,
    provisioner: FakeProvisioner,
    a: Replica,
    b: Replica,
}

/// A leads and ramps; its second weight call (0.4) hangs on the proxy, and A is killed
/// there: the ConfigMap says ramping at 0.4, the proxy still has 0.2.
async fn leader_killed_mid_ramp() -> (Setup, Instant) {
    let server = FakeApiServer::start().await;
    let proxy = FakeProxy::default();
    proxy.state.lock().unwrap().hang_on = Some(0.4);
    let proxy_addr = proxy.clone().start().await;
    let provisioner = FakeProvisioner::default();
    let a = start_replica("replica-a", &server, proxy_addr, &provisioner);
    let mut a_leads = a.leading.clone();
    a_leads.wait_for(|l| *l).await.unwrap();
    let b = start_replica("replica-b", &server, proxy_addr, &provisioner);

    tokio::time::timeout(Duration::from_secs(20), proxy.hung.notified())
        .await
        .expect("the leader never reached weight 0.4");
    // The phase is stored before its actions run: it already says 0.4.
    let (phase, writer) = stored_phase(&server).unwrap();
    assert_eq!(
        (phase.name(), phase.weight(), writer.as_str()),
        ("ramping", 0.4, "replica-a")
    );
    assert_eq!(proxy.weight(), 0.2, "the proxy is left in between");
    assert_eq!((leader_gauge(&a), leader_gauge(&b)), (1, 0));
    assert!(!*b.leading.borrow(), "b follows while a renews");

    let mut a = a;
    a.task.abort();
    let killed = Instant::now();
    let joined = (&mut a.task).await;
    assert!(matches!(joined, Err(e) if e.is_cancelled()));
    (
        Setup {
            server,
            proxy,
            provisioner,
            a,
            b,
        },
        killed,
    )
}

/// The most a takeover may take after the kill: the lease and its tolerance from the last
/// renewal B saw, B's read that saw it and the read that finds it expired (a tenth of the
/// lease each), and one tick to recover.
fn failover_bound() -> Duration {
    LEASE + LEASE / 20 + 2 * (LEASE / 10) + TICK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_replica_resumes_a_ramp_when_the_leader_is_killed() {
    let (s, killed) = leader_killed_mid_ramp().await;
    let puts_before = s.proxy.weights().len();

    // B takes the lease, reads "ramping at 0.4", finds the shadow ready and resumes: its
    // first tick after becoming leader sets the proxy to the stored phase's weight.
    wait_until(
        failover_bound() + Duration::from_secs(2),
        "b resumes",
        || {
            stored_phase(&s.server).is_some_and(|(p, w)| w == "replica-b" && p.name() == "ramping")
                && s.proxy.weights().len() > puts_before
        },
    )
    .await;
    let failover = killed.elapsed();
    let weights = s.proxy.weights();
    eprintln!(
        "failover: {failover:?} from the kill to the proxy at the stored weight (lease {LEASE:?}); weights set: {weights:?}"
    );
    assert!(
        failover <= failover_bound(),
        "{failover:?} > {:?}",
        failover_bound()
    );
    assert_eq!(
        weights[puts_before], 0.4,
        "b's first weight is the stored phase's"
    );
    let lease = s.server.lease("umbra-controller").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], json!("replica-b"));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(1));
    assert_eq!(leader_gauge(&s.b), 1);
    assert!(!s.provisioner.pods.lock().unwrap().instances.is_empty());

    // From then on the proxy is never left off the stored phase's weight: B goes on ramping.
    wait_until(Duration::from_secs(10), "b ramps on to 1.0", || {
        stored_phase(&s.server).is_some_and(|(p, _)| p.weight() >= 1.0) && s.proxy.weight() >= 1.0
    })
    .await;
    let (phase, _) = stored_phase(&s.server).unwrap();
    assert_eq!(s.proxy.weight(), phase.weight());
    drop(s.a);
    s.b.shutdown.send_replace(true);
    s.b.task.await.unwrap();
    assert_eq!(
        s.server.lease("umbra-controller").unwrap()["spec"]["holderIdentity"],
        Value::Null,
        "released on shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_replica_rolls_back_when_the_shadow_is_gone_too() {
    let (s, killed) = leader_killed_mid_ramp().await;
    s.provisioner.pods.lock().unwrap().lost = true;

    wait_until(
        failover_bound() + Duration::from_secs(2),
        "b rolls back",
        || {
            stored_phase(&s.server)
                .is_some_and(|(p, w)| w == "replica-b" && p.name() == "rolled_back")
                && s.proxy.weight() == 0.0
        },
    )
    .await;
    let failover = killed.elapsed();
    eprintln!("failover (rollback): {failover:?} from the kill to weight 0 (lease {LEASE:?})");
    assert!(
        failover <= failover_bound(),
        "{failover:?} > {:?}",
        failover_bound()
    );
    let weights = s.proxy.weights();
    assert_eq!(weights.last(), Some(&0.0), "{weights:?}");
    assert!(
        weights.iter().all(|w| [0.0, 0.2].contains(w)),
        "nothing but A's 0.2 and B's rollback: {weights:?}"
    );
    drop(s.a);
    s.b.shutdown.send_replace(true);
    s.b.task.await.unwrap();
}
