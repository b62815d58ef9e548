//! Perfect foresight: the cheapest pool that is never short, given exact demand and start-ups.
//!
//! The yardstick both strategies are read against: an oracle that knows demand exactly
//! starts each instance exactly one start-up time before it is needed and stops it as soon
//! as it is not. An instance needed again within one start-up time of going idle is kept
//! (stopping and restarting it would cost the start-up anyway and risk arriving late), so the
//! instances running at `t` are the most needed at any instant in `[t, t + startup]`.

use std::collections::VecDeque;

use super::replay::STEP_S;
use super::summary::Summary;
use super::trace::DemandTrace;

/// Instances that serve `demand` at `capacity` each, at least one (the HPA's minReplicas).
fn needed(demand: f64, capacity: f64) -> u32 {
    // The small tolerance keeps 100.0000001 / 50 (interpolation noise) at 2, not 3.
    let n = (demand / capacity - 1e-9).ceil();
    (n.clamp(1.0, f64::from(u32::MAX))) as u32
}

/// The oracle's totals over `[counted_from, trace end]`, in the replay's 15 s steps.
/// `startup` is in seconds; `capacity` in requests/s per instance.
pub fn perfect_foresight(
    trace: &DemandTrace,
    capacity: f64,
    startup: i64,
    counted_from: i64,
) -> Summary {
    let (start, end) = (trace.start(), trace.end());
    let window = (startup.max(0) + STEP_S - 1) / STEP_S;
    let steps = ((end - start) / STEP_S + 1) as usize;
    let need: Vec<u32> = (0..steps)
        .map(|i| needed(trace.rate_at(start + i as i64 * STEP_S), capacity))
        .collect();
    let mut out = Summary::default();
    // Sliding maximum of `need[i ..= i + window]` (indices of a decreasing run).
    let mut maxima: VecDeque<usize> = VecDeque::new();
    let mut pushed = 0usize;
    let mut last_running: Option<u32> = None;
    for i in 0..steps {
        let until = (i + window as usize).min(steps - 1);
        while pushed <= until {
            while maxima.back().is_some_and(|&j| need[j] <= need[pushed]) {
                maxima.pop_back();
            }
            maxima.push_back(pushed);
            pushed += 1;
        }
        while maxima.front().is_some_and(|&j| j < i) {
            maxima.pop_front();
        }
        let running = maxima.front().map_or(1, |&j| need[j]);
        let t = start + i as i64 * STEP_S;
        if t >= counted_from {
            out.add_step(trace.rate_at(t), 0.0, f64::from(running), STEP_S);
            if last_running.is_some_and(|r| r != running) {
                out.scaling_actions += 1;
            }
        }
        last_running = Some(running);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use forecast::Series;

    fn trace(step: i64, values: Vec<f64>) -> DemandTrace {
        DemandTrace::new(&Series::new(0, step, values), 1.0).expect("trace")
    }

    #[test]
    fn a_flat_trace_costs_exactly_what_it_needs() {
        // 120 rps at 50 each: 3 instances for one hour (241 steps of 15 s, both ends counted).
        let t = trace(1800, vec![120.0; 3]);
        let s = perfect_foresight(&t, 50.0, 300, 0);
        assert_eq!(s.under_provisioned_minutes, 0.0);
        assert_eq!(s.peak_instances, 3.0);
        assert!((s.instance_hours - 3.0 * 241.0 * 15.0 / 3600.0).abs() < 1e-9);
        assert_eq!(s.scaling_actions, 0);
    }

    #[test]
    fn instances_start_one_start_up_ahead_and_stop_when_not_needed() {
        // 15 s samples: 50 rps, then 200 rps for one step at 600 s, then 50 again.
        let mut values = vec![50.0; 81];
        values[40] = 200.0;
        let t = trace(15, values);
        let s = perfect_foresight(&t, 50.0, 60, 0);
        // Interpolation between samples is exact on the 15 s grid: 4 instances are needed at
        // 600 s alone, so they run from 540 s (one 60 s start-up ahead) through 600 s: five
        // steps at 4, the rest at 1.
        let expected = (76.0 * 1.0 + 5.0 * 4.0) * 15.0 / 3600.0;
        assert!(
            (s.instance_hours - expected).abs() < 1e-9,
            "{} vs {expected}",
            s.instance_hours
        );
        assert_eq!(s.scaling_actions, 2);
        assert_eq!(s.peak_instances, 4.0);
    }

    #[test]
    fn a_dip_shorter_than_a_start_up_keeps_its_instances() {
        // 200 rps, one step at 50, 200 again: with a 60 s start-up stopping for 15 s would
        // not save a restart.
        let mut values = vec![200.0; 20];
        values[10] = 50.0;
        let s = perfect_foresight(&trace(15, values.clone()), 50.0, 60, 0);
        assert_eq!(s.scaling_actions, 0);
        // With no start-up the dip is taken: down to 1 and back to 4.
        let s = perfect_foresight(&trace(15, values), 50.0, 0, 0);
        assert_eq!(s.scaling_actions, 2);
    }

    #[test]
    fn only_the_counted_part_is_added() {
        let t = trace(1800, vec![100.0; 3]);
        let all = perfect_foresight(&t, 50.0, 0, 0);
        let half = perfect_foresight(&t, 50.0, 0, 1800);
        assert!((all.instance_hours - 2.0 * 241.0 * 15.0 / 3600.0).abs() < 1e-9);
        assert!((half.instance_hours - 2.0 * 121.0 * 15.0 / 3600.0).abs() < 1e-9);
    }
}
