//! Forecasting ahead of a replay: which selections a walk-forward forecaster makes over a
//! replay's refit times, and a way to spread independent work over threads.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

/// When a forecaster that re-selects every `select_every` seconds selects, over calls at
/// `times`, if every selection succeeds. A failed one is made again at the next call and
/// moves the later ones: [`resolve`] follows the calls one by one and asks for those.
pub(crate) fn selection_times(times: &[i64], select_every: i64) -> Vec<i64> {
    let mut at: Option<i64> = None;
    let mut out = Vec::new();
    for &now in times {
        if at.is_none_or(|at| now - at >= select_every) {
            out.push(now);
            at = Some(now);
        }
    }
    out
}

/// One call of a replay's forecaster, as resolved ahead.
#[derive(Debug)]
pub(crate) enum Refit<E> {
    /// Refit the selection `selection` (an index into [`Resolved::selections`]) at `now`.
    Fit {
        /// Simulated time of the call.
        now: i64,
        /// The selection in force.
        selection: usize,
    },
    /// The selection due at `now` failed: the call answers this error, and the selection
    /// in force stays what it was.
    Failed {
        /// Simulated time of the call.
        now: i64,
        /// Why the selection failed.
        error: E,
    },
}

/// Selections and calls of a replay, in call order.
#[derive(Debug)]
pub(crate) struct Resolved<S, E> {
    /// Every selection made, with the time it was made at.
    pub selections: Vec<(S, i64)>,
    /// One per call.
    pub refits: Vec<Refit<E>>,
}

/// Follows the calls at `times` one by one as the forecaster would: a selection is due when
/// none is in force or `stale(selection, made_at, now)`. A due selection comes from `ahead`
/// (made at [`selection_times`]) when one was made for that time, from `select(now)`
/// otherwise (only after a failure moved the schedule).
pub(crate) fn resolve<S, E>(
    times: &[i64],
    ahead: Vec<(i64, Result<S, E>)>,
    stale: impl Fn(&S, i64, i64) -> bool,
    mut select: impl FnMut(i64) -> Result<S, E>,
) -> Resolved<S, E> {
    let mut ahead: HashMap<i64, Result<S, E>> = ahead.into_iter().collect();
    let mut selections: Vec<(S, i64)> = Vec::new();
    let mut refits = Vec::with_capacity(times.len());
    let mut in_force: Option<usize> = None;
    for &now in times {
        let due = in_force.is_none_or(|i| {
            let (s, at) = &selections[i];
            stale(s, *at, now)
        });
        if due {
            match ahead.remove(&now).unwrap_or_else(|| select(now)) {
                Ok(s) => {
                    selections.push((s, now));
                    in_force = Some(selections.len() - 1);
                }
                Err(error) => {
                    refits.push(Refit::Failed { now, error });
                    continue;
                }
            }
        }
        if let Some(selection) = in_force {
            refits.push(Refit::Fit { now, selection });
        }
    }
    Resolved { selections, refits }
}

/// `f` over `items` on up to `threads` threads (the caller's among them), in order.
/// `progress` is told how many items are done, from the caller's thread.
pub(crate) fn parallel_map<T, R, F>(
    items: &[T],
    threads: usize,
    progress: &mut dyn FnMut(usize),
    f: F,
) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    // Items are claimed one at a time: their costs differ (a selection is a backtest of
    // every candidate, a refit fits one model).
    let work = |report: &mut dyn FnMut(usize)| {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return out;
            };
            out.push((i, f(item)));
            report(done.fetch_add(1, Ordering::Relaxed) + 1);
        }
    };
    let helpers = threads.min(items.len()).saturating_sub(1);
    let mut all = std::thread::scope(|scope| {
        let spawned: Vec<_> = (0..helpers)
            .map(|_| scope.spawn(|| work(&mut |_| {})))
            .collect();
        let mut all = work(progress);
        for handle in spawned {
            match handle.join() {
                Ok(part) => all.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_are_due_every_period_from_the_last_one() {
        let times = [0, 10, 20, 30, 45, 50, 60];
        assert_eq!(selection_times(&times, 30), vec![0, 30, 60]);
        assert_eq!(selection_times(&times, 25), vec![0, 30, 60]);
        assert_eq!(selection_times(&times, 1), times.to_vec());
        assert!(selection_times(&[], 30).is_empty());
    }

    #[test]
    fn a_failed_selection_is_retried_at_the_next_call_and_moves_the_next_ones() {
        let times = [0, 10, 20, 30, 40, 50, 60, 70];
        let stale = |_: &&str, at: i64, now: i64| now - at >= 30;
        // Made ahead: 0 fine, 30 fails, 60 fine (but 60 is no longer when one is due).
        let ahead = vec![(0, Ok("a")), (30, Err("broken")), (60, Ok("unused"))];
        let mut asked = Vec::new();
        let resolved = resolve(&times, ahead, stale, |now| {
            asked.push(now);
            Ok(if now == 40 { "b" } else { "c" })
        });
        // 30 failed, so 40 selects again, and the next is due 30 s after 40, at 70.
        assert_eq!(asked, vec![40, 70]);
        let made: Vec<_> = resolved
            .selections
            .iter()
            .map(|(s, at)| (*s, *at))
            .collect();
        assert_eq!(made, vec![("a", 0), ("b", 40), ("c", 70)]);
        let calls: Vec<String> = resolved
            .refits
            .iter()
            .map(|r| match r {
                Refit::Fit { now, selection } => format!("{now}:{selection}"),
                Refit::Failed { now, error } => format!("{now}:{error}"),
            })
            .collect();
        assert_eq!(
            calls,
            [
                "0:0",
                "10:0",
                "20:0",
                "30:broken",
                "40:1",
                "50:1",
                "60:1",
                "70:2"
            ]
        );
    }

    #[test]
    fn the_first_selection_failing_leaves_nothing_in_force() {
        let stale = |_: &u8, _: i64, _: i64| false;
        let resolved = resolve(&[0, 10], vec![(0, Err("no"))], stale, |_| Err("still no"));
        assert!(resolved.selections.is_empty());
        assert!(matches!(
            resolved.refits[..],
            [
                Refit::Failed {
                    now: 0,
                    error: "no"
                },
                Refit::Failed {
                    now: 10,
                    error: "still no"
                },
            ]
        ));
    }

    #[test]
    fn parallel_map_keeps_order_and_reports_progress() {
        let items: Vec<u64> = (0..100).collect();
        for threads in [1, 2, 7] {
            let mut seen = Vec::new();
            let out = parallel_map(&items, threads, &mut |done| seen.push(done), |x| x * x);
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
            // Told from the caller's thread only: increasing counts up to 100, every one of
            // them when it does all the work (it may do none when helper threads are quicker).
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
            assert!(seen.last().is_none_or(|d| *d <= 100), "{seen:?}");
            if threads == 1 {
                assert_eq!(seen, (1..=100).collect::<Vec<_>>());
            }
        }
        assert!(parallel_map(&[] as &[u8], 2, &mut |_| {}, |x| *x).is_empty());
    }
}
