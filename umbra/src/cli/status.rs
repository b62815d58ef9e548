//! `umbra status`: pools, weights, forecasts and migrations from the controller's API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use controller::api::StatusReport;

/// Arguments of `umbra status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print the raw JSON report.
    #[arg(long)]
    pub json: bool,
    /// Controller API address; default: `controller.api_listen` of the config.
    #[arg(long)]
    pub api: Option<SocketAddr>,
    /// Config to read the API address from.
    #[arg(long, short, default_value = crate::up::DEFAULT_CONFIG)]
    pub config: PathBuf,
}

fn api_addr(args: &StatusArgs) -> anyhow::Result<SocketAddr> {
    if let Some(a) = args.api {
        return Ok(a);
    }
    // The token is irrelevant for reading the address; do not require it in the environment.
    match crate::up::load_with_token(&args.config, "unused") {
        Ok(c) => Ok(c.controller.api_listen),
        Err(e) if !args.config.exists() => {
            tracing::debug!(error = %e, "no config; using the default API address");
            Ok("127.0.0.1:9900".parse()?)
        }
        Err(e) => Err(e),
    }
}

/// Fetches and prints the status.
pub async fn run_status(args: &StatusArgs) -> anyhow::Result<()> {
    let addr = api_addr(args)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let resp = http
        .get(format!("http://{addr}/v1/status"))
        .send()
        .await
        .with_context(|| {
            format!("no controller answering on {addr} (is `umbra up` or `umbra run` running?)")
        })?;
    anyhow::ensure!(
        resp.status().is_success(),
        "controller answered {}",
        resp.status()
    );
    let text = resp.text().await?;
    if args.json {
        println!("{text}");
        return Ok(());
    }
    let report: StatusReport = serde_json::from_str(&text)?;
    println!("mode: {}", report.mode);
    println!(
        "{:<16} {:<13} {:>7} {:>9} {:>10} {:>12} {:>10}  LAST DECISION",
        "WORKLOAD", "STATE", "WEIGHT", "SHADOW", "OBSERVED", "FORECAST^", "CAPACITY",
    );
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    for w in &report.workloads {
        println!(
            "{:<16} {:<13} {:>7.2} {:>5}/{:<3} {:>10} {:>12} {:>10.0}  {}",
            w.name,
            w.migration_state,
            w.shadow_weight,
            w.shadow_instances,
            w.planned_instances,
            f(w.observed_rps),
            f(w.forecast_peak_rps),
            w.primary_capacity_rps,
            w.last_reason
        );
    }
    Ok(())
}

/// Arguments of `umbra import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// CSV with `timestamp,value` or `ds,y`.
    #[arg(long)]
    pub input: PathBuf,
    /// Workload the series belongs to.
    #[arg(long)]
    pub workload: String,
    /// Pool (`all` = total demand).
    #[arg(long, default_value = "all")]
    pub pool: String,
    /// Resource: rps, cpu, memory, storage, network.
    #[arg(long, default_value = "rps")]
    pub resource: String,
    /// Config whose data dir receives it.
    #[arg(long, short, default_value = crate::up::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Keep only the last N points.
    #[arg(long)]
    pub last: Option<usize>,
    /// Respace points to this step (e.g. `1s`: a 30-minute trace replayed a point a second).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub step: Option<std::time::Duration>,
    /// Shift the series so its last point is now (replay a trace as recent history).
    #[arg(long)]
    pub end_now: bool,
    /// Multiply every value.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

/// Imports a CSV into the store.
pub fn run_import(args: &ImportArgs) -> anyhow::Result<()> {
    let resource = controller::store::Resource::parse(&args.resource).with_context(|| {
        format!(
            "unknown resource {:?} (rps, cpu, memory, storage, network)",
            args.resource
        )
    })?;
    let config = crate::up::load_with_token(&args.config, "unused")?;
    std::fs::create_dir_all(&config.controller.data_dir)?;
    let store = controller::store::Store::open(&config.controller.data_dir.join("umbra.sqlite"))?;
    let replay = controller::history::import::Replay {
        last: args.last,
        step_ms: args.step.map(|d| d.as_millis() as i64),
        end_ms: args.end_now.then(controller::clock::unix_ms),
        scale: args.scale,
    };
    let n = controller::history::import::import_csv(
        &store,
        &args.input,
        &args.workload,
        &args.pool,
        resource,
        replay,
    )?;
    println!(
        "imported {n} samples into {}/{}/{}",
        args.workload, args.pool, args.resource
    );
    Ok(())
}
