//! Migration phases in ConfigMaps (`<lease_name>-phase-<workload>`), so whichever replica
//! leads reads the phase the last leader wrote. Written by server-side apply carrying the
//! resourceVersion last read or written: a leader deposed without noticing gets a 409 instead
//! of overwriting its successor's phase. The transition log stays in the local SQLite store.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{Patch, PatchParams};
use policies::Phase;

use crate::orchestrate::{PhaseStore, PhaseStoreError};
use crate::store::Store;

/// The data key holding the phase as JSON (the same JSON as the SQLite store's).
pub const PHASE_KEY: &str = "phase";

/// Phases kept in ConfigMaps. See the module docs.
pub struct ConfigMapPhases {
    api: Api<ConfigMap>,
    prefix: String,
    field_manager: String,
    identity: String,
    log: Arc<Store>,
    /// resourceVersion of each workload's ConfigMap as last read or written by this replica.
    versions: Mutex<HashMap<String, String>>,
}

impl ConfigMapPhases {
    /// ConfigMaps named `<prefix>-phase-<workload>` in `api`'s namespace, applied with
    /// `field_manager`, naming `identity` as their writer; transitions logged in `log`.
    pub fn new(
        api: Api<ConfigMap>,
        prefix: &str,
        field_manager: &str,
        identity: &str,
        log: Arc<Store>,
    ) -> Self {
        ConfigMapPhases {
            api,
            prefix: prefix.to_string(),
            field_manager: field_manager.to_string(),
            identity: identity.to_string(),
            log,
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// The ConfigMap holding `workload`'s phase.
    pub fn name_of(&self, workload: &str) -> String {
        format!("{}-phase-{workload}", self.prefix)
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.versions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, workload: &str, version: Option<String>) {
        match version {
            Some(v) => self.versions().insert(workload.to_string(), v),
            None => self.versions().remove(workload),
        };
    }
}

fn api_error(name: &str, action: &'static str, e: kube::Error) -> PhaseStoreError {
    match e {
        kube::Error::Api(r) if r.code == 409 => PhaseStoreError::Fenced {
            name: name.to_string(),
        },
        e => PhaseStoreError::Kubernetes {
            name: name.to_string(),
            action,
            message: e.to_string(),
        },
    }
}

#[async_trait]
impl PhaseStore for ConfigMapPhases {
    fn kind(&self) -> &'static str {
        "configmap"
    }

    async fn load(&self, workload: &str) -> Result<Option<Phase>, PhaseStoreError> {
        let name = self.name_of(workload);
        let found = self
            .api
            .get_opt(&name)
            .await
            .map_err(|e| api_error(&name, "get", e))?;
        self.remember(
            workload,
            found
                .as_ref()
                .and_then(|c| c.metadata.resource_version.clone()),
        );
        // An unreadable phase is unknown, as in the SQLite store: recovery starts from Idle,
        // which pins the weight to 0.
        Ok(found
            .and_then(|c| c.data)
            .and_then(|d| d.get(PHASE_KEY).cloned())
            .and_then(|json| serde_json::from_str(&json).ok()))
    }

    async fn save(
        &self,
        workload: &str,
        from: &Phase,
        to: &Phase,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), PhaseStoreError> {
        let name = self.name_of(workload);
        let json = serde_json::to_string(to).unwrap_or_else(|_| "{\"phase\":\"idle\"}".into());
        let object = ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                resource_version: self.versions().get(workload).cloned(),
                labels: Some(BTreeMap::from([
                    ("app.kubernetes.io/managed-by".into(), "umbra".into()),
                    ("umbra.dev/workload".into(), workload.to_string()),
                ])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([
                (PHASE_KEY.into(), json),
                ("reason".into(), reason.to_string()),
                ("updated_ms".into(), now_ms.to_string()),
                ("written_by".into(), self.identity.clone()),
            ])),
            ..ConfigMap::default()
        };
        let params = PatchParams::apply(&self.field_manager).force();
        let written = self
            .api
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| api_error(&name, "apply", e))?;
        self.remember(workload, written.metadata.resource_version);
        self.log
            .log_transition(workload, from, to, reason, now_ms)
            .map_err(PhaseStoreError::from)
    }
}
