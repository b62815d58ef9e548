//! Light example traffic for `umbra up`: a slow wave of GETs through the proxy to every
//! workload, so a fresh start shows observed rates and, after the first refits, forecasts.

use std::f64::consts::TAU;
use std::net::SocketAddr;
use std::time::Duration;

use config::{HostPattern, WorkloadSpec};
use tokio::sync::watch;

/// One full swing of the wave: long enough for a forecast to see a shape, short enough to
/// see it within a first session.
const PERIOD_S: f64 = 600.0;
/// How often requests are sent; each tick sends what the rate owes since the last.
const TICK: Duration = Duration::from_millis(100);

/// Where one workload's example requests go.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// `Host` header, when the workload matches on host.
    pub host: Option<String>,
    /// Request path: the workload's prefix.
    pub path: String,
}

/// One target per workload the plain listener serves (workloads that redirect to HTTPS are
/// left out: they would only count redirects).
pub fn targets(workloads: &[WorkloadSpec]) -> Vec<Target> {
    workloads
        .iter()
        .filter(|w| !w.redirect_https)
        .map(|w| Target {
            host: w.hosts.first().map(|h| match h {
                HostPattern::Exact(host) => host.clone(),
                HostPattern::Subdomains(suffix) => format!("www.{suffix}"),
            }),
            path: w.path_prefix.clone(),
        })
        .collect()
}

/// Requests/s for target `i` at `t_s` seconds: `base` ± 50% on a sine, each target a little
/// out of phase with the others.
pub fn rate_at(base: f64, t_s: f64, i: usize) -> f64 {
    let phase = i as f64 * 0.7;
    base * (1.0 + 0.5 * (TAU * t_s / PERIOD_S + phase).sin())
}

/// Sends until `stop` turns true. Failures are expected while things start or migrate, and
/// are not this load's business: the proxy's metrics count them.
pub async fn run(
    proxy: SocketAddr,
    targets: Vec<Target>,
    base_rps: f64,
    mut stop: watch::Receiver<bool>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "example load not started");
            return;
        }
    };
    let started = tokio::time::Instant::now();
    let mut owed = vec![0.0_f64; targets.len()];
    let mut tick = tokio::time::interval(TICK);
    tracing::info!(%proxy, rps = base_rps, workloads = targets.len(), "example load started");
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let t = started.elapsed().as_secs_f64();
        for (i, target) in targets.iter().enumerate() {
            owed[i] += rate_at(base_rps, t, i) * TICK.as_secs_f64();
            while owed[i] >= 1.0 {
                owed[i] -= 1.0;
                let mut req = client.get(format!("http://{proxy}{}", target.path));
                if let Some(host) = &target.host {
                    req = req.header(reqwest::header::HOST, host);
                }
                tokio::spawn(async move {
                    if let Err(e) = req.send().await {
                        tracing::debug!(error = %e, "example request failed");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_swings_half_either_way_around_the_base_and_averages_to_it() {
        let samples: Vec<f64> = (0..600).map(|s| rate_at(4.0, s as f64, 0)).collect();
        let (lo, hi) = samples
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        assert!(
            (lo - 2.0).abs() < 0.01 && (hi - 6.0).abs() < 0.01,
            "{lo}..{hi}"
        );
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 4.0).abs() < 0.01, "{mean}");
        assert!((rate_at(4.0, 0.0, 0) - rate_at(4.0, 0.0, 1)).abs() > 0.5);
    }

    #[test]
    fn targets_carry_the_host_and_prefix_each_workload_matches_on() {
        let text = r#"
            [proxy]
            listen = "127.0.0.1:8080"
            [[workloads]]
            name = "api"
            hosts = ["api.example.com"]
            path_prefix = "/v1"
            primary = ["127.0.0.1:7001"]
            [[workloads]]
            name = "web"
            hosts = ["*.example.org"]
            primary = ["127.0.0.1:7002"]
            [[workloads]]
            name = "secure"
            path_prefix = "/secure"
            redirect_https = true
            primary = ["127.0.0.1:7003"]
        "#;
        let c = config::parse(std::path::Path::new("umbra.toml"), text).expect("valid");
        assert_eq!(
            targets(&c.workloads),
            vec![
                Target {
                    host: Some("api.example.com".into()),
                    path: "/v1".into()
                },
                Target {
                    host: Some("www.example.org".into()),
                    path: "/".into()
                },
            ]
        );
    }
}
