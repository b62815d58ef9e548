//! `umbra run`: the controller's loops assembled from one config, running until shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use config::{Config, ProvisionerKind, WorkloadPolicy};
use tokio::sync::watch;

use crate::alerts::Alerter;
use crate::api::{ApiState, router};
use crate::board::Board;
use crate::forecasting::{ForecastTarget, forecast_loop};
use crate::history::prometheus::prometheus_loop;
use crate::history::scrape_loop;
use crate::metrics::ControllerMetrics;
use crate::orchestrate::{Context, Orchestrator, PhaseStore, PrimarySupervisor};
use crate::proxies::Proxies;
use crate::store::Store;
use provision::Provisioner;

/// Each workload's policy: its named file under `policy_dir`, else `policy_dir/default.toml`
/// when present, else the built-in defaults. A bad file fails start-up with file/line/field.
pub fn load_policies(config: &Config) -> anyhow::Result<HashMap<String, Arc<WorkloadPolicy>>> {
    let dir = &config.controller.policy_dir;
    let default_path = dir.join("default.toml");
    let default = if default_path.exists() {
        Arc::new(config::load_policy(&default_path)?)
    } else {
        Arc::new(WorkloadPolicy::builtin())
    };
    let mut out = HashMap::new();
    for w in &config.workloads {
        let p = match &w.policy {
            Some(name) => Arc::new(
                config::load_policy(&dir.join(format!("{name}.toml")))
                    .with_context(|| format!("policy {name:?} of workload {}", w.name))?,
            ),
            None => Arc::clone(&default),
        };
        out.insert(w.name.to_string(), p);
    }
    Ok(out)
}

async fn provisioner(config: &Config) -> anyhow::Result<Arc<dyn Provisioner>> {
    let c = &config.controller;
    Ok(match c.provisioner {
        ProvisionerKind::Process => Arc::new(provision::process::ProcessProvisioner::new(
            c.data_dir.join("instances"),
            Default::default(),
        )?),
        ProvisionerKind::Podman => Arc::new(provision::podman::PodmanProvisioner::new(
            provision::podman::PodmanOptions {
                deployment: provision::deployment_id(&c.data_dir),
                ..Default::default()
            },
        )),
        #[cfg(feature = "kubernetes")]
        ProvisionerKind::Kubernetes => {
            let client = kube::Client::try_default()
                .await
                .context("connecting to Kubernetes (kubeconfig or in-cluster)")?;
            let options = provision::kubernetes::KubernetesOptions {
                namespace: c.kubernetes_namespace.clone(),
                ..Default::default()
            };
            Arc::new(provision::kubernetes::KubernetesProvisioner::new(
                client, options,
            ))
        }
        #[cfg(not(feature = "kubernetes"))]
        ProvisionerKind::Kubernetes => {
            anyhow::bail!("this umbra was built without the `kubernetes` feature")
        }
    })
}

#[cfg(feature = "kubernetes")]
type Replica = (
    crate::ha::Elector,
    watch::Receiver<bool>,
    Arc<crate::ha::ConfigMapPhases>,
);
#[cfg(not(feature = "kubernetes"))]
type Replica = ((), (), Arc<dyn PhaseStore>);

/// Under `[controller.kubernetes] leader_election`, this replica's elector and its phase
/// ConfigMaps; `None` for a single controller (phases in SQLite).
#[cfg_attr(not(feature = "kubernetes"), allow(unused_variables))]
async fn replica(
    config: &Config,
    store: &Arc<Store>,
    metrics: &ControllerMetrics,
) -> anyhow::Result<Option<Replica>> {
    let c = &config.controller;
    let Some(settings) = &c.leader_election else {
        return Ok(None);
    };
    #[cfg(feature = "kubernetes")]
    {
        let client = kube::Client::try_default()
            .await
            .context("connecting to Kubernetes for leader election")?;
        tracing::info!(lease = %settings.lease_name, identity = %settings.identity, namespace = %c.kubernetes_namespace, lease_duration = ?settings.lease_duration, "leader election on");
        Ok(Some(crate::ha::replica(
            &client,
            &c.kubernetes_namespace,
            settings,
            Arc::clone(store),
            Some(metrics.leader.clone()),
        )))
    }
    #[cfg(not(feature = "kubernetes"))]
    {
        anyhow::bail!("leader election needs an umbra built with the `kubernetes` feature")
    }
}

/// Runs the controller until `shutdown` flips. With `stop_instances`, shadow and primary
/// instances are stopped on the way out (`umbra up`); otherwise they keep running and the
/// next start adopts them (`umbra run`).
pub async fn run(
    config: Config,
    shutdown: watch::Receiver<bool>,
    stop_instances: bool,
) -> anyhow::Result<()> {
    let c = config.controller.clone();
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("creating data dir {}", c.data_dir.display()))?;
    let store = Arc::new(Store::open(&c.data_dir.join("umbra.sqlite"))?);
    let metrics = Arc::new(ControllerMetrics::new()?);
    let board = Arc::new(Board::default());
    let policies = load_policies(&config)?;
    let now = chrono::Utc::now();
    let ingested = crate::ingest::ingest_files(
        &store,
        &c.signals,
        now,
        chrono::TimeDelta::from_std(c.retention).unwrap_or(chrono::TimeDelta::days(14)),
        chrono::TimeDelta::days(90),
    )
    .context("reading signal files")?;
    tracing::info!(events = ingested, "signal files ingested");

    let proxies = Proxies::new(
        c.proxies.clone(),
        c.proxy_token.as_ref().map(|t| t.reveal().to_string()),
    );
    let provisioner = provisioner(&config).await?;
    let mut workloads = Vec::new();
    for spec in &config.workloads {
        let policy = Arc::clone(&policies[spec.name.as_str()]);
        let primary = spec.instance.manage_primary.then(|| {
            Arc::new(PrimarySupervisor::new(
                spec.name.as_str(),
                spec.instance.command.clone(),
                spec.primary.clone(),
                spec.instance.health_path.clone(),
                spec.instance.env.clone(),
                c.data_dir.join("logs"),
            ))
        });
        workloads.push((spec.clone(), policy, primary));
    }

    let api = Arc::new(ApiState {
        board: Arc::clone(&board),
        store: Arc::clone(&store),
        metrics: Arc::clone(&metrics),
        token: c.api_token.clone(),
        mode: c.mode,
        workloads: config
            .workloads
            .iter()
            .map(|w| w.name.to_string())
            .collect(),
    });
    let listener = tokio::net::TcpListener::bind(c.api_listen)
        .await
        .with_context(|| format!("binding controller.api_listen {}", c.api_listen))?;
    tracing::info!(api = %c.api_listen, proxies = ?c.proxies, mode = ?c.mode, provisioner = provisioner.name(), "controller starting");

    let mut tasks = tokio::task::JoinSet::new();
    {
        let mut stop = shutdown.clone();
        tasks.spawn(async move {
            let serve = axum::serve(listener, router(api)).with_graceful_shutdown(async move {
                let _closed = stop.changed().await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "controller API failed");
            }
        });
    }
    tasks.spawn(scrape_loop(
        proxies.clone(),
        Arc::clone(&store),
        Arc::clone(&board),
        Arc::clone(&metrics),
        c.scrape_interval,
        shutdown.clone(),
    ));
    if let Some(prom) = c.prometheus.clone() {
        let names = config
            .workloads
            .iter()
            .map(|w| w.name.to_string())
            .collect();
        tasks.spawn(prometheus_loop(
            prom,
            names,
            Arc::clone(&store),
            Arc::clone(&metrics),
            c.step,
            shutdown.clone(),
        ));
    }
    let targets = config
        .workloads
        .iter()
        .map(|w| ForecastTarget {
            workload: w.name.to_string(),
            policy: Arc::clone(&policies[w.name.as_str()]),
        })
        .collect();
    tasks.spawn(forecast_loop(
        targets,
        Arc::clone(&store),
        Arc::clone(&board),
        Arc::clone(&metrics),
        c.step,
        c.forecast_interval,
        shutdown.clone(),
    ));
    {
        let (store, mut stop, retention) = (Arc::clone(&store), shutdown.clone(), c.retention);
        tasks.spawn(async move {
            loop {
                let cutoff = crate::clock::unix_ms() - retention.as_millis() as i64;
                if let Err(e) = store.prune(cutoff) {
                    tracing::warn!(error = %e, "pruning history failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
    let replica = replica(&config, &store, &metrics).await?;
    if replica.is_none() {
        metrics.leader.set(1);
    }
    let ctx = Context {
        phases: replica.as_ref().map_or_else(
            || Arc::clone(&store) as Arc<dyn PhaseStore>,
            |(_, _, phases)| Arc::clone(phases) as Arc<dyn PhaseStore>,
        ),
        store: Arc::clone(&store),
        proxies,
        board,
        metrics,
        alerter: Alerter::new(c.alert_webhook.clone(), c.alert_format),
        mode: c.mode,
        clock: Arc::new(crate::clock::WallClock),
        tick: c.tick,
        stale_after: c.scrape_interval * 3,
        max_concurrent_migrations: c.max_concurrent_migrations,
    };
    let orchestrator = Orchestrator::new(ctx, provisioner, workloads);
    let orchestrator = match replica {
        #[cfg(feature = "kubernetes")]
        Some((elector, leading, _)) => {
            crate::ha::run_replica(elector, leading, orchestrator, shutdown.clone()).await
        }
        _ => orchestrator.run(shutdown.clone()).await,
    };
    if stop_instances {
        orchestrator.stop_instances().await;
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("controller stopped");
    Ok(())
}
