//! The soak: a steady rate through proxy + controller + backends for a long time, a migration
//! and a guard rollback every few minutes, and the RSS and open descriptors of both binaries
//! sampled throughout. The verdict compares the first five minutes with the last five.

use std::time::{Duration, Instant};

use umbra_e2e::metric_value;
use umbra_e2e::procfs::{fds, rss_kib};

use crate::record::{Outcome, Recorder};
use crate::stack::{ChaosStack, get_json, get_text, set_delay};

/// Controller clocks for the soak: unlike the scenarios, the forecaster gets enough history
/// (24 points of 5 s) after two minutes and refits every 30 s, so it runs (and could leak) too.
const CONTROLLER: &str =
    "step = \"5s\"\nscrape_interval = \"500ms\"\nforecast_interval = \"30s\"\ntick = \"250ms\"\n";
/// Time between the starts of two migration cycles.
const CYCLE: Duration = Duration::from_secs(180);
/// When the first cycle starts, after the soak's.
const FIRST_CYCLE: Duration = Duration::from_secs(60);
/// History imported before the start, in the controller's 5 s steps: more than the 4032 points
/// the forecaster reads, so its working set is the steady state's from the first refit. On an
/// empty store it would grow with the history for 5.6 hours (4032 x 5 s), and so would RSS.
const HISTORY_POINTS: usize = 4320;
/// How long a cycle's surge lasts in the imported history (about what the live ones last).
const HISTORY_SURGE: Duration = Duration::from_secs(35);
/// The share of a short soak compared at each end when it is under 15 minutes.
const ENDS: Duration = Duration::from_secs(300);

/// One sample of both processes and of the load since the previous sample.
struct Point {
    at: Duration,
    proxy_rss: Option<u64>,
    proxy_fds: Option<usize>,
    controller_rss: Option<u64>,
    controller_fds: Option<usize>,
    /// Live heap bytes the controller reports (`umbra_heap_allocated_bytes`): what it holds,
    /// where RSS also counts what its allocator keeps.
    controller_heap: Option<u64>,
    /// The most the controller's heap has held since it started (`umbra_heap_peak_bytes`).
    controller_heap_peak: Option<u64>,
    requests: usize,
    failed: usize,
    state: String,
}

/// Runs the soak for `duration` at `rate`, sampling every `every`.
pub async fn run(duration: Duration, rate: f64, every: Duration) -> anyhow::Result<()> {
    let mut c = ChaosStack::with_controller(CONTROLLER, rate, "keep_warm", "30s");
    let history = c.stack.dir.path().join("history.csv");
    write_history(&history, rate)?;
    c.stack.import_every("api", &history, 1.0, "5s");
    c.start().await;
    let proxy = c
        .stack
        .proxy_pid()
        .ok_or_else(|| anyhow::anyhow!("no proxy"))?;
    let controller = c
        .stack
        .controller_pid()
        .ok_or_else(|| anyhow::anyhow!("no controller"))?;
    println!(
        "soak: {} at {rate} requests/s (+{}x surges), a cycle every {}, samples every {}; proxy pid {proxy}, controller pid {controller}",
        humantime::format_duration(duration),
        crate::stack::SURGE,
        humantime::format_duration(CYCLE),
        humantime::format_duration(every),
    );
    println!(
        "| t | proxy RSS MiB | proxy fds | controller RSS MiB | controller heap MiB | heap peak MiB | controller fds | requests | failed | state |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let start = Instant::now();
    // Sampling runs beside the cycles, which take minutes each.
    let sampler = Sampler {
        proxy,
        controller,
        api: c.stack.api,
        rec: c.rec.clone(),
        start,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sampling = tokio::spawn(sampler.run(every, stop_rx));
    let mut cycle = 0u32;
    let mut next_cycle = start + FIRST_CYCLE;
    while start.elapsed() < duration {
        // A cycle takes well under two and a half minutes (its waits are bounded).
        let room = duration.saturating_sub(start.elapsed()) >= Duration::from_secs(150);
        if Instant::now() >= next_cycle && room {
            cycle += 1;
            let outcome = if cycle % 2 == 1 {
                migrate_and_return(&mut c).await
            } else {
                migrate_and_roll_back(&mut c).await
            };
            println!("cycle {cycle}: {outcome}");
            next_cycle += CYCLE;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.stop_load().await;
    stop_tx.send_replace(true);
    let points = sampling.await?;
    let (requests, failed) = points
        .iter()
        .fold((0, 0), |(r, f), p| (r + p.requests, f + p.failed));
    let migrations = c
        .stack
        .controller_metrics()
        .await
        .lines()
        .filter(|l| l.starts_with("umbra_migrations_total{"))
        .map(str::to_string)
        .collect::<Vec<_>>();
    let log = c.stack.log("controller.log");
    println!();
    println!("{}", verdict(&points, duration));
    // That the forecaster and the ramps kept running to the end, not only that memory was flat.
    println!(
        "controller log: {} forecast refits, {} migration transitions, {} lines at ERROR",
        log.matches("forecast refitted").count(),
        log.matches("migration transition").count(),
        log.lines().filter(|l| l.contains("ERROR")).count(),
    );
    println!(
        "requests {requests}, failed {failed}; {cycle} cycles; controller counters: {}",
        migrations.join(", ")
    );
    Ok(())
}

/// What the sampling task needs: the two pids, where to ask the controller its state, and the
/// load's log (drained at each sample).
struct Sampler {
    proxy: u32,
    controller: u32,
    api: std::net::SocketAddr,
    rec: Recorder,
    start: Instant,
}

impl Sampler {
    /// Samples every `every` until `stop`, then once more; prints each row as it is taken.
    async fn run(
        self,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<Point> {
        let mut points = Vec::new();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = tick.tick() => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            let p = self.sample().await;
            println!("{}", row(&p));
            points.push(p);
            if stopping {
                return points;
            }
        }
    }

    async fn sample(&self) -> Point {
        let window = self.rec.drain();
        let state = get_json(format!("http://{}/v1/status", self.api))
            .await
            .and_then(|s| {
                s["workloads"]
                    .as_array()?
                    .iter()
                    .find(|w| w["name"] == "api")?["migration_state"]
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "-".into());
        let metrics = get_text(format!("http://{}/metrics", self.api)).await;
        let read = |name| {
            metrics
                .as_deref()
                .and_then(|m| metric_value(m, name))
                .map(|b| b as u64)
        };
        Point {
            at: self.start.elapsed(),
            proxy_rss: rss_kib(self.proxy),
            proxy_fds: fds(self.proxy),
            controller_rss: rss_kib(self.controller),
            controller_fds: fds(self.controller),
            controller_heap: read("umbra_heap_allocated_bytes"),
            controller_heap_peak: read("umbra_heap_peak_bytes"),
            requests: window.len(),
            failed: window.iter().filter(|s| s.outcome != Outcome::Ok).count(),
            state,
        }
    }
}

fn row(p: &Point) -> String {
    let mib = |k: Option<u64>| k.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0));
    let n = |f: Option<usize>| f.map_or("-".into(), |f| f.to_string());
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        humantime::format_duration(Duration::from_secs(p.at.as_secs())),
        mib(p.proxy_rss),
        n(p.proxy_fds),
        mib(p.controller_rss),
        mib(p.controller_heap.map(|b| b / 1024)),
        mib(p.controller_heap_peak.map(|b| b / 1024)),
        n(p.controller_fds),
        p.requests,
        p.failed,
        p.state
    )
}

/// Median of the first and last windows (five minutes each, a third of a shorter soak) of each
/// measure, and whether it grew: RSS by more than 10%, descriptors by more than 3. Medians,
/// because a guard-rollback cycle holds a hundred slow requests (and their connections) open
/// for a few seconds: a spike, not a leak.
fn verdict(points: &[Point], duration: Duration) -> String {
    let ends = ENDS.min(duration / 3);
    let first: Vec<&Point> = points.iter().filter(|p| p.at <= ends).collect();
    let last: Vec<&Point> = points.iter().filter(|p| p.at + ends >= duration).collect();
    let median = |ps: &[&Point], f: &dyn Fn(&Point) -> Option<f64>| {
        let mut v: Vec<f64> = ps.iter().filter_map(|p| f(p)).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => None,
            n if n % 2 == 1 => Some(v[n / 2]),
            n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
        }
    };
    type Measure = (&'static str, fn(&Point) -> Option<f64>, bool);
    // The heap's peak is in the rows, not here: it can only grow.
    let measures: [Measure; 5] = [
        (
            "proxy RSS MiB",
            |p| p.proxy_rss.map(|k| k as f64 / 1024.0),
            true,
        ),
        ("proxy fds", |p| p.proxy_fds.map(|n| n as f64), false),
        (
            "controller RSS MiB",
            |p| p.controller_rss.map(|k| k as f64 / 1024.0),
            true,
        ),
        (
            "controller heap MiB",
            |p| p.controller_heap.map(|b| b as f64 / (1024.0 * 1024.0)),
            true,
        ),
        (
            "controller fds",
            |p| p.controller_fds.map(|n| n as f64),
            false,
        ),
    ];
    let mut out = format!(
        "verdict (median of the first {} vs the last {}):\n",
        humantime::format_duration(ends),
        humantime::format_duration(ends)
    );
    for (name, f, relative) in measures {
        let (Some(a), Some(b)) = (median(&first, &f), median(&last, &f)) else {
            out.push_str(&format!("- {name}: no samples\n"));
            continue;
        };
        let grew = if relative { b > a * 1.10 } else { b > a + 3.0 };
        // Whether it still moves at the end, or has settled.
        let settled: Vec<f64> = points
            .iter()
            .filter(|p| p.at + 2 * ends >= duration)
            .filter_map(f)
            .collect();
        let (lo, hi) = settled
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        out.push_str(&format!(
            "- {name}: {a:.1} -> {b:.1} ({:+.1}%): {}; range over the last {}: {lo:.1} to {hi:.1}\n",
            (b - a) / a.max(1e-9) * 100.0,
            if grew { "GROWING" } else { "flat" },
            humantime::format_duration(2 * ends),
        ));
    }
    out
}

/// Writes `HISTORY_POINTS` of demand 5 s apart, ending now: the base `rate`, and the surge
/// where the soak's cycles will put it (`FIRST_CYCLE` after now, every `CYCLE`), so the
/// forecast the controller starts from agrees with the load it will see.
fn write_history(path: &std::path::Path, rate: f64) -> anyhow::Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let (first, cycle, surge) = (
        FIRST_CYCLE.as_secs() as i64,
        CYCLE.as_secs() as i64,
        HISTORY_SURGE.as_secs() as i64,
    );
    let mut csv = String::from("timestamp,value\n");
    for i in (0..HISTORY_POINTS as i64).rev() {
        let t = now - 5 * i;
        let surging = (t - now - first).rem_euclid(cycle) < surge;
        let level = if surging {
            rate * (1.0 + crate::stack::SURGE)
        } else {
            rate
        };
        // +-3% of noise, as measured demand has (a flat line is a degenerate fit).
        let noise = ((i * 2_654_435_761) % 1000) as f64 / 1000.0 * 0.06 - 0.03;
        let value = level * (1.0 + noise);
        csv.push_str(&format!("{t},{value}\n"));
    }
    std::fs::write(path, csv)?;
    Ok(())
}

/// Surge until migrated, hold, then calm until the controller returns to primary.
async fn migrate_and_return(c: &mut ChaosStack) -> String {
    let t = Instant::now();
    c.surge();
    let migrated = c.wait_state(&["migrated"], Duration::from_secs(90)).await;
    let to_full = t.elapsed();
    tokio::time::sleep(Duration::from_secs(15)).await;
    c.calm().await;
    let t = Instant::now();
    let back = c.wait_state(&["idle"], Duration::from_secs(60)).await;
    format!(
        "migration {} in {:.0} s, return {} in {:.0} s",
        if migrated.is_some() {
            "done"
        } else {
            "NOT done"
        },
        to_full.as_secs_f64(),
        if back.is_some() { "done" } else { "NOT done" },
        t.elapsed().as_secs_f64()
    )
}

/// Surge, then make the shadow slow mid-ramp so the guard rolls back; calm and heal it.
async fn migrate_and_roll_back(c: &mut ChaosStack) -> String {
    c.surge();
    let ramping = c.weight_at_least(0.3, Duration::from_secs(90)).await;
    let members = c.shadow_members().await;
    if let Err(e) = set_delay(&members, 600).await {
        println!("slowing the shadow: {e:#}");
    }
    let t = Instant::now();
    let rolled = c
        .wait_state(&["rolled_back"], Duration::from_secs(30))
        .await;
    let took = t.elapsed();
    c.calm().await;
    if let Err(e) = set_delay(&members, 0).await {
        println!("healing the shadow: {e:#}");
    }
    let idle = c.wait_state(&["idle"], Duration::from_secs(60)).await;
    format!(
        "ramp {}, guard rollback {} in {:.1} s, idle again {}",
        if ramping {
            "reached 0.3"
        } else {
            "did NOT reach 0.3"
        },
        if rolled.is_some() { "done" } else { "NOT done" },
        took.as_secs_f64(),
        if idle.is_some() { "yes" } else { "NO" },
    )
}
