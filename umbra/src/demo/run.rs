//! The run: plan, start the stack, import history, replay the window live while observing and
//! breaking things, stop everything, then tell what happened.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::watch;

use super::args::{DemoArgs, PRIMARY_INSTANCES};
use super::compare::compare;
use super::load::{PhaseCell, run_load};
use super::narrative::Transition;
use super::observe::{Observations, Observer};
use super::output::{Live, Output};
use super::plan::{DemoPlan, PlanOptions, write_csv};
use super::stack::{Stack, WORKLOAD};
use controller::history::import::{Replay, import_csv};
use controller::store::{Resource, Store};

/// After the window, how long to wait for the controller to log its reaction to the fault.
const REACTION_WAIT: Duration = Duration::from_secs(5);

/// What the live part produced.
struct LiveRun {
    samples: Vec<super::load::Sample>,
    seen: Observations,
    transitions: Vec<Transition>,
}

/// Runs the demo; `dir` holds its config, state and logs.
pub async fn run(args: &DemoArgs, dir: &Path) -> anyhow::Result<()> {
    let trace_path = args.trace_path()?;
    let grid = forecast::read_series(&trace_path, &forecast::GridOptions::default())
        .with_context(|| format!("reading {}", trace_path.display()))?;
    let (policy_text, policy_source) = args.policy_text()?;
    let policy = config::parse_policy(Path::new("demo.toml"), &policy_text)
        .with_context(|| format!("policy {policy_source}"))?;
    let plan = Arc::new(DemoPlan::new(
        &grid.series,
        &PlanOptions {
            history: args.history,
            from: args.from,
            window: args.window(),
            speed: args.speed(),
            scale: args.scale,
            instance_capacity: policy.sizing.instance_capacity(),
            primary_instances: PRIMARY_INSTANCES,
        },
    )?);
    let slice_csv = dir.join("trace-slice.csv");
    let history_csv = dir.join("history.csv");
    write_csv(&plan.slice, &slice_csv)?;
    write_csv(&plan.history(), &history_csv)?;
    let out = Output::new(
        args,
        &trace_path,
        &plan,
        &policy,
        &policy_source,
        dir,
        &slice_csv,
    );
    out.header();

    let mut stack = Stack::start(dir, &plan, &policy_text).await?;
    // Whatever happens from here (an error, Ctrl-C), the stack is stopped before returning.
    let live = tokio::select! {
        r = live(&mut stack, &plan, args, &history_csv) => r,
        _ = interrupted() => Err(anyhow::anyhow!("interrupted")),
    };
    out.say("stopping the proxy, the controller and every instance it started");
    let stopped = stack.stop().await;
    let live = live?;
    stopped?;

    out.say("simulating the same slice with `umbra simulate`'s replay");
    let comparison = {
        let (plan, slice_csv) = (Arc::clone(&plan), slice_csv.clone());
        tokio::task::spawn_blocking(move || compare(&plan, &slice_csv)).await??
    };
    let result = out.finish(
        Live {
            samples: &live.samples,
            seen: &live.seen,
            transitions: &live.transitions,
            threshold: policy.trigger.threshold(),
        },
        &comparison,
    )?;
    anyhow::ensure!(
        result.missing.is_empty(),
        "the demo did not show everything it should: {}; logs in {}",
        result.missing.join(", "),
        dir.join("data/logs").display()
    );
    Ok(())
}

/// Waits for Ctrl-C or SIGTERM.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

async fn live(
    stack: &mut Stack,
    plan: &Arc<DemoPlan>,
    args: &DemoArgs,
    history_csv: &Path,
) -> anyhow::Result<LiveRun> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    stack.wait_serving(&http).await?;

    // History ends now, so the first live point follows it on the controller's grid. Imported
    // only now: the forecaster then never sees a gap between history and live traffic.
    let store = Store::open(&stack.config.controller.data_dir.join("umbra.sqlite"))?;
    let imported = import_csv(
        &store,
        history_csv,
        WORKLOAD,
        "all",
        Resource::Rps,
        Replay {
            last: None,
            step_ms: Some(plan.wall_step.as_millis() as i64),
            end_ms: Some(controller::clock::unix_ms()),
            scale: plan.scale,
        },
    )?;
    drop(store);
    tracing::info!(
        points = imported,
        step_ms = plan.wall_step.as_millis() as u64,
        "history imported"
    );

    let started = Instant::now();
    let started_unix_ms = controller::clock::unix_ms();
    let phase = PhaseCell::default();
    let (stop_tx, stop_rx) = watch::channel(false);
    let observer = Observer {
        http: http.clone(),
        api: stack.api(),
        admin: stack.admin(),
        plan: Arc::clone(plan),
        fault: args.fault,
        progress: true,
        started,
        started_unix_ms,
    };
    let watching = tokio::spawn(observer.run(phase.clone(), stop_rx));
    let load = {
        let (rate_plan, duration) = (Arc::clone(plan), plan.wall_duration());
        run_load(
            format!("http://{}/", stack.listen()),
            move |at| rate_plan.rate_at(at),
            duration,
            phase,
        )
        .await
    };
    let transitions = reaction(&http, stack, started_unix_ms).await;
    // The observer only reads; it ends at the next poll.
    let _sent = stop_tx.send(true);
    let seen = watching.await.context("observer task")?;
    Ok(LiveRun {
        samples: load?,
        seen,
        transitions,
    })
}

/// The controller's transitions, oldest first, once it has logged its reaction to a proxy
/// rollback (or after `REACTION_WAIT`).
async fn reaction(http: &reqwest::Client, stack: &Stack, started_unix_ms: i64) -> Vec<Transition> {
    let deadline = Instant::now() + REACTION_WAIT;
    loop {
        let got = transitions(http, stack, started_unix_ms).await;
        let done = match &got {
            Ok(list) => {
                let migrated = list.iter().any(|t| t.to == "migrated");
                !migrated
                    || list
                        .iter()
                        .any(|t| t.to == "rolled_back" && t.from == "migrated")
            }
            Err(_) => false,
        };
        if done || Instant::now() >= deadline {
            return got.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "reading the controller's transitions failed");
                Vec::new()
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn transitions(
    http: &reqwest::Client,
    stack: &Stack,
    started_unix_ms: i64,
) -> anyhow::Result<Vec<Transition>> {
    let mut list: Vec<Transition> = http
        .get(format!(
            "http://{}/v1/transitions?workload={WORKLOAD}&limit=1000",
            stack.api()
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    list.sort_by_key(|t| t.ts_ms);
    for t in &mut list {
        t.at_ms = t.ts_ms - started_unix_ms;
    }
    Ok(list)
}
