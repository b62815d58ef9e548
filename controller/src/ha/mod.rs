//! Several controller replicas in Kubernetes, one acting: leader election on a Lease, and
//! migration phases in ConfigMaps so the next leader resumes where the last one stopped.

mod elector;
mod lease;
mod phases;

use std::sync::Arc;

use config::LeaderElection;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use tokio::sync::watch;

use crate::orchestrate::Orchestrator;
use crate::store::Store;

pub use elector::{ElectionTiming, Elector};
pub use lease::{Claim, LeaseClient, LeaseError, record_of};
pub use phases::{ConfigMapPhases, PHASE_KEY};

/// Server-side apply field manager of the phase ConfigMaps (the provisioner's too).
pub const FIELD_MANAGER: &str = "umbra";

/// The elector (with the receiver that follows it) and the phase store of one replica.
pub fn replica(
    client: &Client,
    namespace: &str,
    settings: &LeaderElection,
    log: Arc<Store>,
    gauge: Option<prometheus::IntGauge>,
) -> (Elector, watch::Receiver<bool>, Arc<ConfigMapPhases>) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let duration_secs = i32::try_from(settings.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let lease = LeaseClient::new(
        leases,
        &settings.lease_name,
        &settings.identity,
        duration_secs,
    );
    let (elector, leading) = Elector::new(
        lease,
        ElectionTiming::for_lease(settings.lease_duration),
        gauge,
    );
    let phases = Arc::new(ConfigMapPhases::new(
        Api::namespaced(client.clone(), namespace),
        &settings.lease_name,
        FIELD_MANAGER,
        &settings.identity,
        log,
    ));
    (elector, leading, phases)
}

/// Runs the election and the orchestrator until `shutdown`: the orchestrator acts only while
/// this replica leads. On shutdown the orchestrator stops first, then the lease is released,
/// so the next leader never overlaps with this one. Both run in the caller's task (not
/// spawned), so dropping this future stops both, like a killed process.
pub async fn run_replica(
    elector: Elector,
    leading: watch::Receiver<bool>,
    orchestrator: Orchestrator,
    shutdown: watch::Receiver<bool>,
) -> Orchestrator {
    let (stop_election, election_stopped) = watch::channel(false);
    let orchestrate = async {
        let orchestrator = orchestrator.run_while_leader(leading, shutdown).await;
        stop_election.send_replace(true);
        orchestrator
    };
    let ((), orchestrator) = tokio::join!(elector.run(election_stopped), orchestrate);
    orchestrator
}
