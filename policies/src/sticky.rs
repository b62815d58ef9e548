//! Pool choice for stateful workloads: existing sessions stay where they are.

use crate::{PoolKind, choose_pool};

/// What a stateful request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionFacts {
    /// The pool its `umbra_pool` cookie pins it to, if any.
    pub pinned: Option<PoolKind>,
    /// It carries the application's session cookie (a session that predates any pin).
    pub existing_session: bool,
}

/// The pool for a request of a stateful workload, and whether to pin it with a cookie.
///
/// A pin is honoured while the shadow takes traffic at all; an application session without a
/// pin started on primary and stays there; a new session goes by weight and is pinned to
/// where it landed. At weight 0 (never migrated, or rolled back) everything is primary: a
/// degraded shadow does not keep its sessions.
pub fn choose_pool_sticky(weight_ppm: u32, draw: u32, facts: SessionFacts) -> (PoolKind, bool) {
    if weight_ppm == 0 {
        return (PoolKind::Primary, false);
    }
    match (facts.pinned, facts.existing_session) {
        (Some(pool), _) => (pool, false),
        (None, true) => (PoolKind::Primary, true),
        (None, false) => (choose_pool(weight_ppm, draw), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NEW: SessionFacts = SessionFacts {
        pinned: None,
        existing_session: false,
    };

    #[test]
    fn existing_sessions_stay_on_primary_and_are_pinned_there() {
        let f = SessionFacts {
            pinned: None,
            existing_session: true,
        };
        assert_eq!(
            choose_pool_sticky(1_000_000, 0, f),
            (PoolKind::Primary, true)
        );
    }

    #[test]
    fn pins_are_honoured_while_the_shadow_takes_traffic() {
        let f = SessionFacts {
            pinned: Some(PoolKind::Shadow),
            existing_session: true,
        };
        assert_eq!(choose_pool_sticky(1, 999_999, f), (PoolKind::Shadow, false));
        assert_eq!(choose_pool_sticky(0, 0, f), (PoolKind::Primary, false));
    }

    #[test]
    fn new_sessions_go_by_weight_and_get_pinned() {
        assert_eq!(
            choose_pool_sticky(1_000_000, 5, NEW),
            (PoolKind::Shadow, true)
        );
        assert_eq!(
            choose_pool_sticky(300_000, 600_000, NEW),
            (PoolKind::Primary, true)
        );
    }

    proptest! {
        /// A session never changes pool while it is pinned and the shadow takes traffic.
        #[test]
        fn a_pinned_session_never_moves(w in 1u32..=1_000_000, draw in 0u32..1_000_000, shadow in any::<bool>()) {
            let pool = if shadow { PoolKind::Shadow } else { PoolKind::Primary };
            let f = SessionFacts { pinned: Some(pool), existing_session: false };
            prop_assert_eq!(choose_pool_sticky(w, draw, f).0, pool);
        }
    }
}
