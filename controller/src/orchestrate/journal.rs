//! Transitions the phase store has not taken yet (a full disk, an API outage), written in order
//! once it works again: a restart must recover from the last phase acted on, and the decision
//! log must keep every step with its reason.

use std::collections::VecDeque;

use policies::Phase;

use super::phases::{PhaseStore, PhaseStoreError};

/// Most transitions held while the store fails; beyond it the oldest are dropped (the newest,
/// the one a restart recovers from, is always kept). A ramp makes one a second at most.
const MAX_HELD: usize = 1000;

/// One transition as it was made.
struct Held {
    from: Phase,
    to: Phase,
    reason: String,
    at_ms: i64,
}

/// What writing the held transitions came to.
#[derive(Debug)]
pub enum Written {
    /// Every transition is in the store.
    All,
    /// The store failed; the rest stay held for the next attempt.
    Held(PhaseStoreError),
    /// Another controller wrote the phase since this one read it: everything held is dropped,
    /// that controller's phase wins.
    Fenced(PhaseStoreError),
}

/// The transitions of one workload not yet in the phase store, oldest first.
#[derive(Default)]
pub struct Journal {
    held: VecDeque<Held>,
    /// Transitions dropped for [`MAX_HELD`] since the store last worked.
    dropped: usize,
}

impl Journal {
    /// Adds a transition just made.
    pub fn record(&mut self, from: &Phase, to: &Phase, reason: &str, at_ms: i64) {
        self.held.push_back(Held {
            from: from.clone(),
            to: to.clone(),
            reason: reason.to_string(),
            at_ms,
        });
        if self.held.len() > MAX_HELD {
            self.held.pop_front();
            self.dropped += 1;
        }
    }

    /// Transitions waiting for the store.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Transitions dropped for the cap since the store last took everything (then reset).
    pub fn take_dropped(&mut self) -> usize {
        std::mem::take(&mut self.dropped)
    }

    /// Writes the held transitions of `workload` in order, stopping at the first failure.
    pub async fn write(&mut self, store: &dyn PhaseStore, workload: &str) -> Written {
        while let Some(t) = self.held.front() {
            match store
                .save(workload, &t.from, &t.to, &t.reason, t.at_ms)
                .await
            {
                Ok(()) => {
                    self.held.pop_front();
                }
                Err(e @ PhaseStoreError::Fenced { .. }) => {
                    self.held.clear();
                    return Written::Fenced(e);
                }
                Err(e) => return Written::Held(e),
            }
        }
        Written::All
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;

    /// A phase store that fails while `broken`, logging what it took.
    #[derive(Default)]
    struct Flaky {
        broken: AtomicBool,
        fenced: AtomicBool,
        log: Mutex<Vec<(String, String, i64)>>,
    }

    #[async_trait]
    impl PhaseStore for Flaky {
        fn kind(&self) -> &'static str {
            "flaky"
        }

        async fn load(&self, _workload: &str) -> Result<Option<Phase>, PhaseStoreError> {
            Ok(None)
        }

        async fn save(
            &self,
            _workload: &str,
            from: &Phase,
            to: &Phase,
            _reason: &str,
            now_ms: i64,
        ) -> Result<(), PhaseStoreError> {
            if self.fenced.load(Ordering::Relaxed) {
                return Err(PhaseStoreError::Fenced { name: "x".into() });
            }
            if self.broken.load(Ordering::Relaxed) {
                return Err(PhaseStoreError::Kubernetes {
                    name: "x".into(),
                    action: "save",
                    message: "disk full".into(),
                });
            }
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            log.push((from.name().to_string(), to.name().to_string(), now_ms));
            Ok(())
        }
    }

    fn ramp(weight: f64) -> Phase {
        Phase::Ramping {
            weight,
            step_since_ms: 0,
        }
    }

    #[tokio::test]
    async fn transitions_made_while_the_store_fails_are_written_in_order_when_it_works_again() {
        let store = Flaky::default();
        let mut j = Journal::default();
        j.record(&Phase::Idle, &ramp(0.1), "start", 1);
        assert!(matches!(j.write(&store, "api").await, Written::All));

        store.broken.store(true, Ordering::Relaxed);
        j.record(&ramp(0.1), &ramp(0.2), "step", 2);
        assert!(matches!(j.write(&store, "api").await, Written::Held(_)));
        let done = Phase::Migrated {
            since_ms: 3,
            primary_decommissioned: false,
        };
        j.record(&ramp(0.2), &done, "full", 3);
        assert!(matches!(j.write(&store, "api").await, Written::Held(_)));
        assert_eq!(j.len(), 2);

        store.broken.store(false, Ordering::Relaxed);
        assert!(matches!(j.write(&store, "api").await, Written::All));
        assert!(j.is_empty());
        let log = store.log.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let steps: Vec<(&str, &str, i64)> = log
            .iter()
            .map(|(f, t, at)| (f.as_str(), t.as_str(), *at))
            .collect();
        assert_eq!(
            steps,
            [
                ("idle", "ramping", 1),
                ("ramping", "ramping", 2),
                ("ramping", "migrated", 3)
            ],
            "every step, in order, with the time it was made"
        );
    }

    #[tokio::test]
    async fn a_fenced_write_drops_everything_held() {
        let store = Flaky::default();
        let mut j = Journal::default();
        store.broken.store(true, Ordering::Relaxed);
        j.record(&Phase::Idle, &ramp(0.1), "start", 1);
        assert!(matches!(j.write(&store, "api").await, Written::Held(_)));
        store.fenced.store(true, Ordering::Relaxed);
        assert!(matches!(j.write(&store, "api").await, Written::Fenced(_)));
        assert!(j.is_empty());
    }

    #[test]
    fn the_newest_transition_is_kept_past_the_cap() {
        let mut j = Journal::default();
        for i in 0..(MAX_HELD as i64 + 5) {
            j.record(&Phase::Idle, &ramp(0.1), "step", i);
        }
        assert_eq!(j.len(), MAX_HELD);
        assert_eq!(j.take_dropped(), 5);
        assert_eq!(j.held.back().map(|t| t.at_ms), Some(MAX_HELD as i64 + 4));
        assert_eq!(j.take_dropped(), 0);
    }
}
