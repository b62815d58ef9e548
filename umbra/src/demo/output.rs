//! What the demo prints and writes: the plan up front, progress on stderr, then the story, the
//! clients' numbers, the simulated comparison and the HTML report (or all of it as JSON).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use config::WorkloadPolicy;
use serde::Serialize;

use super::args::DemoArgs;
use super::compare::Comparison;
use super::load::Sample;
use super::narrative::{Facts, Line, Transition, format_line, format_phases, narrate};
use super::observe::{FAULT_BELOW, Observations};
use super::plan::{DemoPlan, date_label, trace_label};
use super::report::{Page, render};
use super::stats::{by_phase, per_bucket};
use crate::cli::simulate::format_table;

/// The live run's raw material.
pub struct Live<'a> {
    /// Every request.
    pub samples: &'a [Sample],
    /// What the observer saw.
    pub seen: &'a Observations,
    /// The controller's transitions, oldest first.
    pub transitions: &'a [Transition],
    /// The policy's trigger threshold (share of primary capacity).
    pub threshold: f64,
}

/// What the caller needs back.
pub struct Finished {
    /// Parts of the story that did not happen.
    pub missing: Vec<String>,
}

/// The run's output.
pub struct Output<'a> {
    json: bool,
    plan: &'a DemoPlan,
    trace: PathBuf,
    report: PathBuf,
    settings: Vec<String>,
    data_dir: Option<PathBuf>,
    slice_csv: PathBuf,
}

impl<'a> Output<'a> {
    /// Describes the plan.
    pub fn new(
        args: &DemoArgs,
        trace: &Path,
        plan: &'a DemoPlan,
        policy: &WorkloadPolicy,
        policy_source: &str,
        dir: &Path,
        slice_csv: &Path,
    ) -> Self {
        let capacity = plan.primary_capacity();
        let (lo, hi) = plan.demand.series().values[plan.history_points - 1..]
            .iter()
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        let settings = vec![
            format!(
                "trace {}: {} s steps; {} points ({} to {}) imported as recent history",
                file_name(trace),
                plan.slice.step,
                plan.history_points,
                date_label(plan.slice.start),
                date_label(plan.start()),
            ),
            format!(
                "live: {} to {} at {}x, one trace step every {} s: {:.0} s of live traffic",
                date_label(plan.start()),
                date_label(plan.end()),
                plan.speed,
                plan.wall_step.as_secs(),
                plan.wall_duration().as_secs_f64()
            ),
            format!(
                "load: x{:.6} ({}) -> {lo:.0} to {hi:.0} req/s through umbra-proxy; primary {} x \
                 `umbra backend --capacity {}` = {capacity:.0} req/s, so the peak ({:.0} req/s at \
                 {}) is {:.1}x what primary serves",
                plan.scale,
                if plan.scale_chosen {
                    "chosen: peak at 1.3x primary capacity"
                } else {
                    "--scale"
                },
                plan.primary_instances,
                plan.instance_capacity,
                plan.peak.1,
                trace_label(plan.peak.0 as f64),
                plan.peak.1 / capacity
            ),
            format!(
                "policy {policy_source}: migrate when the q{} forecast exceeds {:.0}% of primary \
                 capacity within {} s; ramp {} s per step; primary kept warm",
                policy.quantile,
                policy.trigger.threshold() * 100.0,
                policy.trigger.lead_ms() / 1000,
                policy.migration.ramp.interval_ms() as f64 / 1000.0,
            ),
            format!(
                "fault ({:?}): {}, once all traffic is on the shadow and demand is past its peak \
                 and under {:.0}% of primary capacity",
                args.fault,
                args.fault.describe(),
                FAULT_BELOW * 100.0
            ),
        ];
        Output {
            json: args.json,
            plan,
            trace: trace.to_path_buf(),
            report: args.report.clone(),
            settings,
            data_dir: args.data_dir.as_ref().map(|_| dir.to_path_buf()),
            slice_csv: slice_csv.to_path_buf(),
        }
    }

    /// A progress line on stderr.
    pub fn say(&self, text: &str) {
        eprintln!("umbra demo: {text}");
    }

    /// The plan, before anything starts.
    pub fn header(&self) {
        if self.json {
            for line in &self.settings {
                eprintln!("  {line}");
            }
            return;
        }
        println!("umbra demo: {}", file_name(&self.trace));
        for line in &self.settings {
            println!("  {line}");
        }
        println!();
    }

    /// Numbers, story, report; printed as text or JSON.
    pub fn finish(&self, live: Live<'_>, comparison: &Comparison) -> anyhow::Result<Finished> {
        let plan = self.plan;
        let (phases, all) = by_phase(live.samples);
        let buckets = per_bucket(live.samples, 1000);
        let story = narrate(&Facts {
            plan,
            transitions: live.transitions,
            seen: live.seen,
            buckets: &buckets,
            all: all.as_ref(),
            threshold: live.threshold,
        });
        let missing = missing(live.transitions, live.seen);
        let title = file_name(&self.trace);
        let html = render(&Page {
            title: &title,
            plan,
            settings: &self.settings,
            story: &story,
            phases: &phases,
            all: all.as_ref(),
            buckets: &buckets,
            seen: live.seen,
            comparison,
        });
        std::fs::write(&self.report, html)
            .with_context(|| format!("writing {}", self.report.display()))?;
        let command = match &self.data_dir {
            Some(_) => comparison.command.clone(),
            None => comparison.command.replace(
                &self.slice_csv.display().to_string(),
                "<the slice; keep it with --data-dir>",
            ),
        };
        if self.json {
            let doc = Json {
                trace: self.trace.display().to_string(),
                settings: Settings {
                    speed: plan.speed,
                    wall_step_s: plan.wall_step.as_secs(),
                    wall_duration_s: plan.wall_duration().as_secs_f64(),
                    history_points: plan.history_points,
                    window_start: trace_label(plan.start() as f64),
                    window_end: trace_label(plan.end() as f64),
                    scale: plan.scale,
                    instance_capacity: plan.instance_capacity,
                    primary_instances: plan.primary_instances,
                    primary_capacity_rps: plan.primary_capacity(),
                    peak_rps: plan.peak.1,
                    lines: &self.settings,
                    data_dir: self.data_dir.as_ref().map(|d| d.display().to_string()),
                    slice: self
                        .data_dir
                        .as_ref()
                        .map(|_| self.slice_csv.display().to_string()),
                },
                story: &story,
                transitions: live.transitions,
                states: &live.seen.states,
                fault: live.seen.fault.as_ref(),
                live: LiveJson {
                    phases: &phases,
                    all: all.as_ref(),
                },
                comparison: ComparisonJson {
                    predictive: &comparison.outcome.predictive,
                    reactive: &comparison.outcome.reactive,
                    model: &comparison.model,
                    command: &command,
                },
                report: self.report.display().to_string(),
                missing: &missing,
            };
            println!("{}", serde_json::to_string_pretty(&doc)?);
        } else {
            println!("What happened");
            for line in &story {
                println!("{}", format_line(line));
            }
            println!("\nWhat clients saw");
            print!("{}", format_phases(&phases, all.as_ref()));
            if let Some(f) = &live.seen.fault {
                println!(
                    "  fault -> proxy rollback: {}; -> controller reaction: {}",
                    f.rollback_after_ms
                        .map_or_else(|| "none".to_string(), |ms| format!("{ms} ms")),
                    reaction_ms(live.transitions, f.proxy_rollback_at_ms)
                        .map_or_else(|| "none".to_string(), |ms| format!("{ms} ms later")),
                );
            }
            println!("\nThe same trace, simulated: Umbra vs the Kubernetes HPA");
            for line in &comparison.lines {
                println!("  {line}");
            }
            println!("  the same table: {command}\n");
            print!("{}", format_table(&comparison.outcome));
            println!("\nreport: {}", self.report.display());
            if let Some(d) = &self.data_dir {
                println!("state and logs: {}", d.display());
            }
            for m in &missing {
                println!("NOT SHOWN: {m}");
            }
        }
        Ok(Finished { missing })
    }
}

/// ms from the proxy's rollback to the controller logging `rolled_back`.
fn reaction_ms(transitions: &[Transition], proxy_at: Option<i64>) -> Option<i64> {
    let proxy_at = proxy_at?;
    transitions
        .iter()
        .find(|t| t.to == "rolled_back" && t.at_ms >= proxy_at)
        .map(|t| t.at_ms - proxy_at)
}

/// The parts of the story that did not happen, in words.
fn missing(transitions: &[Transition], seen: &Observations) -> Vec<String> {
    let mut out = Vec::new();
    let order = ["provisioning", "ramping", "migrated"];
    let mut at = 0;
    for t in transitions {
        if at < order.len() && t.to == order[at] {
            at += 1;
        }
    }
    if at < order.len() {
        out.push(format!("no migration reached {:?}", order[at]));
    }
    match &seen.fault {
        None => out.push("no fault was injected (traffic never all on the shadow)".into()),
        Some(f) => {
            if f.rollback_after_ms.is_none() {
                out.push("the proxy's guard did not roll the shadow back".into());
            }
            let reacted = transitions
                .iter()
                .any(|t| t.to == "rolled_back" && t.at_ms >= f.injected_at_ms);
            if !reacted {
                out.push("the controller did not log a rollback after the fault".into());
            }
        }
    }
    out
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[derive(Serialize)]
struct Json<'a> {
    trace: String,
    settings: Settings<'a>,
    story: &'a [Line],
    transitions: &'a [Transition],
    states: &'a [super::observe::StateChange],
    fault: Option<&'a super::observe::FaultRecord>,
    live: LiveJson<'a>,
    comparison: ComparisonJson<'a>,
    report: String,
    missing: &'a [String],
}

#[derive(Serialize)]
struct Settings<'a> {
    speed: u32,
    wall_step_s: u64,
    wall_duration_s: f64,
    history_points: usize,
    window_start: String,
    window_end: String,
    scale: f64,
    instance_capacity: f64,
    primary_instances: u32,
    primary_capacity_rps: f64,
    peak_rps: f64,
    lines: &'a [String],
    data_dir: Option<String>,
    slice: Option<String>,
}

#[derive(Serialize)]
struct LiveJson<'a> {
    phases: &'a [super::stats::PhaseStats],
    all: Option<&'a super::stats::PhaseStats>,
}

#[derive(Serialize)]
struct ComparisonJson<'a> {
    predictive: &'a simulate::Summary,
    reactive: &'a simulate::Summary,
    model: &'a str,
    command: &'a str,
}
