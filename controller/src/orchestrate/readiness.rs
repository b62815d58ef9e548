//! Debounces instance probes: one slow answer does not take a serving instance out of the pool.

use std::collections::HashMap;

/// Failed probes in a row before an instance that was ready counts as unready. A probe under
/// load can miss its deadline once; an instance that has really gone is dropped by its
/// provisioner at once (exited process, deleted pod), and the proxies eject it on the first
/// refused connection, so waiting one more probe costs nothing but a false rollback.
const FAILS_BEFORE_UNREADY: u32 = 2;

/// Failed probes in a row before an instance (past its start-up grace) is replaced.
const FAILS_BEFORE_REPLACE: u32 = 3;

/// What one probe result means for an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Counts as ready.
    Ready,
    /// Not ready (yet, or any more).
    Unready,
    /// Unready for long enough to be replaced (if past its start-up grace).
    Replace,
}

#[derive(Clone, Copy, Debug, Default)]
struct Record {
    ever_ready: bool,
    fails: u32,
}

/// Per-instance probe history, keyed by instance id.
#[derive(Debug, Default)]
pub struct Readiness {
    records: HashMap<String, Record>,
}

impl Readiness {
    /// Records one probe of `id` and says what it means.
    pub fn probed(&mut self, id: &str, ok: bool) -> Verdict {
        let r = self.records.entry(id.to_string()).or_default();
        if ok {
            *r = Record {
                ever_ready: true,
                fails: 0,
            };
            return Verdict::Ready;
        }
        r.fails += 1;
        if r.fails >= FAILS_BEFORE_REPLACE {
            // Starts over: the replacement (or the same id, if the provisioner reuses it)
            // must prove itself again.
            self.records.remove(id);
            return Verdict::Replace;
        }
        if r.ever_ready && r.fails < FAILS_BEFORE_UNREADY {
            Verdict::Ready
        } else {
            Verdict::Unready
        }
    }

    /// Forgets instances the provisioner no longer reports.
    pub fn retain(&mut self, alive: &[&str]) {
        self.records.retain(|id, _| alive.contains(&id.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serving_instance_survives_one_slow_probe_but_not_two() {
        let mut r = Readiness::default();
        assert_eq!(r.probed("a", true), Verdict::Ready);
        assert_eq!(r.probed("a", false), Verdict::Ready);
        assert_eq!(r.probed("a", false), Verdict::Unready);
        assert_eq!(r.probed("a", false), Verdict::Replace);
        // After a replace verdict the id starts over.
        assert_eq!(r.probed("a", false), Verdict::Unready);
    }

    #[test]
    fn an_instance_never_ready_gets_no_benefit_of_the_doubt() {
        let mut r = Readiness::default();
        assert_eq!(r.probed("b", false), Verdict::Unready);
        assert_eq!(r.probed("b", true), Verdict::Ready);
    }

    #[test]
    fn a_success_resets_the_count() {
        let mut r = Readiness::default();
        r.probed("c", true);
        r.probed("c", false);
        assert_eq!(r.probed("c", true), Verdict::Ready);
        assert_eq!(r.probed("c", false), Verdict::Ready);
    }

    #[test]
    fn forgotten_instances_lose_their_history() {
        let mut r = Readiness::default();
        r.probed("d", true);
        r.retain(&[]);
        assert_eq!(r.probed("d", false), Verdict::Unready);
    }
}
