//! The claim on a trace where the future is knowable: acting on the forecast keeps capacity
//! ahead of a daily surge that the HPA can only chase.

#[path = "simulate_support/mod.rs"]
mod support;

use forecast::{ModelKind, Series};
use simulate::replay;
use support::{demand, policy, returning_policy, settings, walk_forward};

/// Five days at 100 requests/s with a surge to 400 requests/s every day from 14:00 to 16:00
/// (reached within ten minutes), on a 5-minute grid.
fn surging_days() -> Series {
    let values = (0..5 * 288)
        .map(|i| {
            let minute = (i % 288) * 5;
            match minute {
                m if (840..960).contains(&m) => 400.0,
                m if (830..840).contains(&m) => 250.0,
                _ => 100.0,
            }
        })
        .collect();
    Series::new(1_400_025_600, 300, values)
}

/// With a policy that returns to primary when demand falls: one migration a day, complete
/// before the rise.
#[test]
fn migrates_before_a_recurring_surge_and_beats_the_hpa() {
    let series = surging_days();
    // Primary sized like the CLI does: median demand at 70% of 10 rps -> 15 instances.
    let mut forecaster = walk_forward(ModelKind::Auto);
    // A daily cycle is only trusted once the history holds two of them: the first two days
    // are warm-up, the last three are counted.
    let mut settings = settings(15);
    settings.policy = returning_policy();
    settings.warmup_s = 2 * 86_400;
    let outcome = replay(&demand(&series), &settings, &mut forecaster, &mut |_| {})
        .unwrap_or_else(|e| panic!("replay: {e}"));
    let p = &outcome.predictive;
    let r = &outcome.reactive;
    assert!(
        r.under_provisioned_minutes >= 3.0,
        "the HPA should chase a 4x surge: {r:?}"
    );
    assert!(
        p.under_provisioned_minutes <= 0.25 * r.under_provisioned_minutes,
        "predictive {p:?} vs reactive {r:?}"
    );
    assert_eq!(
        p.migrations,
        Some(3),
        "one migration per counted day: {p:?}"
    );
    assert_eq!(p.rollbacks, Some(0), "{:?}", outcome.decisions);
    // Each counted day, traffic is all on the shadow before the rise begins at 13:50.
    for day in 2..5 {
        let rise = series.start + day * 86_400 + 830 * 60;
        let migrated = outcome
            .decisions
            .iter()
            .find(|d| d.to == "migrated" && d.time > rise - 3 * 3600)
            .map(|d| d.time);
        assert!(
            migrated.is_some_and(|t| t <= rise),
            "day {day}: migrated at {migrated:?}, the rise starts at {rise}"
        );
    }
}

/// With the built-in `adopt`, the first migration is the last: the workload stays on the
/// shadow, which grows ahead of each day's surge and shrinks after it, so primary costs nothing
/// from then on and the whole bill is below the returning policy's.
#[test]
fn an_adopted_workload_stays_on_the_shadow_through_every_surge() {
    let series = surging_days();
    let run = |policy| {
        let mut settings = settings(15);
        settings.warmup_s = 2 * 86_400;
        settings.policy = policy;
        let mut forecaster = walk_forward(ModelKind::Auto);
        replay(&demand(&series), &settings, &mut forecaster, &mut |_| {})
            .unwrap_or_else(|e| panic!("replay: {e}"))
    };
    let adopted = run(policy());
    let returning = run(returning_policy());
    let (a, r, hpa) = (
        &adopted.predictive,
        &returning.predictive,
        &adopted.reactive,
    );
    // Migrated in the warm-up and never back: no migration, return or primary cost counted.
    assert_eq!(a.migrations, Some(0), "{a:?}");
    assert!(
        !adopted.decisions.iter().any(|d| d.to == "returning"),
        "{:?}",
        adopted.decisions
    );
    assert_eq!(a.primary_instance_hours, Some(0.0), "{a:?}");
    // Counted: from the end of the warm-up to the last sample.
    let last = series.start + (series.values.len() as i64 - 1) * series.step;
    let counted_minutes = (last - adopted.counted_from) as f64 / 60.0;
    assert!(
        a.minutes_on_shadow.is_some_and(|m| m >= counted_minutes),
        "{a:?}"
    );
    assert!(
        a.under_provisioned_minutes <= 0.25 * hpa.under_provisioned_minutes,
        "adopted {a:?} vs HPA {hpa:?}"
    );
    // Following the forecast both ways is cheaper than a fixed primary plus a shadow for the
    // surges, and than the HPA, which holds its 43% headroom all day.
    assert!(
        a.instance_hours < r.instance_hours && a.instance_hours < hpa.instance_hours,
        "adopted {a:?} vs returning {r:?} vs HPA {hpa:?}"
    );
    eprintln!(
        "instance-hours: adopted {:.0}, returning {:.0}, HPA {:.0}",
        a.instance_hours, r.instance_hours, hpa.instance_hours
    );
}

/// The replay makes its forecasts ahead, on several threads, before it steps through the
/// trace: it must decide exactly what it decides when every forecast is made live, one by
/// one, at its simulated time (a forecaster that does not prepare, like `Recording`).
#[test]
fn forecasts_made_ahead_in_parallel_decide_exactly_what_live_forecasts_do() {
    // Four days of a real trace (NAB elb_request_count_8c0756, 5-minute steps).
    let series = support::slice("elb_request_count_8c0756.csv", 4 * 288);
    let trace = demand(&series);
    let mut settings = settings(3);
    settings.warmup_s = 86_400;
    let run = |forecaster: &mut dyn simulate::DemandForecaster| {
        replay(&trace, &settings, forecaster, &mut |_| {}).unwrap_or_else(|e| panic!("replay: {e}"))
    };
    let mut live = support::Recording {
        inner: walk_forward(ModelKind::Auto),
        calls: Vec::new(),
    };
    let live_outcome = run(&mut live);
    let mut ahead = walk_forward(ModelKind::Auto).with_threads(2);
    let ahead_outcome = run(&mut ahead);
    assert!(live_outcome.forecasts > 50, "{}", live_outcome.forecasts);
    assert_eq!(live_outcome.forecasts, live.calls.len() as u64);
    assert_eq!(ahead_outcome.forecasts, live_outcome.forecasts);
    assert_eq!(
        ahead_outcome.forecast_failures,
        live_outcome.forecast_failures
    );
    assert_eq!(ahead_outcome.predictive, live_outcome.predictive);
    assert_eq!(ahead_outcome.reactive, live_outcome.reactive);
    assert_eq!(ahead_outcome.timeline, live_outcome.timeline);
    assert_eq!(ahead_outcome.decisions, live_outcome.decisions);
    assert_eq!(ahead.model(), live.inner.model());
}
