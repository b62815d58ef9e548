//! One scenario's requests summarised: counts, failures by kind, p99 before/during/after the
//! fault, and how long clients took to stop seeing failures or slow answers.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::record::{Outcome, Sample};

/// A request slower than this (or five times the p99 before the fault, if larger) counts as
/// harmed when finding the recovery time: loopback answers take a few milliseconds.
const SLOW_FLOOR: Duration = Duration::from_millis(250);

/// What a scenario hands back: its requests, when the fault began and ended, and its own check
/// of the state it left.
pub struct Run {
    /// Every request sent during the scenario.
    pub samples: Vec<Sample>,
    /// When the fault was injected (recorder clock).
    pub fault_start: Duration,
    /// When it was lifted or the system reported it handled (recorder clock).
    pub fault_end: Duration,
    /// Whether the state resumed or rolled back cleanly.
    pub state_ok: bool,
    /// What the state check found, in a few words.
    pub state: String,
    /// Client failures are expected: everything behind the workload (or the proxy) was down.
    pub exempt: bool,
    /// Timings and facts worth a line under the table.
    pub notes: String,
}

/// One line of the table.
pub struct Row {
    /// Scenario name.
    pub name: &'static str,
    /// Requests sent.
    pub sent: usize,
    /// Requests that did not end in a 2xx with a whole body.
    pub failed: usize,
    /// Failures by kind.
    pub kinds: BTreeMap<String, usize>,
    /// p99 latency of requests sent before, during and after the fault.
    pub p99: [Option<Duration>; 3],
    /// From the fault to the end of the last failed or slow request; `None` if there was none.
    pub recover: Option<Duration>,
    /// See [`Run::state_ok`].
    pub state_ok: bool,
    /// See [`Run::state`].
    pub state: String,
    /// See [`Run::exempt`].
    pub exempt: bool,
    /// See [`Run::notes`].
    pub notes: String,
}

impl Row {
    /// Summarises a run.
    pub fn of(name: &'static str, run: Run) -> Row {
        let s = &run.samples;
        let window = |keep: &dyn Fn(&Sample) -> bool| {
            p99(s.iter().filter(|x| keep(x)).map(|x| x.latency).collect())
        };
        let before = window(&|x| x.sent < run.fault_start);
        let during = window(&|x| x.sent >= run.fault_start && x.sent < run.fault_end);
        let after = window(&|x| x.sent >= run.fault_end);
        let slow = before.map_or(SLOW_FLOOR, |b| (b * 5).max(SLOW_FLOOR));
        let recover = s
            .iter()
            // A request in flight when the fault began counts too.
            .filter(|x| x.done() >= run.fault_start)
            .filter(|x| x.outcome != Outcome::Ok || x.latency > slow)
            .map(|x| x.done().saturating_sub(run.fault_start))
            .max();
        let mut kinds = BTreeMap::new();
        for x in s.iter().filter(|x| x.outcome != Outcome::Ok) {
            *kinds.entry(x.outcome.label()).or_default() += 1;
        }
        Row {
            name,
            sent: s.len(),
            failed: kinds.values().sum(),
            kinds,
            p99: [before, during, after],
            recover,
            state_ok: run.state_ok,
            state: run.state,
            exempt: run.exempt,
            notes: run.notes,
        }
    }

    /// Zero client failures (unless exempt) and a clean state.
    pub fn met(&self) -> bool {
        self.state_ok && (self.failed == 0 || self.exempt)
    }
}

/// The 99th percentile (nearest rank) of `v`.
pub fn p99(mut v: Vec<Duration>) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((v.len() as f64) * 0.99).ceil() as usize;
    v.get(rank.saturating_sub(1)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sample(sent: u64, latency: u64, outcome: Outcome) -> Sample {
        Sample {
            sent: ms(sent),
            latency: ms(latency),
            outcome,
        }
    }

    #[test]
    fn windows_kinds_and_recovery() {
        let mut samples: Vec<Sample> = (0..100).map(|i| sample(i * 10, 2, Outcome::Ok)).collect();
        samples.push(sample(1_000, 900, Outcome::Ok)); // slow, during the fault
        samples.push(sample(1_500, 3, Outcome::Status(502)));
        samples.push(sample(1_600, 5, Outcome::Reset));
        samples.extend((0..100).map(|i| sample(3_000 + i * 10, 4, Outcome::Ok)));
        let row = Row::of(
            "t",
            Run {
                samples,
                fault_start: ms(1_000),
                fault_end: ms(2_000),
                state_ok: true,
                state: "ok".into(),
                exempt: false,
                notes: String::new(),
            },
        );
        assert_eq!(row.sent, 203);
        assert_eq!(row.failed, 2);
        assert_eq!(row.kinds.get("502"), Some(&1));
        assert_eq!(row.kinds.get("reset"), Some(&1));
        assert_eq!(row.p99, [Some(ms(2)), Some(ms(900)), Some(ms(4))]);
        // The slow answer, the last harmed request, finished 900 ms after the fault began.
        assert_eq!(row.recover, Some(ms(900)));
        assert!(!row.met());
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<Duration> = (1..=200).map(ms).collect();
        assert_eq!(p99(v), Some(ms(198)));
        assert_eq!(p99(vec![]), None);
    }
}
