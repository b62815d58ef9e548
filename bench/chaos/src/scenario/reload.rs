//! The proxy's config reloaded 20 times (SIGHUP) under load, alternating between two valid
//! files; the run-time weight set through the admin API must survive every reload.

use std::time::{Duration, Instant};

use umbra_e2e::ProxyProcess;
use umbra_e2e::fault::FaultyUpstream;

use super::{AFTER, BEFORE, Options, secs, settle};
use crate::load::Load;
use crate::record::Recorder;
use crate::stack::{GUARD, PROXY_TABLES, get_json};
use crate::summary::Run;

const RELOADS: usize = 20;
const WEIGHT: f64 = 0.3;

/// Runs the scenario.
pub async fn run(o: Options) -> anyhow::Result<Run> {
    let (p1, p2, s1) = (
        FaultyUpstream::start("p1").await,
        FaultyUpstream::start("p2").await,
        FaultyUpstream::start("s1").await,
    );
    let body = format!(
        "{PROXY_TABLES}[[workloads]]\nname = \"api\"\nprimary = [\"{}\", \"{}\"]\nshadow = [\"{}\"]\n\n{GUARD}",
        p1.addr(),
        p2.addr(),
        s1.addr()
    );
    let proxy = ProxyProcess::start(&body).await;
    anyhow::ensure!(
        proxy.set_weight("api", WEIGHT).await == 200,
        "setting the weight failed"
    );
    let original = std::fs::read_to_string(&proxy.config_path)?;
    // The second file adds a workload and changes a guard limit: a real change each time.
    let changed = format!(
        "{}\n[[workloads]]\nname = \"other\"\npath_prefix = \"/other\"\nprimary = [\"{}\"]\n",
        original.replace("max_p99_ms = 250", "max_p99_ms = 300"),
        p1.addr()
    );
    let rec = Recorder::new();
    let load = Load::start(&rec, proxy.url("/"), o.rate);
    settle(BEFORE).await;

    let fault_start = Instant::now();
    for i in 0..RELOADS {
        let text = if i % 2 == 0 { &changed } else { &original };
        // Renamed into place so neither the signal nor the file watch reads half a file.
        let tmp = proxy.config_path.with_extension("toml.next");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &proxy.config_path)?;
        proxy.sighup();
        settle(Duration::from_millis(400)).await;
    }
    let fault_end = Instant::now();
    let took = fault_start.elapsed();
    let s1_before = s1.hits();
    settle(AFTER).await;
    load.stop().await;

    let metrics = proxy.metrics().await;
    let count = |result: &str| -> u64 {
        let key = format!("umbra_config_reloads_total{{result=\"{result}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let (ok, errors) = (count("ok"), count("error"));
    let weight = get_json(proxy.admin_url("/v1/workloads/api"))
        .await
        .and_then(|w| w["shadow_weight"].as_f64());
    let shadow_served = s1.hits() > s1_before;
    let state_ok = ok >= RELOADS as u64
        && errors == 0
        && weight == Some(WEIGHT)
        && shadow_served
        && proxy_running(&proxy).await;
    Ok(Run {
        samples: rec.snapshot(),
        fault_start: rec.at(fault_start),
        fault_end: rec.at(fault_end),
        state_ok,
        state: format!(
            "{ok} reloads applied, {errors} rejected; weight {} (set {WEIGHT} at run time)",
            weight.map_or("-".into(), |w| w.to_string())
        ),
        exempt: false,
        notes: format!(
            "{RELOADS} SIGHUPs in {}, alternating two files (a workload added and removed, a guard limit changed)",
            secs(took)
        ),
    })
}

async fn proxy_running(proxy: &ProxyProcess) -> bool {
    get_json(proxy.admin_url("/v1/workloads")).await.is_some()
}
