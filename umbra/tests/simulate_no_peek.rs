//! Walk-forward proof: the replay never shows the forecaster a sample from after the
//! simulated "now", so nothing decided before a moment can depend on what follows it.

#[path = "simulate_support/mod.rs"]
mod support;

use forecast::{ModelKind, Series};
use simulate::{Outcome, replay};
use support::{Recording, demand, settings, slice, walk_forward};

const ELB: &str = "elb_request_count_8c0756.csv";

fn run(series: &Series) -> (Outcome, Vec<support::Call>) {
    let mut settings = settings(4);
    settings.refit_every_s = 3600;
    let mut forecaster = Recording {
        inner: walk_forward(ModelKind::Auto),
        calls: Vec::new(),
    };
    let outcome = replay(&demand(series), &settings, &mut forecaster, &mut |_| {})
        .unwrap_or_else(|e| panic!("replay: {e}"));
    (outcome, forecaster.calls)
}

#[test]
fn the_forecaster_is_never_handed_a_sample_after_now() {
    // 2.5 days of a real ELB trace (request counts per 5 min read as requests/s).
    let series = slice(ELB, 720);
    let (_, calls) = run(&series);
    // Hourly from the first full day of history (sample 288) to the end: 37 forecasts.
    assert!(
        calls.len() >= 36,
        "only {} forecasts were made",
        calls.len()
    );
    for c in &calls {
        assert!(
            c.last_seen <= c.now,
            "at {} the forecaster saw a sample from {}",
            c.now,
            c.last_seen
        );
        // ... and it did see everything known by then (the check above is not vacuous).
        assert!(
            c.now - c.last_seen < series.step,
            "at {} the newest sample shown was from {}",
            c.now,
            c.last_seen
        );
        assert_eq!(c.seen, ((c.now - series.start) / series.step + 1) as usize);
    }
}

#[test]
fn garbage_after_now_changes_nothing_decided_before_it() {
    let series = slice(ELB, 720);
    // From sample 500 on (day 2, 17:40), the future is garbage: wild, huge values.
    let cut = 500;
    let mut garbage = series.clone();
    for (i, v) in garbage.values.iter_mut().enumerate().skip(cut) {
        *v = if i % 2 == 0 { 50_000.0 } else { 0.0 };
    }
    let (a, calls_a) = run(&series);
    let (b, calls_b) = run(&garbage);
    let t_cut = series.time_at(cut);
    // Everything the forecaster answered before the first garbage sample existed.
    let before = |calls: &[support::Call]| -> Vec<support::Call> {
        calls.iter().filter(|c| c.now < t_cut).cloned().collect()
    };
    // Hourly from sample 288 (a full day of history) up to sample 500.
    assert!(before(&calls_a).len() >= 17);
    assert_eq!(before(&calls_a), before(&calls_b));
    // Every decision up to the last clean sample (demand between samples already leans
    // towards the next one, so decisions after it may differ).
    let t_clean = series.time_at(cut - 1);
    let decided = |o: &Outcome| -> Vec<_> {
        o.decisions
            .iter()
            .filter(|d| d.time <= t_clean)
            .cloned()
            .collect()
    };
    assert_eq!(decided(&a), decided(&b));
    let shown = |o: &Outcome| -> Vec<_> {
        o.timeline
            .iter()
            .filter(|p| p.time + series.step <= t_clean)
            .cloned()
            .collect()
    };
    assert!(shown(&a).len() > 400);
    assert_eq!(shown(&a), shown(&b));
    // The garbage did reach the replay afterwards: the two runs end differently.
    assert_ne!(a.predictive, b.predictive);
    assert_ne!(calls_a.last(), calls_b.last());
}

#[test]
fn a_spike_nobody_could_foresee_is_missed_by_the_predictive_controller_too() {
    // Two quiet, regular days, then on the third at 12:00 a one-hour spike to 3x anything
    // seen before. A forecaster that peeked would migrate before 12:00.
    let mut values = support::daily(3, 100.0, 40.0);
    let spike_start = 2 * 288 + 144;
    for v in &mut values[spike_start..spike_start + 12] {
        *v = 420.0;
    }
    let series = Series::new(1_400_000_400, 300, values);
    let spike_at = series.time_at(spike_start);
    // Primary: 20 instances of 10 rps = 200 rps, the daily peak (140) stays below the
    // trigger's 90%, so nothing migrates before the spike.
    let mut forecaster = walk_forward(ModelKind::SeasonalNaive);
    let outcome = replay(
        &demand(&series),
        &settings(20),
        &mut forecaster,
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("replay: {e}"));
    let first_migration = outcome
        .decisions
        .iter()
        .find(|d| d.to == "provisioning")
        .map(|d| d.time);
    let Some(first) = first_migration else {
        panic!(
            "the spike never triggered a migration: {:?}",
            outcome.decisions
        );
    };
    // The demand ramps linearly from the 11:55 sample to the spike at 12:00; the observed
    // demand crosses 90% of primary during that ramp, not earlier than the ramp starts.
    let ramp_start = series.time_at(spike_start - 1);
    assert!(
        first > ramp_start,
        "migrated at {first}, before the spike became observable at {ramp_start}"
    );
    assert!(first <= spike_at, "reacted late: {first} vs {spike_at}");
    assert!(
        outcome.predictive.under_provisioned_minutes >= 2.0,
        "the unforeseeable spike cost no shortage: {:?}",
        outcome.predictive
    );
}
