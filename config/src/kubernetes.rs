//! `[controller.kubernetes]`: the namespace the controller works in and its leader election.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{FieldPath, Invalid};
use crate::proxy::{Env, dur};

/// `[controller.kubernetes]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetes {
    /// Namespace of `<workload>-shadow` Deployments, the Lease and the phase ConfigMaps.
    namespace: Option<String>,
    /// Run as one of several replicas: only the holder of a Lease acts, and migration
    /// phases live in ConfigMaps instead of the local SQLite file.
    leader_election: Option<bool>,
    /// Name of the `coordination.k8s.io/v1` Lease, also the prefix of the phase ConfigMaps.
    lease_name: Option<String>,
    /// How long a renewal holds the lease, e.g. "15s"; the holder renews every third of it.
    lease_duration: Option<String>,
    /// This replica's identity in the Lease: literal or `env:NAME`.
    identity: Option<String>,
}

/// Several controller replicas, one acting at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElection {
    /// Lease name (a DNS-1123 subdomain). Default `umbra-controller`.
    pub lease_name: String,
    /// Lease duration, whole seconds, 2 s to 5 min. Default 15 s.
    pub lease_duration: Duration,
    /// This replica's holder identity. Default `env:POD_NAME`, else `env:HOSTNAME`.
    pub identity: String,
}

/// Kubernetes settings.
pub(crate) struct KubernetesSettings {
    pub namespace: String,
    pub leader_election: Option<LeaderElection>,
}

/// A DNS-1123 label or subdomain (what Lease and ConfigMap names must be), at most `max`.
fn dns_name(name: &str, max: usize) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a Kubernetes name (lowercase letters, digits, '-' and '.', at most {max} characters, starting and ending alphanumeric)"
        ))
    }
}

pub(crate) fn validate(
    at: &FieldPath,
    raw: Option<&RawKubernetes>,
    env: &Env<'_>,
) -> Result<KubernetesSettings, Invalid> {
    let empty = RawKubernetes::default();
    let raw = raw.unwrap_or(&empty);
    let namespace = raw.namespace.clone().unwrap_or_else(|| "default".into());
    dns_name(&namespace, 63).map_err(|m| Invalid::new(at.key("namespace"), m))?;
    let lease_name = raw
        .lease_name
        .clone()
        .unwrap_or_else(|| "umbra-controller".into());
    // Phase ConfigMaps are `<lease_name>-phase-<workload>`: leave room for the workload.
    dns_name(&lease_name, 150).map_err(|m| Invalid::new(at.key("lease_name"), m))?;
    let lease_duration = dur(at, "lease_duration", &raw.lease_duration, "15s")?;
    if lease_duration.subsec_nanos() != 0
        || !(Duration::from_secs(2)..=Duration::from_secs(300)).contains(&lease_duration)
    {
        return Err(Invalid::new(
            at.key("lease_duration"),
            format!(
                "{} is not a whole number of seconds between 2s and 5m (the Lease stores seconds)",
                humantime::format_duration(lease_duration)
            ),
        ));
    }
    if !raw.leader_election.unwrap_or(false) {
        return Ok(KubernetesSettings {
            namespace,
            leader_election: None,
        });
    }
    let identity = match raw.identity.as_deref() {
        Some(spec) => match spec.strip_prefix("env:") {
            Some(name) => {
                env(name).ok_or_else(|| format!("environment variable {name} is not set"))
            }
            None => Ok(spec.to_string()),
        },
        None => env("POD_NAME").or_else(|| env("HOSTNAME")).ok_or_else(|| {
            "neither POD_NAME nor HOSTNAME is set: set identity (e.g. \"env:POD_NAME\")".to_string()
        }),
    }
    .and_then(|id| {
        if id.trim().is_empty() {
            Err("the identity is empty".to_string())
        } else {
            Ok(id)
        }
    })
    .map_err(|m| Invalid::new(at.key("identity"), m))?;
    Ok(KubernetesSettings {
        namespace,
        leader_election: Some(LeaderElection {
            lease_name,
            lease_duration,
            identity,
        }),
    })
}
