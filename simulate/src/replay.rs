//! The replay loop: one demand trace, 15 s at a time, through the predictive controller and
//! the HPA side by side, with the forecaster only ever shown the past.

use serde::Serialize;

use super::SimulateError;
use super::episodes::{Episode, Episodes, StepView};
use super::forecasting::{DemandForecaster, ForecastView};
use super::oracle::perfect_foresight;
use super::predictive::{Decision, Predictive};
use super::reactive::Reactive;
use super::schedule::RefitSchedule;
use super::settings::Settings;
use super::summary::{SHORT_EPSILON, Summary};
use super::trace::DemandTrace;

/// Simulation step, seconds: the HPA's default sync period, and the resolution at which
/// capacity is compared with demand.
pub const STEP_S: i64 = 15;

/// Shortage episodes an outcome lists.
pub const WORST_EPISODES: usize = 5;

/// Share of the progress shown that is forecasting ahead (most of a replay's time).
const FORECAST_SHARE: f64 = 0.9;

/// The learned rise is read over the last week: every weekday's bursts, and recent enough to
/// follow a series whose character changes.
const RISE_WINDOW_S: i64 = 7 * 86_400;

/// One point of the report's time axis (one trace sample long).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelinePoint {
    /// Unix seconds at the bucket's start.
    pub time: i64,
    /// Highest demand in the bucket, requests/s.
    pub demand: f64,
    /// Highest upper-quantile forecast for the bucket, as known while it happened.
    pub upper: Option<f64>,
    /// Lowest ready capacity of the predictive strategy (both pools), requests/s.
    pub predictive_capacity: f64,
    /// Lowest ready capacity of the HPA, requests/s.
    pub reactive_capacity: f64,
    /// Seconds of the bucket the predictive strategy was short.
    pub predictive_short_s: i64,
    /// Seconds of the bucket the HPA was short.
    pub reactive_short_s: i64,
}

/// Everything a replay found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The predictive strategy.
    pub predictive: Summary,
    /// The HPA baseline.
    pub reactive: Summary,
    /// Perfect foresight on the same trace ([`perfect_foresight`]): the floor on cost.
    pub oracle: Summary,
    /// The predictive strategy's shortage episodes, all of them.
    pub episode_count: usize,
    /// Its worst episodes by unserved requests, worst first (at most [`WORST_EPISODES`]).
    pub episodes: Vec<Episode>,
    /// The time axis for the report.
    pub timeline: Vec<TimelinePoint>,
    /// Phase changes and proxy rollbacks, in order (warm-up included).
    pub decisions: Vec<Decision>,
    /// Unix seconds from which results are counted.
    pub counted_from: i64,
    /// Forecasts made, and those that failed (the controller then kept the previous one).
    pub forecasts: u64,
    /// Forecasts that failed.
    pub forecast_failures: u64,
}

/// Replays `trace`; `progress` is told the share done now and then.
pub fn replay(
    trace: &DemandTrace,
    settings: &Settings,
    forecaster: &mut dyn DemandForecaster,
    progress: &mut dyn FnMut(f64),
) -> Result<Outcome, SimulateError> {
    settings.validate(trace)?;
    let (start, end) = (trace.start(), trace.end());
    let counted_from = start + settings.warmup_s;
    let capacity = settings.instance_capacity;
    let mut predictive = Predictive::new(
        settings.policy.clone(),
        capacity,
        settings.delays,
        settings.guard,
        settings.primary_instances,
    );
    let hpa_target = f64::from(settings.hpa.target_percent) / 100.0;
    let initial = (trace.rate_at(start) / (capacity * hpa_target))
        .ceil()
        .max(1.0) as u32;
    let mut reactive = Reactive::new(settings.hpa.clone(), initial, capacity, settings.delays);

    // The refits depend on the trace and the settings alone, so the forecaster may make
    // them all before the first step (and in parallel).
    let schedule = RefitSchedule::new(trace, settings);
    forecaster.prepare(trace, &schedule.times, schedule.steps, &mut |done| {
        progress(done * FORECAST_SHARE)
    });
    let mut refits = schedule.times.iter().copied().peekable();
    let mut view: Option<ForecastView> = None;
    let mut rise = 0.0;
    // The rise a pool must absorb is the one within the start-up instances really take here,
    // whatever the policy file declares (the CLI makes the two agree).
    let startup_s = settings.delays.startup as f64;
    let mut out = Outcome {
        predictive: Summary {
            migrations: Some(0),
            migration_attempts: Some(0),
            rollbacks: Some(0),
            proxy_rollbacks: Some(0),
            primary_instance_hours: Some(0.0),
            minutes_on_shadow: Some(0.0),
            ..Summary::default()
        },
        reactive: Summary::default(),
        oracle: perfect_foresight(trace, capacity, settings.delays.startup, counted_from),
        episode_count: 0,
        episodes: Vec::new(),
        timeline: Vec::new(),
        decisions: Vec::new(),
        counted_from,
        forecasts: 0,
        forecast_failures: 0,
    };
    let mut bucket: Option<TimelinePoint> = None;
    let mut episodes = Episodes::default();
    let mut tally = Tally {
        counted_from,
        attempt_counted: false,
    };
    let total_steps = ((end - start) / STEP_S).max(1);

    let mut t = start;
    while t <= end {
        let counted = t >= counted_from;
        let demand = trace.rate_at(t);
        predictive.settle(t);
        reactive.settle(t);
        let (split, guard) = predictive.serve(t, demand, STEP_S);
        let served_reactive = reactive.serve(demand);
        if counted {
            out.predictive
                .add_step(demand, split.unserved(), predictive.cost_units(), STEP_S);
            let p = &mut out.predictive;
            let hours = STEP_S as f64 / 3600.0;
            add(
                &mut p.primary_instance_hours,
                predictive.primary_cost_units() * hours,
            );
            if split.shadow.served + split.shadow.unserved > 0.0 {
                add(&mut p.minutes_on_shadow, STEP_S as f64 / 60.0);
            }
            out.reactive.add_step(
                demand,
                served_reactive.unserved,
                reactive.cost_units(),
                STEP_S,
            );
            let step = StepView {
                time: t,
                demand,
                unserved: split.unserved(),
                forecast: view.as_ref().and_then(|v| v.at(t)),
            };
            episodes.step(step, || (predictive.phase().name(), predictive.explain(t)));
        }
        let mut decisions: Vec<Decision> = guard.into_iter().collect();

        if (t - start) % settings.tick_s == 0 {
            if refits.next_if_eq(&t).is_some() {
                // Only samples at or before `t`: the forecaster cannot see the future.
                let history = trace.history_at(t);
                out.forecasts += 1;
                match forecaster.upper(t, &history, schedule.steps) {
                    Ok(upper) => view = ForecastView::new(&history, upper).or(view),
                    Err(e) => {
                        out.forecast_failures += 1;
                        tracing::warn!(now = t, error = %e, "simulate: forecast failed; keeping the previous one");
                    }
                }
                let recent = (RISE_WINDOW_S / trace.step()) as usize;
                let values = &history.values[history.len().saturating_sub(recent)..];
                rise = policies::startup_rise(
                    values,
                    trace.step() as f64,
                    startup_s,
                    settings.policy.sizing.rise_quantile(),
                );
            }
            let applied = predictive.decide(t, demand, view.as_ref(), rise);
            if counted {
                out.predictive.scaling_actions += applied.scaling_actions;
            }
            decisions.extend(applied.decisions);
        }
        if reactive.sync(t, served_reactive.served) && counted {
            out.reactive.scaling_actions += 1;
        }
        for d in decisions {
            tally.add(&mut out.predictive, &d);
            out.decisions.push(d);
        }

        let bucket_start = start + (t - start) / trace.step() * trace.step();
        let point = TimelinePoint {
            time: bucket_start,
            demand,
            upper: view.as_ref().and_then(|v| v.at(t)),
            predictive_capacity: predictive.ready_capacity(),
            reactive_capacity: served_reactive.capacity,
            predictive_short_s: if split.unserved() > SHORT_EPSILON {
                STEP_S
            } else {
                0
            },
            reactive_short_s: if served_reactive.unserved > SHORT_EPSILON {
                STEP_S
            } else {
                0
            },
        };
        bucket = Some(match bucket {
            Some(b) if b.time == bucket_start => merge(b, &point),
            Some(b) => {
                out.timeline.push(b);
                point
            }
            None => point,
        });
        let done = (t - start) / STEP_S;
        if done % 5760 == 0 {
            progress(FORECAST_SHARE + (1.0 - FORECAST_SHARE) * done as f64 / total_steps as f64);
        }
        t += STEP_S;
    }
    out.timeline.extend(bucket);
    (out.episode_count, out.episodes) = episodes.finish(WORST_EPISODES);
    progress(1.0);
    Ok(out)
}

/// Counts migrations, attempts and rollbacks from the counted part of the replay on.
struct Tally {
    counted_from: i64,
    /// Whether the attempt under way was counted as one: an attempt begun in the warm-up
    /// counts once it completes in the counted part, so migrations never exceed attempts.
    attempt_counted: bool,
}

impl Tally {
    fn add(&mut self, s: &mut Summary, d: &Decision) {
        let counted = d.time >= self.counted_from;
        if d.to == "provisioning" {
            self.attempt_counted = counted;
        }
        if !counted {
            return;
        }
        let bump = |counter: &mut Option<u64>| *counter = Some(counter.unwrap_or(0) + 1);
        match d.to {
            "provisioning" => bump(&mut s.migration_attempts),
            "migrated" if d.from == "ramping" => {
                if !self.attempt_counted {
                    bump(&mut s.migration_attempts);
                    self.attempt_counted = true;
                }
                bump(&mut s.migrations);
            }
            "rolled_back" => bump(&mut s.rollbacks),
            "proxy_rollback" => bump(&mut s.proxy_rollbacks),
            _ => {}
        }
    }
}

fn add(total: &mut Option<f64>, v: f64) {
    *total = Some(total.unwrap_or(0.0) + v);
}

fn merge(mut b: TimelinePoint, p: &TimelinePoint) -> TimelinePoint {
    b.demand = b.demand.max(p.demand);
    b.upper = match (b.upper, p.upper) {
        (Some(a), Some(c)) => Some(a.max(c)),
        (a, c) => a.or(c),
    };
    b.predictive_capacity = b.predictive_capacity.min(p.predictive_capacity);
    b.reactive_capacity = b.reactive_capacity.min(p.reactive_capacity);
    b.predictive_short_s += p.predictive_short_s;
    b.reactive_short_s += p.reactive_short_s;
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(time: i64, from: &'static str, to: &'static str) -> Decision {
        Decision {
            time,
            from,
            to,
            reason: String::new(),
        }
    }

    #[test]
    fn a_migration_begun_in_the_warm_up_counts_as_an_attempt_when_it_completes() {
        let mut tally = Tally {
            counted_from: 100,
            attempt_counted: false,
        };
        let mut s = Summary::default();
        for d in [
            decision(90, "idle", "provisioning"),
            decision(95, "provisioning", "ramping"),
            decision(120, "ramping", "migrated"),
            decision(200, "migrated", "returning"),
            decision(300, "idle", "provisioning"),
            decision(310, "provisioning", "ramping"),
            decision(320, "ramping", "proxy_rollback"),
            decision(330, "ramping", "rolled_back"),
            decision(400, "rolled_back", "provisioning"),
            decision(410, "provisioning", "ramping"),
            decision(440, "ramping", "migrated"),
        ] {
            tally.add(&mut s, &d);
        }
        assert_eq!(s.migration_attempts, Some(3));
        assert_eq!(s.migrations, Some(2));
        assert_eq!(s.rollbacks, Some(1));
        assert_eq!(s.proxy_rollbacks, Some(1));
    }
}
