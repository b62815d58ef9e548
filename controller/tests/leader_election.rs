//! Leader election and the phase ConfigMaps against the fake API server with real Lease
//! semantics (create conflicts, resourceVersion-checked updates, expiry): who leads, who
//! steps down and when, and that a deposed leader cannot overwrite its successor's phase.
//! Time is passed in (`step(now_ms)`), so nothing here waits.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report
#![cfg(feature = "kubernetes")]

#[allow(dead_code)]
#[path = "provision_support/fake_api_server.rs"]
mod fake_api_server;
#[allow(dead_code)]
#[path = "provision_support/fake_cluster.rs"]
mod fake_cluster;

use std::sync::Arc;
use std::time::Duration;

use controller::ha::{
    Claim, ConfigMapPhases, ElectionTiming, Elector, LeaseClient, PHASE_KEY, record_of,
};
use controller::orchestrate::{PhaseStore, PhaseStoreError};
use controller::store::Store;
use fake_api_server::FakeApiServer;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use policies::{LeaseAction, Phase};
use serde_json::json;
use tokio::sync::watch;

const LEASE: &str = "umbra-controller";
const SECONDS: i32 = 6;
const T0: u64 = 1_800_000_000_000;

fn lease_client(server: &FakeApiServer, identity: &str) -> LeaseClient {
    let api: Api<Lease> = Api::namespaced(server.client(), "default");
    LeaseClient::new(api, LEASE, identity, SECONDS)
}

fn elector(server: &FakeApiServer, identity: &str) -> (Elector, watch::Receiver<bool>) {
    Elector::new(
        lease_client(server, identity),
        ElectionTiming::for_lease(Duration::from_secs(SECONDS as u64)),
        None,
    )
}

fn holder(server: &FakeApiServer) -> Option<String> {
    server.lease(LEASE).unwrap()["spec"]["holderIdentity"]
        .as_str()
        .map(String::from)
}

/// Lease length plus the tolerance, in ms: when a silent holder's lease counts as expired.
const EXPIRY_MS: u64 = SECONDS as u64 * 1000 + SECONDS as u64 * 1000 / 20;

#[tokio::test]
async fn the_first_replica_creates_the_lease_the_second_follows() {
    let server = FakeApiServer::start().await;
    let (mut a, a_leads) = elector(&server, "a");
    let (mut b, b_leads) = elector(&server, "b");
    assert!(a.step(T0).await);
    assert!(*a_leads.borrow());
    assert!(!b.step(T0 + 1).await);
    assert!(!*b_leads.borrow());
    // A renews; B never sees it expire while it does.
    for k in 1..=6 {
        let now = T0 + k * 2_000;
        assert!(a.step(now).await, "renewal {k}");
        assert!(!b.step(now + 1).await, "b at renewal {k}");
    }
    assert_eq!(holder(&server).as_deref(), Some("a"));
    let lines: Vec<String> = server
        .take_requests()
        .iter()
        .take(4)
        .map(|r| format!("{} {}", r.line(), r.status))
        .collect();
    let path = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    assert_eq!(
        lines,
        [
            format!("GET {path}/{LEASE} 404"),
            format!("POST {path} 201"),
            format!("GET {path}/{LEASE} 200"),
            format!("GET {path}/{LEASE} 200"),
        ]
    );
}

#[tokio::test]
async fn a_silent_holder_is_taken_over_one_lease_after_it_was_last_seen_renewing() {
    let server = FakeApiServer::start().await;
    let (mut a, _) = elector(&server, "a");
    let (mut b, b_leads) = elector(&server, "b");
    assert!(a.step(T0).await);
    assert!(!b.step(T0).await);
    // A dies here (no more steps). B's clock is what counts.
    assert!(!b.step(T0 + EXPIRY_MS - 1).await);
    assert!(b.step(T0 + EXPIRY_MS).await);
    assert!(*b_leads.borrow());
    let lease = server.lease(LEASE).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], json!("b"));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(1));
    // A comes back: it sees B holding the lease and follows, without writing.
    assert!(!a.step(T0 + EXPIRY_MS + 1).await);
    assert_eq!(holder(&server).as_deref(), Some("b"));
}

/// Two candidates read the same expired lease and both try to take it over: the
/// resourceVersion check lets exactly one write, the other gets 409 and follows.
#[tokio::test]
async fn two_candidates_racing_for_an_expired_lease_exactly_one_wins() {
    let server = FakeApiServer::start().await;
    server.seed_lease(
        LEASE,
        json!({"holderIdentity": "dead", "leaseDurationSeconds": SECONDS,
               "renewTime": "2026-01-01T00:00:00.000000Z", "leaseTransitions": 4}),
    );
    let (a, b) = (lease_client(&server, "a"), lease_client(&server, "b"));
    let read_a = a.read().await.unwrap().unwrap();
    let read_b = b.read().await.unwrap().unwrap();
    assert_eq!(
        read_a.metadata.resource_version,
        read_b.metadata.resource_version
    );
    let take = LeaseAction::TakeOver {
        previous: Some("dead".into()),
    };
    let (won_a, won_b) = tokio::join!(
        a.claim(Some(&read_a), &take, T0),
        b.claim(Some(&read_b), &take, T0)
    );
    let outcomes = [won_a.unwrap(), won_b.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|c| **c == Claim::Held).count(),
        1,
        "{outcomes:?}"
    );
    let winner = if outcomes[0] == Claim::Held { "a" } else { "b" };
    let lease = server.lease(LEASE).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], json!(winner));
    assert_eq!(lease["spec"]["leaseTransitions"], json!(5));
    let conflicts = server
        .take_requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.status == 409)
        .count();
    assert_eq!(conflicts, 1);

    // The same race between whole electors, both having watched the lease expire.
    let server = FakeApiServer::start().await;
    server.seed_lease(
        LEASE,
        json!({"holderIdentity": "dead", "leaseDurationSeconds": SECONDS,
               "renewTime": "2026-01-01T00:00:00.000000Z"}),
    );
    let (mut a, a_leads) = elector(&server, "a");
    let (mut b, b_leads) = elector(&server, "b");
    assert!(!a.step(T0).await && !b.step(T0).await);
    let now = T0 + EXPIRY_MS;
    let (led_a, led_b) = tokio::join!(a.step(now), b.step(now));
    assert!(led_a ^ led_b, "a {led_a}, b {led_b}");
    assert_eq!(*a_leads.borrow(), led_a);
    assert_eq!(*b_leads.borrow(), led_b);
    assert_eq!(
        holder(&server).as_deref(),
        Some(if led_a { "a" } else { "b" })
    );
}

#[tokio::test]
async fn two_candidates_creating_the_lease_exactly_one_wins() {
    let server = FakeApiServer::start().await;
    let (a, b) = (lease_client(&server, "a"), lease_client(&server, "b"));
    assert!(a.read().await.unwrap().is_none() && b.read().await.unwrap().is_none());
    let (won_a, won_b) = tokio::join!(
        a.claim(None, &LeaseAction::Create, T0),
        b.claim(None, &LeaseAction::Create, T0)
    );
    let outcomes = [won_a.unwrap(), won_b.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|c| **c == Claim::Held).count(),
        1,
        "{outcomes:?}"
    );
}

#[tokio::test]
async fn a_failed_renewal_steps_down_at_once_and_the_lease_is_kept_if_still_ours() {
    let server = FakeApiServer::start().await;
    let (mut a, a_leads) = elector(&server, "a");
    assert!(a.step(T0).await);
    server.inject_lease_failures(1);
    assert!(!a.step(T0 + 2_000).await);
    assert!(!*a_leads.borrow(), "stepped down on the failed renewal");
    // The lease still names A and nobody took it: the next round renews it.
    assert!(a.step(T0 + 4_000).await);
    assert!(*a_leads.borrow());
}

#[tokio::test]
async fn a_leader_that_sees_another_holder_steps_down() {
    let server = FakeApiServer::start().await;
    let (mut a, a_leads) = elector(&server, "a");
    assert!(a.step(T0).await);
    // Someone else wrote the lease (an operator, a replica with a skewed view).
    server.seed_lease(
        LEASE,
        json!({"holderIdentity": "b", "leaseDurationSeconds": SECONDS,
               "renewTime": "2026-01-01T00:00:00.000000Z"}),
    );
    assert!(!a.step(T0 + 2_000).await);
    assert!(!*a_leads.borrow());
}

#[tokio::test]
async fn a_leader_whose_renewals_stop_covering_now_is_not_covered() {
    let server = FakeApiServer::start().await;
    let (mut a, _) = elector(&server, "a");
    assert!(a.step(T0).await);
    let tolerance = SECONDS as u64 * 1000 / 20;
    assert!(a.covered(T0 + SECONDS as u64 * 1000 - tolerance - 1));
    assert!(!a.covered(T0 + SECONDS as u64 * 1000 - tolerance));
}

/// On shutdown the leader releases the lease, so a follower takes it at its next round
/// instead of waiting for it to expire.
#[tokio::test]
async fn a_leader_shutting_down_releases_the_lease() {
    let server = FakeApiServer::start().await;
    let (a, mut a_leads) = elector(&server, "a");
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(a.run(stopped));
    a_leads.wait_for(|l| *l).await.unwrap();
    let (mut b, _) = elector(&server, "b");
    assert!(!b.step(T0).await);
    stop.send_replace(true);
    task.await.unwrap();
    assert_eq!(holder(&server), None);
    assert!(b.step(T0 + 1).await, "took the released lease at once");
    let lease: Lease = serde_json::from_value(server.lease(LEASE).unwrap()).unwrap();
    assert_eq!(record_of(&lease).holder.as_deref(), Some("b"));
}

fn phases(server: &FakeApiServer, identity: &str) -> ConfigMapPhases {
    ConfigMapPhases::new(
        Api::namespaced(server.client(), "default"),
        LEASE,
        "umbra",
        identity,
        Arc::new(Store::in_memory().unwrap()),
    )
}

#[tokio::test]
async fn phases_live_in_a_configmap_per_workload_and_a_stale_writer_is_fenced() {
    let server = FakeApiServer::start().await;
    let a = phases(&server, "a");
    let b = phases(&server, "b");
    assert_eq!(a.load("web").await.unwrap(), None);
    let ramp = Phase::Ramping {
        weight: 0.1,
        step_since_ms: 5,
    };
    a.save("web", &Phase::Idle, &ramp, "shadow ready", 10)
        .await
        .unwrap();
    let cm = server.configmap("umbra-controller-phase-web").unwrap();
    assert_eq!(
        serde_json::from_str::<Phase>(cm["data"][PHASE_KEY].as_str().unwrap()).unwrap(),
        ramp
    );
    assert_eq!(cm["data"]["written_by"], json!("a"));
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        json!("umbra")
    );
    // B takes over: reads A's phase and rolls back.
    assert_eq!(b.load("web").await.unwrap(), Some(ramp.clone()));
    let back = Phase::RolledBack {
        reason: "restarted".into(),
        at_ms: 20,
    };
    b.save("web", &ramp, &back, "restarted", 20).await.unwrap();
    // A, deposed without noticing, tries to move on from what it last wrote: refused.
    let next = Phase::Ramping {
        weight: 0.25,
        step_since_ms: 30,
    };
    let err = a.save("web", &ramp, &next, "gate passed", 30).await;
    assert!(
        matches!(err, Err(PhaseStoreError::Fenced { .. })),
        "{err:?}"
    );
    assert_eq!(b.load("web").await.unwrap(), Some(back));
    let applies: Vec<String> = server
        .take_requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| {
            format!(
                "{} {} {}",
                r.line(),
                r.status,
                r.content_type.clone().unwrap()
            )
        })
        .collect();
    assert_eq!(
        applies[0],
        "PATCH /api/v1/namespaces/default/configmaps/umbra-controller-phase-web?fieldManager=umbra&force=true 201 application/apply-patch+yaml"
    );
    assert!(applies[2].contains(" 409 "), "{applies:?}");
}

/// Against a real cluster: `UMBRA_E2E_KUBECONFIG=/path/to/kubeconfig cargo test --release -p
/// controller --test leader_election -- --ignored` (`UMBRA_E2E_NAMESPACE`, default `default`).
/// Two electors contend for a Lease named after this process; the first leads, the second
/// follows, the first releases and the second takes it; a phase round-trips through its
/// ConfigMap and a stale write is fenced. Everything it creates is deleted at the end.
#[tokio::test]
#[ignore = "needs a real cluster: set UMBRA_E2E_KUBECONFIG and run with --ignored"]
async fn real_cluster_election_and_phases() {
    let path = std::env::var("UMBRA_E2E_KUBECONFIG")
        .expect("UMBRA_E2E_KUBECONFIG must name a kubeconfig file for the real-cluster test");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::config::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let namespace = std::env::var("UMBRA_E2E_NAMESPACE").unwrap_or_else(|_| "default".into());
    let name = format!("umbra-e2e-lease-{}", std::process::id());
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let timing = ElectionTiming::for_lease(Duration::from_secs(SECONDS as u64));
    let (mut a, _) = Elector::new(
        LeaseClient::new(leases.clone(), &name, "a", SECONDS),
        timing,
        None,
    );
    let b_client = LeaseClient::new(leases.clone(), &name, "b", SECONDS);
    let (mut b, _) = Elector::new(b_client.clone(), timing, None);
    let now = || controller::clock::unix_ms() as u64;
    assert!(a.step(now()).await, "a creates the lease");
    assert!(!b.step(now()).await, "b follows");
    LeaseClient::new(leases.clone(), &name, "a", SECONDS)
        .release()
        .await
        .unwrap();
    assert!(b.step(now()).await, "b takes the released lease");
    let lease = b_client.read().await.unwrap().unwrap();
    assert_eq!(record_of(&lease).holder.as_deref(), Some("b"));

    let store = || Arc::new(Store::in_memory().unwrap());
    let configmaps = || Api::namespaced(client.clone(), &namespace);
    let first = ConfigMapPhases::new(configmaps(), &name, "umbra", "a", store());
    let second = ConfigMapPhases::new(configmaps(), &name, "umbra", "b", store());
    let ramp = Phase::Ramping {
        weight: 0.3,
        step_since_ms: 1,
    };
    first.load("web").await.unwrap();
    first
        .save("web", &Phase::Idle, &ramp, "e2e", 1)
        .await
        .unwrap();
    assert_eq!(second.load("web").await.unwrap(), Some(ramp.clone()));
    second
        .save("web", &ramp, &Phase::Idle, "e2e", 2)
        .await
        .unwrap();
    let stale = first.save("web", &ramp, &ramp, "e2e", 3).await;
    assert!(
        matches!(stale, Err(PhaseStoreError::Fenced { .. })),
        "{stale:?}"
    );

    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = configmaps();
    cms.delete(&first.name_of("web"), &Default::default())
        .await
        .unwrap();
    leases.delete(&name, &Default::default()).await.unwrap();
}
