//! The reactive baseline: one Deployment scaled by the Kubernetes HPA on CPU utilisation.

use super::hpa::{Hpa, HpaConfig, PodCounts};
use super::pool::{Delays, Pool};

/// CPU request of one pod in millicores: a pod at its request serves the instance capacity.
const REQUEST_MILLIS: u64 = 1000;

/// Demand met and missed in one step by one strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Served {
    /// Requests/s served.
    pub served: f64,
    /// Requests/s beyond the ready capacity.
    pub unserved: f64,
    /// Ready capacity, requests/s.
    pub capacity: f64,
}

impl Served {
    /// `demand` against `capacity`.
    pub fn of(demand: f64, capacity: f64) -> Self {
        let served = demand.min(capacity);
        Served {
            served,
            unserved: demand - served,
            capacity,
        }
    }
}

/// The HPA and the pods it scales.
#[derive(Clone, Debug)]
pub struct Reactive {
    hpa: Hpa,
    pods: Pool,
    delays: Delays,
    capacity: f64,
}

impl Reactive {
    /// `initial` ready pods of `capacity` requests/s each.
    pub fn new(config: HpaConfig, initial: u32, capacity: f64, delays: Delays) -> Self {
        let initial = initial.clamp(config.min_replicas, config.max_replicas);
        Reactive {
            hpa: Hpa::new(config),
            pods: Pool::ready(initial as usize, 1.0),
            delays,
            capacity,
        }
    }

    /// Pods that finished starting by `now` serve from then.
    pub fn settle(&mut self, now: i64) {
        self.pods.settle(now);
    }

    /// Serves `demand` requests/s with the ready pods (the Service only routes to ready pods).
    pub fn serve(&self, demand: f64) -> Served {
        Served::of(demand, self.pods.ready_units() * self.capacity)
    }

    /// One HPA sync after serving `served` requests/s; returns whether the scale changed.
    pub fn sync(&mut self, now: i64, served: f64) -> bool {
        let pods = PodCounts {
            current: self.pods.count() as u32,
            ready: self.pods.ready_count() as u32,
            unready: (self.pods.count() - self.pods.ready_count()) as u32,
        };
        let used_millis = (served / self.capacity * REQUEST_MILLIS as f64).round() as u64;
        let desired = self.hpa.sync(now, pods, used_millis, REQUEST_MILLIS);
        desired != pods.current
            && self
                .pods
                .set_target(now, desired as usize, 1.0, self.delays)
    }

    /// Pods running (ready or starting).
    pub fn replicas(&self) -> usize {
        self.pods.count()
    }

    /// Cost rate in full-instance units.
    pub fn cost_units(&self) -> f64 {
        self.pods.cost_units()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-computed: 10 rps pods, 50% target, 30 s start-up; demand 10 rps, then 40 rps from
    /// 15 s, then 10 rps from 120 s.
    #[test]
    fn follows_hand_computed_steps_on_a_synthetic_trace() {
        let delays = Delays {
            startup: 30,
            resize: 30,
        };
        let mut r = Reactive::new(HpaConfig::new(50, 1, 100), 2, 10.0, delays);
        let demand = |t: i64| {
            if (15..120).contains(&t) { 40.0 } else { 10.0 }
        };
        // (time, replicas after the sync, ready capacity before the sync, unserved rps)
        let expected = [
            // 10 rps on 2 pods = 50%: on target.
            (0, 2, 20.0, 0.0),
            // 40 rps, 20 served: 100% -> ratio 2 -> 4 pods (limit max(4, 6)).
            (15, 4, 20.0, 20.0),
            // 2 ready at 100%, 2 starting: rebalanced 20/40 = 50% -> hold at 4.
            (30, 4, 20.0, 20.0),
            // The two new pods are ready at 45 s: 40/40 = 100% -> 8 (limit max(8, 8)).
            (45, 8, 40.0, 0.0),
            // 4 ready at 100%, 4 starting: rebalanced 40/80 = 50% -> hold.
            (60, 8, 40.0, 0.0),
            // All 8 ready at 75 s: 40/80 = 50% -> hold.
            (75, 8, 80.0, 0.0),
            (90, 8, 80.0, 0.0),
            (105, 8, 80.0, 0.0),
            // 10 rps on 8 pods = 12% -> ratio 0.24 -> ceil(1.92) = 2, but 8 was recommended
            // within the last 300 s (at 45..105 s): stays 8.
            (120, 8, 80.0, 0.0),
        ];
        for (t, replicas, capacity, unserved) in expected {
            r.settle(t);
            let s = r.serve(demand(t));
            assert_eq!(s.capacity, capacity, "capacity at {t}");
            assert_eq!(s.unserved, unserved, "unserved at {t}");
            r.sync(t, s.served);
            assert_eq!(r.replicas(), replicas, "replicas after the sync at {t}");
        }
        // The last recommendation of 8 was at 105 s: from 405 s the window holds only 2s.
        for t in (135..405).step_by(15) {
            r.settle(t);
            let s = r.serve(demand(t));
            r.sync(t, s.served);
            assert_eq!(r.replicas(), 8, "stabilised at {t}");
        }
        r.settle(405);
        let s = r.serve(10.0);
        r.sync(405, s.served);
        assert_eq!(r.replicas(), 2);
    }
}
