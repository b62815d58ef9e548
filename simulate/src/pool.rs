//! A pool of instances that take time to start: what runs, what serves, what it costs.
//!
//! Sizes are fractions of a full instance (1.0 = full size, serving the full instance
//! capacity; an idle-size instance serves and costs its CPU fraction of that).

/// One instance. `serving` is the size it serves at now; it becomes `size` at `ready_at`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Instance {
    size: f64,
    serving: f64,
    ready_at: i64,
}

/// Instances of one pool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pool {
    instances: Vec<Instance>,
}

/// How long changes take to be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delays {
    /// From starting an instance to it serving, seconds.
    pub startup: i64,
    /// From growing an instance to it serving at its new size, seconds (it serves at its old
    /// size meanwhile). Shrinking is immediate.
    pub resize: i64,
}

impl Pool {
    /// `count` instances of `size`, all serving already (the state a replay starts from).
    pub fn ready(count: usize, size: f64) -> Self {
        Pool {
            instances: vec![
                Instance {
                    size,
                    serving: size,
                    ready_at: i64::MIN,
                };
                count
            ],
        }
    }

    /// Instances whose start-up or resize is over by `now` serve at their size from then.
    pub fn settle(&mut self, now: i64) {
        for i in &mut self.instances {
            if i.ready_at <= now {
                i.serving = i.size;
            }
        }
    }

    /// Makes the pool `count` instances of `size` at `now`. Returns whether anything changed.
    ///
    /// Surplus instances go in the order a Kubernetes ReplicaSet removes pods: those not yet
    /// serving first, then the most recently ready.
    pub fn set_target(&mut self, now: i64, count: usize, size: f64, delays: Delays) -> bool {
        let mut changed = false;
        if self.instances.len() > count {
            // Sorted so the ones to remove are last: serving before starting, older first.
            self.instances.sort_by(|a, b| {
                let a_key = (a.serving <= 0.0, a.ready_at);
                let b_key = (b.serving <= 0.0, b.ready_at);
                a_key.cmp(&b_key)
            });
            self.instances.truncate(count);
            changed = true;
        }
        for i in &mut self.instances {
            if i.size == size {
                continue;
            }
            changed = true;
            if i.serving <= 0.0 {
                // Still starting: it comes up at the new size, no sooner.
                i.size = size;
            } else if size <= i.serving {
                // Shrinking takes effect at once; capacity drops now.
                i.serving = size;
                i.size = size;
            } else {
                i.size = size;
                i.ready_at = now + delays.resize;
            }
        }
        while self.instances.len() < count {
            self.instances.push(Instance {
                size,
                serving: 0.0,
                ready_at: now + delays.startup,
            });
            changed = true;
        }
        self.settle(now);
        changed
    }

    /// Instances running (serving or starting).
    pub fn count(&self) -> usize {
        self.instances.len()
    }

    /// Instances serving at all (Kubernetes: ready pods).
    pub fn ready_count(&self) -> usize {
        self.instances.iter().filter(|i| i.serving > 0.0).count()
    }

    /// Instances serving at exactly `size` (e.g. ready at full size).
    pub fn ready_at_size(&self, size: f64) -> usize {
        self.instances
            .iter()
            .filter(|i| i.size == size && i.serving == size)
            .count()
    }

    /// Instances of `size` that will serve at it but do not yet.
    pub fn coming_at_size(&self, size: f64) -> usize {
        self.instances
            .iter()
            .filter(|i| i.size == size && i.serving != size)
            .count()
    }

    /// Serving capacity in full-instance units.
    pub fn ready_units(&self) -> f64 {
        // A fold from +0.0: `sum` of no f64 is -0.0, which prints as "-0".
        self.instances
            .iter()
            .fold(0.0, |units, i| units + i.serving)
    }

    /// Cost rate in full-instance units: every running instance costs its (new) size, serving
    /// or not.
    pub fn cost_units(&self) -> f64 {
        self.instances.iter().fold(0.0, |units, i| units + i.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Delays = Delays {
        startup: 120,
        resize: 60,
    };

    #[test]
    fn new_instances_cost_at_once_and_serve_after_startup() {
        let mut p = Pool::ready(2, 1.0);
        assert!(p.set_target(0, 5, 1.0, D));
        assert_eq!((p.count(), p.ready_count(), p.cost_units()), (5, 2, 5.0));
        p.settle(119);
        assert_eq!(p.ready_units(), 2.0);
        p.settle(120);
        assert_eq!(p.ready_units(), 5.0);
        assert!(!p.set_target(130, 5, 1.0, D), "same target is no change");
    }

    #[test]
    fn scale_down_removes_starting_instances_first() {
        let mut p = Pool::ready(2, 1.0);
        p.set_target(0, 4, 1.0, D);
        assert!(p.set_target(10, 3, 1.0, D));
        assert_eq!((p.count(), p.ready_count()), (3, 2));
        p.set_target(20, 2, 1.0, D);
        assert_eq!((p.count(), p.ready_count()), (2, 2));
    }

    #[test]
    fn growing_serves_the_old_size_until_the_resize_is_done_shrinking_is_immediate() {
        let mut p = Pool::ready(3, 0.1);
        assert!((p.cost_units() - 0.3).abs() < 1e-12);
        p.set_target(0, 3, 1.0, D);
        assert_eq!(p.cost_units(), 3.0);
        assert!((p.ready_units() - 0.3).abs() < 1e-12);
        assert_eq!((p.ready_at_size(1.0), p.coming_at_size(1.0)), (0, 3));
        p.settle(60);
        assert_eq!(p.ready_at_size(1.0), 3);
        p.set_target(70, 2, 0.1, D);
        assert!((p.ready_units() - 0.2).abs() < 1e-12);
    }
}
