//! The worst shortage episodes of a replay: when, how long, how much went unserved, and what
//! the forecast and the controller said as each began, so a loss can be read, not guessed.

use serde::Serialize;

use super::replay::STEP_S;
use super::summary::SHORT_EPSILON;

/// Short steps at most this far apart belong to one episode (a dip under capacity for a
/// step or two does not end a shortage).
const MERGE_GAP_S: i64 = 60;

/// One shortage: consecutive short steps (gaps up to a minute merged).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Episode {
    /// Unix seconds of the first short step.
    pub start: i64,
    /// Minutes short (steps short, not the span).
    pub minutes: f64,
    /// Requests that arrived above ready capacity.
    pub unserved_requests: f64,
    /// Demand at the worst step (the most unserved), requests/s.
    pub peak_demand: f64,
    /// Requests/s served at the worst step: what the pools taking the traffic had ready
    /// (capacity idle in a pool the proxies were not sending to does not count).
    pub served_at_peak: f64,
    /// The latest forecast's upper bound for the worst step, as known then (none before the
    /// first forecast).
    pub forecast_at_peak: Option<f64>,
    /// The controller's phase as the episode began.
    pub phase: &'static str,
    /// What the controller saw and did as the episode began ([`crate::predictive::Predictive::explain`]).
    pub why: String,
}

/// One counted step as the episodes see it.
#[derive(Clone, Copy, Debug)]
pub struct StepView {
    /// Unix seconds.
    pub time: i64,
    /// Requests/s.
    pub demand: f64,
    /// Requests/s above ready capacity.
    pub unserved: f64,
    /// The latest forecast's upper bound for this instant.
    pub forecast: Option<f64>,
}

/// Gathers episodes step by step; `finish` ranks them.
#[derive(Debug, Default)]
pub struct Episodes {
    open: Option<(Episode, i64)>,
    done: Vec<Episode>,
}

impl Episodes {
    /// Adds one step. `context` is asked for `(phase, why)` only when an episode begins.
    pub fn step(&mut self, s: StepView, context: impl FnOnce() -> (&'static str, String)) {
        if s.unserved <= SHORT_EPSILON {
            if let Some((_, last)) = &self.open
                && s.time - last > MERGE_GAP_S
            {
                self.close();
            }
            return;
        }
        let (episode, last) = self.open.get_or_insert_with(|| {
            let (phase, why) = context();
            (
                Episode {
                    start: s.time,
                    minutes: 0.0,
                    unserved_requests: 0.0,
                    peak_demand: s.demand,
                    served_at_peak: s.demand - s.unserved,
                    forecast_at_peak: s.forecast,
                    phase,
                    why,
                },
                s.time,
            )
        });
        episode.minutes += STEP_S as f64 / 60.0;
        episode.unserved_requests += s.unserved * STEP_S as f64;
        if s.unserved > episode.peak_demand - episode.served_at_peak {
            episode.peak_demand = s.demand;
            episode.served_at_peak = s.demand - s.unserved;
            episode.forecast_at_peak = s.forecast;
        }
        *last = s.time;
    }

    fn close(&mut self) {
        if let Some((episode, _)) = self.open.take() {
            self.done.push(episode);
        }
    }

    /// All episodes (count) and the `worst` by unserved requests, worst first.
    pub fn finish(mut self, worst: usize) -> (usize, Vec<Episode>) {
        self.close();
        let count = self.done.len();
        self.done
            .sort_by(|a, b| b.unserved_requests.total_cmp(&a.unserved_requests));
        self.done.truncate(worst);
        (count, self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(time: i64, demand: f64, capacity: f64) -> StepView {
        StepView {
            time,
            demand,
            unserved: (demand - capacity).max(0.0),
            forecast: Some(capacity),
        }
    }

    #[test]
    fn short_steps_group_into_episodes_ranked_by_what_went_unserved() {
        let mut e = Episodes::default();
        let mut asked = 0;
        // Episode A: 0 and 15 short, a 45 s gap (merged), 75 short again; then a long gap.
        // Episode B: 600 .. 645, four steps, much larger.
        let demand = |t: i64| match t {
            0 | 15 | 75 => 110.0,
            600..=645 => 200.0,
            _ => 50.0,
        };
        for t in (0..=900).step_by(15) {
            e.step(view(t, demand(t), 100.0), || {
                asked += 1;
                ("idle", format!("began at {t}"))
            });
        }
        let (count, worst) = e.finish(5);
        assert_eq!(count, 2);
        assert_eq!(asked, 2, "context is read once per episode");
        assert_eq!(worst[0].start, 600);
        assert_eq!(worst[0].minutes, 1.0);
        assert_eq!(worst[0].unserved_requests, 4.0 * 100.0 * 15.0);
        assert_eq!(worst[0].why, "began at 600");
        assert_eq!(worst[1].start, 0);
        assert_eq!(worst[1].minutes, 0.75);
        assert_eq!(worst[1].unserved_requests, 3.0 * 10.0 * 15.0);
    }

    #[test]
    fn the_worst_step_is_the_most_unserved_not_the_largest_demand() {
        let mut e = Episodes::default();
        e.step(view(0, 300.0, 290.0), || ("idle", String::new()));
        e.step(view(15, 200.0, 100.0), || ("idle", String::new()));
        let (_, worst) = e.finish(1);
        assert_eq!(worst[0].peak_demand, 200.0);
        assert_eq!(worst[0].served_at_peak, 100.0);
    }

    #[test]
    fn no_shortage_no_episode() {
        let mut e = Episodes::default();
        for t in (0..300).step_by(15) {
            e.step(view(t, 10.0, 100.0), || unreachable!("never short"));
        }
        assert_eq!(e.finish(5), (0, vec![]));
    }
}
