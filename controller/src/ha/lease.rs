//! The `coordination.k8s.io/v1` Lease as an HTTP shell around `policies::decide_lease`: read
//! it, then create, renew, take over or release it, every write guarded by the
//! resourceVersion read, so a 409 means another replica got there first.

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use policies::{LeaseAction, LeaseRecord};

/// A Lease call failed for a reason other than losing a race.
#[derive(Debug, thiserror::Error)]
#[error("lease {name}: {action}: {source}")]
pub struct LeaseError {
    name: String,
    action: &'static str,
    #[source]
    source: kube::Error,
}

/// What a write came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The lease names me now.
    Held,
    /// Another replica wrote it first (409): it leads.
    Lost,
}

/// One replica's handle on the lease.
#[derive(Clone)]
pub struct LeaseClient {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration_secs: i32,
}

fn micro_time(ms: u64) -> Option<MicroTime> {
    DateTime::<Utc>::from_timestamp_millis(ms as i64).map(MicroTime)
}

/// The fields the election decides on, from a Lease as read.
pub fn record_of(lease: &Lease) -> LeaseRecord {
    let spec = lease.spec.clone().unwrap_or_default();
    LeaseRecord {
        holder: spec.holder_identity,
        renew_ms: spec
            .renew_time
            .and_then(|t| u64::try_from(t.0.timestamp_millis()).ok()),
        duration_ms: spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0)
            * 1000,
    }
}

impl LeaseClient {
    /// A client for lease `name` in `api`'s namespace, held as `identity` for `duration_secs`.
    pub fn new(api: Api<Lease>, name: &str, identity: &str, duration_secs: i32) -> Self {
        LeaseClient {
            api,
            name: name.to_string(),
            identity: identity.to_string(),
            duration_secs,
        }
    }

    /// This replica's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn error(&self, action: &'static str) -> impl FnOnce(kube::Error) -> LeaseError + '_ {
        move |source| LeaseError {
            name: self.name.clone(),
            action,
            source,
        }
    }

    /// The lease, or `None` if it does not exist.
    pub async fn read(&self) -> Result<Option<Lease>, LeaseError> {
        self.api
            .get_opt(&self.name)
            .await
            .map_err(self.error("get"))
    }

    /// Carries out `action` on the lease as `read` (create, renew or take over); `Follow`
    /// writes nothing and comes back `Lost`.
    pub async fn claim(
        &self,
        read: Option<&Lease>,
        action: &LeaseAction,
        now_ms: u64,
    ) -> Result<Claim, LeaseError> {
        let (spec, previous) = match (action, read) {
            (LeaseAction::Follow { .. }, _) => return Ok(Claim::Lost),
            (LeaseAction::Create, _) | (_, None) => (
                LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.duration_secs),
                    acquire_time: micro_time(now_ms),
                    renew_time: micro_time(now_ms),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                },
                None,
            ),
            (LeaseAction::Renew, Some(lease)) => {
                let mut spec = lease.spec.clone().unwrap_or_default();
                spec.renew_time = micro_time(now_ms);
                spec.lease_duration_seconds = Some(self.duration_secs);
                (spec, Some(lease))
            }
            (LeaseAction::TakeOver { .. }, Some(lease)) => {
                let old = lease.spec.clone().unwrap_or_default();
                let spec = LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(self.duration_secs),
                    acquire_time: micro_time(now_ms),
                    renew_time: micro_time(now_ms),
                    lease_transitions: Some(old.lease_transitions.unwrap_or(0) + 1),
                    ..old
                };
                (spec, Some(lease))
            }
        };
        let result = match previous {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            Some(read) => {
                // The resourceVersion read makes this a compare-and-swap.
                let lease = Lease {
                    metadata: read.metadata.clone(),
                    spec: Some(spec),
                };
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(Claim::Held),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Claim::Lost),
            Err(e) => Err(self.error("write")(e)),
        }
    }

    /// Gives the lease up (shutdown), so another replica takes it at once instead of after it
    /// expires. Only if it still names me; a lost race is fine.
    pub async fn release(&self) -> Result<(), LeaseError> {
        let Some(lease) = self.read().await? else {
            return Ok(());
        };
        if record_of(&lease).holder.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let mut spec = lease.spec.clone().unwrap_or_default();
        spec.holder_identity = None;
        spec.renew_time = None;
        spec.acquire_time = None;
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(spec),
        };
        match self
            .api
            .replace(&self.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(self.error("release")(e)),
        }
    }
}
