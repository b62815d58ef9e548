//! `umbra demo`'s options, and the defaults of a full run and of `--quick`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use super::observe::FaultKind;

/// The trace `umbra demo` replays without `--trace`, relative to the repository root.
pub const DEFAULT_TRACE: &str = "../shared/data/traces/numenta-NAB/nyc_taxi.csv";
/// The policy without `--policy` (`config/demo-policy.toml`, built in).
pub const DEMO_POLICY: &str = include_str!("../../../config/demo-policy.toml");
/// Primary instances: two, so that the primary pool is a pool and one slow instance does not
/// decide its latency.
pub const PRIMARY_INSTANCES: u32 = 2;

/// Arguments of `umbra demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Demand trace CSV (`timestamp,value` or `ds,y`) [default: ../shared/data/traces/
    /// numenta-NAB/nyc_taxi.csv beside the repository, found from the current directory or
    /// from this binary's location].
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Trace seconds per wall-clock second; one trace step must last whole seconds
    /// [default: 900, a day in 96 s; with --quick 1800].
    #[arg(long)]
    pub speed: Option<u32>,
    /// Trace time before the live window imported as the controller's history.
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub history: Duration,
    /// Where the live window starts, as trace time after the trace's first sample (the eighth
    /// day's quietest hour of nyc_taxi.csv).
    #[arg(long, default_value = "7d4h", value_parser = humantime::parse_duration)]
    pub from: Duration,
    /// Trace time replayed live [default: 24h; with --quick 23h].
    #[arg(long, value_parser = humantime::parse_duration)]
    pub window: Option<Duration>,
    /// Multiplies trace values into requests/s [default: the window's peak at 1.3 times
    /// primary capacity].
    #[arg(long)]
    pub scale: Option<f64>,
    /// Policy file for the controller [default: config/demo-policy.toml, built in].
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// How the shadow pool is broken once traffic is on it.
    #[arg(long, value_enum, default_value = "delay")]
    pub fault: FaultKind,
    /// A short run for tests: 23 trace hours at 1800x, 46 s of live traffic.
    #[arg(long)]
    pub quick: bool,
    /// Keep config, state and logs here [default: a temporary directory, removed at exit].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Write the HTML report here.
    #[arg(long, default_value = "umbra-demo.html")]
    pub report: PathBuf,
    /// Print one JSON document on stdout instead of the story (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

impl DemoArgs {
    /// Trace seconds per wall second.
    pub fn speed(&self) -> u32 {
        self.speed.unwrap_or(if self.quick { 1800 } else { 900 })
    }

    /// Trace time replayed live.
    pub fn window(&self) -> Duration {
        self.window.unwrap_or(if self.quick {
            // Ends at 03:00, after demand has fallen back under primary capacity.
            Duration::from_secs(23 * 3600)
        } else {
            Duration::from_secs(86_400)
        })
    }

    /// The trace file: `--trace`, else the default looked up from the current directory and
    /// then from the repository this binary was built in (`target/<profile>/umbra`).
    pub fn trace_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(t) = &self.trace {
            return Ok(t.clone());
        }
        let mut tried = vec![PathBuf::from(DEFAULT_TRACE)];
        if let Some(root) = std::env::current_exe()
            .ok()
            .as_deref()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .and_then(Path::parent)
        {
            tried.push(root.join(DEFAULT_TRACE));
        }
        tried.iter().find(|p| p.exists()).cloned().with_context(|| {
            let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
            format!(
                "no trace at {}; pass --trace FILE (a `timestamp,value` CSV)",
                list.join(" or ")
            )
        })
    }

    /// The policy text and where it came from.
    pub fn policy_text(&self) -> anyhow::Result<(String, String)> {
        match &self.policy {
            Some(p) => Ok((
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
                p.display().to_string(),
            )),
            None => Ok((
                DEMO_POLICY.to_string(),
                "config/demo-policy.toml (built in)".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_is_valid_and_fits_the_demo() {
        let p = config::parse_policy(Path::new("demo.toml"), DEMO_POLICY).expect("valid");
        assert_eq!(p.sizing.instance_capacity(), 50.0);
        // Provisioning and ten ramp steps must fit in the lead time, or the shadow would be
        // late for the shortage it was provisioned for.
        let ramp_ms = 10 * p.migration.ramp.interval_ms();
        assert!(p.trigger.lead_ms() >= ramp_ms + p.startup.as_millis() as u64);
        assert_eq!(p.migration.ramp.at_full(), policies::AtFull::KeepWarm);
    }
}
