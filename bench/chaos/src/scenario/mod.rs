//! The scenarios, each breaking one thing under steady load, and the runner that turns a
//! scenario's panic or error into a row instead of ending the suite.

mod consistency;
mod controller_kill;
mod disk_full;
mod migration;
mod proxy_restart;
mod reload;
mod shadow;
mod upstream;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::summary::{Row, Run};

/// What every scenario is given.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Base request rate (requests/s).
    pub rate: f64,
}

type Body = fn(Options) -> Pin<Box<dyn Future<Output = anyhow::Result<Run>> + Send>>;

/// A named scenario.
pub struct Scenario {
    /// Its name on the command line and in the table.
    pub name: &'static str,
    /// What it does, for `--list`.
    pub about: &'static str,
    body: Body,
}

/// Every scenario, in the order the suite runs them.
pub const ALL: &[Scenario] = &[
    Scenario {
        name: "migration",
        about: "a full migration 0 -> 100% (primary decommissioned) and back",
        body: |o| Box::pin(migration::run(o)),
    },
    Scenario {
        name: "shadow-kill",
        about: "a shadow instance SIGKILLed mid-ramp",
        body: |o| Box::pin(shadow::killed(o)),
    },
    Scenario {
        name: "slow-shadow",
        about: "the shadow instances made slow mid-ramp: the proxy's guard rolls back",
        body: |o| Box::pin(shadow::slow(o)),
    },
    Scenario {
        name: "refuse",
        about: "one of two primary upstreams refusing connections",
        body: |o| Box::pin(upstream::refuse(o)),
    },
    Scenario {
        name: "black-hole",
        about: "one of two primary upstreams accepting and never answering",
        body: |o| Box::pin(upstream::black_hole(o)),
    },
    Scenario {
        name: "reset",
        about: "one of two primary upstreams resetting mid-response, before the head is complete",
        body: |o| Box::pin(upstream::reset_in_head(o)),
    },
    Scenario {
        name: "reset-body",
        about: "one of two primary upstreams resetting mid-response, after the head (part of the body sent)",
        body: |o| Box::pin(upstream::reset_in_body(o)),
    },
    Scenario {
        name: "controller-kill",
        about: "the controller SIGKILLed mid-migration and restarted",
        body: |o| Box::pin(controller_kill::run(o)),
    },
    Scenario {
        name: "reload",
        about: "the proxy's config reloaded 20 times",
        body: |o| Box::pin(reload::run(o)),
    },
    Scenario {
        name: "proxy-restart",
        about: "the proxy SIGKILLed mid-migration under `umbra up`, which restarts it",
        body: |o| Box::pin(proxy_restart::run(o)),
    },
    Scenario {
        name: "disk-full",
        about: "the data directory's disk full mid-migration, then space back",
        body: |o| Box::pin(disk_full::run(o)),
    },
];

/// Runs one scenario on its own task, so a panic in it (a helper's assertion) becomes a
/// missed row with the message.
pub async fn run(s: &Scenario, options: Options) -> Row {
    let started = std::time::Instant::now();
    let outcome = tokio::spawn((s.body)(options)).await;
    eprintln!(
        "[{}] done in {:.0} s",
        s.name,
        started.elapsed().as_secs_f64()
    );
    let error = |text: String| Run {
        samples: Vec::new(),
        fault_start: Duration::ZERO,
        fault_end: Duration::ZERO,
        state_ok: false,
        state: "error".into(),
        exempt: false,
        notes: text,
    };
    let run = match outcome {
        Ok(Ok(run)) => run,
        Ok(Err(e)) => error(format!("{e:#}")),
        Err(e) => error(match e.try_into_panic() {
            Ok(p) => p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()),
            Err(e) => e.to_string(),
        }),
    };
    Row::of(s.name, run)
}

/// Pauses while the load runs (the windows before and after a fault).
pub async fn settle(d: Duration) {
    tokio::time::sleep(d).await;
}

/// How long the load runs before a fault and after it is over.
pub const BEFORE: Duration = Duration::from_secs(5);
/// See [`BEFORE`].
pub const AFTER: Duration = Duration::from_secs(5);

/// Seconds with one decimal, for notes.
pub fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A transition log as `provisioning > ramping×10 > migrated`.
pub fn path_of(states: &[&str]) -> String {
    let mut out: Vec<(String, usize)> = Vec::new();
    for s in states {
        match out.last_mut() {
            Some((last, n)) if last == s => *n += 1,
            _ => out.push((s.to_string(), 1)),
        }
    }
    out.iter()
        .map(|(s, n)| {
            if *n > 1 {
                format!("{s}×{n}")
            } else {
                s.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" > ")
}
