//! Shadow pools as a `<workload>-shadow` Deployment (plus a Service of the same name, so
//! EndpointSlices list its ready pods), applied server-side and sized through `/scale`.
//!
//! Resizing changes the pod template, which Kubernetes rolls out by replacing pods; replica
//! counts go only through the `/scale` subresource, never through the applied object, so an
//! apply never undoes a scale.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::core::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::kubernetes_objects::{
    self as objects, check_kubernetes_name, deployment, is_ours, pod_selector, ready_members,
    resources_of, service, shadow_name,
};
use super::{Instance, InstanceTemplate, ProvisionError, Provisioner, ShadowTarget};

const BACKEND: &str = "kubernetes";

/// Settings of a [`KubernetesProvisioner`].
#[derive(Clone, Debug)]
pub struct KubernetesOptions {
    /// Namespace of the shadow Deployments and Services. Default: `default`.
    pub namespace: String,
    /// Server-side apply field manager. Default: `umbra`.
    pub field_manager: String,
    /// How long `replace` waits for the successor pod to get an IP. Default: 60 s.
    pub replace_timeout: Duration,
    /// How often `replace` looks for it. Default: 1 s.
    pub poll_interval: Duration,
}

impl Default for KubernetesOptions {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            field_manager: "umbra".into(),
            replace_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Runs shadow-pool instances as pods of a Deployment. See the module docs.
pub struct KubernetesProvisioner {
    client: Client,
    options: KubernetesOptions,
}

impl KubernetesProvisioner {
    /// A provisioner using `client` (e.g. `Client::try_default()`: in-cluster service account
    /// or `$KUBECONFIG`).
    pub fn new(client: Client, options: KubernetesOptions) -> Self {
        Self { client, options }
    }

    /// A provisioner with a client configured from the environment: the in-cluster service
    /// account when running in a pod, else `$KUBECONFIG` / `~/.kube/config`.
    pub async fn from_environment(options: KubernetesOptions) -> Result<Self, ProvisionError> {
        let client = Client::try_default()
            .await
            .map_err(|e| ProvisionError::Backend {
                backend: BACKEND,
                message: format!("no Kubernetes configuration (in-cluster or kubeconfig): {e}"),
            })?;
        Ok(Self::new(client, options))
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.options.namespace)
    }

    /// Refuses to touch an object of that name that umbra does not manage; `Ok(None)` if absent.
    async fn owned<K>(
        &self,
        api: &Api<K>,
        name: &str,
        workload: &str,
    ) -> Result<Option<K>, ProvisionError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let existing = api
            .get_opt(name)
            .await
            .map_err(|e| kube_error(&format!("get {name}"), e))?;
        match existing {
            Some(object) if !is_ours(object.meta()) => Err(ProvisionError::Template {
                backend: BACKEND,
                workload: workload.to_string(),
                message: format!(
                    "{} {name} in namespace {} exists and is not managed by umbra (label {}={} missing); \
                     refusing to take it over",
                    K::kind(&Default::default()),
                    self.options.namespace,
                    objects::MANAGED_BY.0,
                    objects::MANAGED_BY.1
                ),
            }),
            other => Ok(other),
        }
    }

    async fn apply<K>(&self, api: &Api<K>, name: &str, object: &K) -> Result<K, ProvisionError>
    where
        K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    {
        let params = PatchParams::apply(&self.options.field_manager).force();
        api.patch(name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| kube_error(&format!("apply {name}"), e))
    }

    /// Sets the Deployment's replicas through `/scale`, unless already there. A `Scale` read
    /// first carries its resourceVersion, so a concurrent scaler (an HPA) makes the write
    /// fail with 409 instead of being silently overwritten; one retry re-reads.
    async fn set_replicas(&self, workload: &str, replicas: i32) -> Result<(), ProvisionError> {
        let deployments: Api<Deployment> = self.api();
        let name = shadow_name(workload);
        for attempt in 0..2 {
            let current = deployments
                .get_scale(&name)
                .await
                .map_err(|e| kube_error(&format!("get {name}/scale"), e))?;
            let from = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if from == replicas {
                return Ok(());
            }
            let wanted = Scale {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.options.namespace.clone()),
                    resource_version: current.metadata.resource_version.clone(),
                    ..ObjectMeta::default()
                },
                spec: Some(ScaleSpec {
                    replicas: Some(replicas),
                }),
                status: None,
            };
            let body = serde_json::to_vec(&wanted).map_err(|e| ProvisionError::Backend {
                backend: BACKEND,
                message: format!("encoding Scale: {e}"),
            })?;
            match deployments
                .replace_scale(&name, &PostParams::default(), body)
                .await
            {
                Ok(_) => {
                    tracing::info!(workload, deployment = %name, from, to = replicas, "scaled shadow deployment");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 409 && attempt == 0 => {
                    tracing::info!(workload, deployment = %name, "scale conflict; re-reading");
                }
                Err(e) => return Err(kube_error(&format!("replace {name}/scale"), e)),
            }
        }
        Err(ProvisionError::Backend {
            backend: BACKEND,
            message: format!("{name}/scale kept changing under us (409 twice)"),
        })
    }

    /// The shadow pods, by name.
    async fn pods(&self, workload: &str) -> Result<Vec<Pod>, ProvisionError> {
        let pods: Api<Pod> = self.api();
        let list = pods
            .list(&ListParams::default().labels(&pod_selector(workload)))
            .await
            .map_err(|e| kube_error("list shadow pods", e))?;
        Ok(list.items)
    }

    /// Ready members from the EndpointSlices, sized and dated from their pods.
    async fn members(&self, workload: &str) -> Result<Vec<Instance>, ProvisionError> {
        let slices: Api<EndpointSlice> = self.api();
        let selector = format!("kubernetes.io/service-name={}", shadow_name(workload));
        let slices = slices
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| kube_error("list endpointslices", e))?;
        let pods = self.pods(workload).await?;
        let mut instances = Vec::new();
        for member in ready_members(&slices.items) {
            let pod = member.pod.as_deref().and_then(|name| {
                pods.iter()
                    .find(|p| p.metadata.name.as_deref() == Some(name))
            });
            let Some(pod) = pod else {
                // An endpoint outliving its pod for a moment; it is going away.
                tracing::debug!(workload, addr = %member.addr, "ready endpoint without a shadow pod; skipped");
                continue;
            };
            instances.push(pod_instance(pod, member.addr));
        }
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(instances)
    }

    /// Deletes `name` if it is ours; absent (404) is success.
    async fn delete_owned<K>(
        &self,
        api: &Api<K>,
        name: &str,
        workload: &str,
    ) -> Result<bool, ProvisionError>
    where
        K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let Some(object) = self.owned(api, name, workload).await? else {
            return Ok(false);
        };
        let params = DeleteParams {
            // Only the object just checked: not one recreated meanwhile by someone else.
            preconditions: Some(Preconditions {
                uid: object.meta().uid.clone(),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match api.delete(name, &params).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
            Err(e) => Err(kube_error(&format!("delete {name}"), e)),
        }
    }
}

fn pod_instance(pod: &Pod, addr: std::net::SocketAddr) -> Instance {
    let container = pod.spec.as_ref().and_then(|s| s.containers.first());
    let started = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(pod.metadata.creation_timestamp.as_ref())
        .map_or(SystemTime::UNIX_EPOCH, |t| SystemTime::from(t.0));
    Instance {
        id: pod
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| addr.to_string()),
        addr,
        resources: resources_of(container.and_then(|c| c.resources.as_ref())),
        started_at: started,
    }
}

fn check_template(template: &InstanceTemplate) -> Result<&str, ProvisionError> {
    check_kubernetes_name(&template.workload)?;
    match template.image.as_deref() {
        Some(image) if !image.is_empty() => Ok(image),
        _ => Err(ProvisionError::Template {
            backend: BACKEND,
            workload: template.workload.clone(),
            message: "no image to run (template.image is not set)".into(),
        }),
    }
}

fn kube_error(call: &str, e: kube::Error) -> ProvisionError {
    ProvisionError::Backend {
        backend: BACKEND,
        message: format!("{call}: {e}"),
    }
}

#[async_trait]
impl Provisioner for KubernetesProvisioner {
    fn name(&self) -> &'static str {
        BACKEND
    }

    async fn scale(
        &self,
        template: &InstanceTemplate,
        target: ShadowTarget,
    ) -> Result<Vec<Instance>, ProvisionError> {
        let image = check_template(template)?;
        let workload = template.workload.as_str();
        let name = shadow_name(workload);
        let namespace = &self.options.namespace;
        let deployments: Api<Deployment> = self.api();
        let services: Api<Service> = self.api();
        let before = self.owned(&deployments, &name, workload).await?;

        self.apply(&services, &name, &service(template, namespace))
            .await?;
        let applied = self
            .apply(
                &deployments,
                &name,
                &deployment(template, image, namespace, target.resources),
            )
            .await?;
        let size_of = |d: &Deployment| {
            let pod = d.spec.as_ref().and_then(|s| s.template.spec.as_ref());
            resources_of(
                pod.and_then(|p| p.containers.first())
                    .and_then(|c| c.resources.as_ref()),
            )
        };
        match &before {
            None => {
                tracing::info!(workload, deployment = %name, %namespace, "created shadow deployment")
            }
            Some(old) if size_of(old) != size_of(&applied) => tracing::info!(
                workload,
                deployment = %name,
                from_cpu_millis = size_of(old).cpu_millis,
                from_memory_mib = size_of(old).memory_mib,
                cpu_millis = target.resources.cpu_millis,
                memory_mib = target.resources.memory_mib,
                "resized shadow deployment (rolling update)"
            ),
            Some(_) => {}
        }
        let replicas = i32::try_from(target.instances).unwrap_or(i32::MAX);
        self.set_replicas(workload, replicas).await?;
        self.members(workload).await
    }

    async fn instances(&self, workload: &str) -> Result<Vec<Instance>, ProvisionError> {
        check_kubernetes_name(workload)?;
        self.members(workload).await
    }

    async fn replace(
        &self,
        template: &InstanceTemplate,
        instance_id: &str,
    ) -> Result<Instance, ProvisionError> {
        check_template(template)?;
        let workload = template.workload.as_str();
        let before = self.pods(workload).await?;
        if !before
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some(instance_id))
        {
            return Err(ProvisionError::Backend {
                backend: BACKEND,
                message: format!("workload {workload} has no shadow pod {instance_id}"),
            });
        }
        let pods: Api<Pod> = self.api();
        match pods.delete(instance_id, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(kube_error(&format!("delete pod {instance_id}"), e)),
        }
        tracing::info!(
            workload,
            pod = instance_id,
            "deleted pod; waiting for the deployment's successor"
        );
        let known: BTreeSet<_> = before
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        let deadline = tokio::time::Instant::now() + self.options.replace_timeout;
        loop {
            let successor = self.pods(workload).await?.into_iter().find_map(|pod| {
                let fresh = pod
                    .metadata
                    .name
                    .as_ref()
                    .is_some_and(|n| !known.contains(n))
                    && pod.metadata.deletion_timestamp.is_none();
                let ip = pod.status.as_ref()?.pod_ip.as_ref()?.parse().ok()?;
                fresh.then(|| {
                    pod_instance(&pod, std::net::SocketAddr::new(ip, template.container_port))
                })
            });
            if let Some(instance) = successor {
                tracing::info!(workload, old_pod = instance_id, pod = %instance.id, "replaced pod");
                return Ok(instance);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ProvisionError::Backend {
                    backend: BACKEND,
                    message: format!(
                        "no successor of pod {instance_id} got an IP within {:?}",
                        self.options.replace_timeout
                    ),
                });
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    async fn stop_all(&self, workload: &str) -> Result<(), ProvisionError> {
        check_kubernetes_name(workload)?;
        let name = shadow_name(workload);
        let deployments: Api<Deployment> = self.api();
        let services: Api<Service> = self.api();
        let deleted_deployment = self.delete_owned(&deployments, &name, workload).await?;
        let deleted_service = self.delete_owned(&services, &name, workload).await?;
        tracing::info!(workload, deployment = %name, deleted_deployment, deleted_service, "stopped shadow pool");
        Ok(())
    }
}
