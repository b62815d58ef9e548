//! Leader election on a lease: what a controller replica does with the lease it just read.
//!
//! Expiry is judged on the reader's own clock, from when it first saw the lease's current
//! record (holder and renew time), never by comparing the holder's written `renewTime` with
//! local time: two machines' clocks may disagree by seconds, and a holder whose clock runs
//! behind must not look expired while it is renewing (client-go's leader election does the
//! same). A reader that has just started therefore waits one full lease before taking over.

/// A lease as read from the API: the fields the election looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it; `None` (or empty) once released.
    pub holder: Option<String>,
    /// When the holder last renewed it, in the holder's clock (unix ms). Compared only for
    /// change, never against local time.
    pub renew_ms: Option<u64>,
    /// How long a renewal is valid, as the holder wrote it.
    pub duration_ms: u64,
}

impl LeaseRecord {
    fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// A lease record and when this replica's clock first saw it unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseObservation {
    /// The record.
    pub record: LeaseRecord,
    /// Local unix ms at which this exact record was first read.
    pub seen_since_ms: u64,
}

/// Keeps `previous`'s first-seen time while the record is unchanged; a new record (a renewal,
/// another holder) restarts the clock at `now_ms`. `None` when the lease does not exist.
pub fn observe_lease(
    previous: Option<&LeaseObservation>,
    read: Option<LeaseRecord>,
    now_ms: u64,
) -> Option<LeaseObservation> {
    let record = read?;
    let seen_since_ms = match previous {
        Some(p) if p.record == record => p.seen_since_ms,
        _ => now_ms,
    };
    Some(LeaseObservation {
        record,
        seen_since_ms,
    })
}

/// What to do with the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// No lease exists: create it naming me.
    Create,
    /// I hold it: write a fresh renew time.
    Renew,
    /// Someone else holds a live lease: do not act; look again later.
    Follow {
        /// The holder.
        holder: String,
        /// How long until it expires if not renewed (local clock).
        expires_in_ms: u64,
    },
    /// The lease is expired or released: replace it naming me (guarded by the resourceVersion
    /// read, so of two replicas racing, one wins and the other gets a conflict).
    TakeOver {
        /// The previous holder, if any.
        previous: Option<String>,
    },
}

/// The election decision: a function of the lease as observed, my identity and now.
///
/// `tolerance_ms` is added to the lease's duration before a foreign lease counts as expired:
/// clocks tick at slightly different rates, and a holder's renewal takes a request's time to
/// become visible.
pub fn decide_lease(
    lease: Option<&LeaseObservation>,
    me: &str,
    now_ms: u64,
    tolerance_ms: u64,
) -> LeaseAction {
    let Some(lease) = lease else {
        return LeaseAction::Create;
    };
    let Some(holder) = lease.record.holder() else {
        return LeaseAction::TakeOver { previous: None };
    };
    if holder == me {
        return LeaseAction::Renew;
    }
    let expires_at = lease
        .seen_since_ms
        .saturating_add(lease.record.duration_ms)
        .saturating_add(tolerance_ms);
    if now_ms >= expires_at {
        LeaseAction::TakeOver {
            previous: Some(holder.to_string()),
        }
    } else {
        LeaseAction::Follow {
            holder: holder.to_string(),
            expires_in_ms: expires_at - now_ms,
        }
    }
}

/// Whether the current holder may still act: its last successful renewal was *sent* at
/// `renewed_at_ms` (local clock), so every other replica sees the lease valid until at least
/// `renewed_at_ms + duration_ms`. It stops acting `margin_ms` before that.
pub fn still_leading(renewed_at_ms: u64, duration_ms: u64, margin_ms: u64, now_ms: u64) -> bool {
    now_ms.saturating_add(margin_ms) < renewed_at_ms.saturating_add(duration_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEASE: u64 = 15_000;

    fn record(holder: Option<&str>, renew_ms: u64) -> LeaseRecord {
        LeaseRecord {
            holder: holder.map(String::from),
            renew_ms: Some(renew_ms),
            duration_ms: LEASE,
        }
    }

    fn seen(holder: Option<&str>, renew_ms: u64, since: u64) -> LeaseObservation {
        LeaseObservation {
            record: record(holder, renew_ms),
            seen_since_ms: since,
        }
    }

    #[test]
    fn absent_lease_is_created() {
        assert_eq!(decide_lease(None, "a", 0, 0), LeaseAction::Create);
    }

    #[test]
    fn my_lease_is_renewed_even_when_old() {
        let l = seen(Some("a"), 0, 0);
        assert_eq!(
            decide_lease(Some(&l), "a", 1_000_000, 0),
            LeaseAction::Renew
        );
    }

    #[test]
    fn a_live_foreign_lease_is_followed_until_it_expires() {
        let l = seen(Some("b"), 0, 10_000);
        assert_eq!(
            decide_lease(Some(&l), "a", 10_000, 500),
            LeaseAction::Follow {
                holder: "b".into(),
                expires_in_ms: LEASE + 500
            }
        );
        assert_eq!(
            decide_lease(Some(&l), "a", 10_000 + LEASE + 499, 500),
            LeaseAction::Follow {
                holder: "b".into(),
                expires_in_ms: 1
            }
        );
        assert_eq!(
            decide_lease(Some(&l), "a", 10_000 + LEASE + 500, 500),
            LeaseAction::TakeOver {
                previous: Some("b".into())
            }
        );
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let l = seen(None, 0, 10_000);
        assert_eq!(
            decide_lease(Some(&l), "a", 10_000, 0),
            LeaseAction::TakeOver { previous: None }
        );
        let empty = seen(Some(""), 0, 10_000);
        assert_eq!(
            decide_lease(Some(&empty), "a", 10_000, 0),
            LeaseAction::TakeOver { previous: None }
        );
    }

    #[test]
    fn each_renewal_restarts_the_followers_clock() {
        let first = observe_lease(None, Some(record(Some("b"), 100)), 1_000).expect("a lease");
        let same =
            observe_lease(Some(&first), Some(record(Some("b"), 100)), 9_000).expect("a lease");
        assert_eq!(
            same.seen_since_ms, 1_000,
            "an unchanged record keeps its age"
        );
        let renewed =
            observe_lease(Some(&same), Some(record(Some("b"), 5_100)), 12_000).expect("a lease");
        assert_eq!(renewed.seen_since_ms, 12_000);
        assert!(matches!(
            decide_lease(Some(&renewed), "a", 12_000 + LEASE - 1, 0),
            LeaseAction::Follow { .. }
        ));
        assert_eq!(observe_lease(Some(&renewed), None, 13_000), None);
    }

    /// The holder's clock is 10 minutes behind ours: its renew times look ancient, yet while it
    /// keeps renewing (the record changes) it is never taken over. Its clock 10 minutes ahead
    /// does not make a dead holder live longer either.
    #[test]
    fn clock_skew_between_replicas_does_not_matter() {
        let skew = 600_000;
        let mut obs = None;
        let mut now = 1_000_000_000;
        for renewal in 0..10 {
            let holder_clock = now - skew + renewal * 5_000;
            obs = observe_lease(obs.as_ref(), Some(record(Some("b"), holder_clock)), now);
            assert!(matches!(
                decide_lease(obs.as_ref(), "a", now, 0),
                LeaseAction::Follow { .. }
            ));
            now += 5_000;
        }
        // Ahead by 10 minutes and then dead: expired one lease after we last saw it change.
        let ahead = observe_lease(None, Some(record(Some("c"), now + skew)), now).expect("a lease");
        assert!(matches!(
            decide_lease(Some(&ahead), "a", now + LEASE - 1, 0),
            LeaseAction::Follow { .. }
        ));
        assert_eq!(
            decide_lease(Some(&ahead), "a", now + LEASE, 0),
            LeaseAction::TakeOver {
                previous: Some("c".into())
            }
        );
    }

    #[test]
    fn a_holder_stops_acting_before_others_may_take_over() {
        assert!(still_leading(1_000, LEASE, 1_000, 1_000));
        assert!(still_leading(1_000, LEASE, 1_000, 1_000 + LEASE - 1_001));
        assert!(!still_leading(1_000, LEASE, 1_000, 1_000 + LEASE - 1_000));
        // A renewal that stalls past the lease: no longer the leader, whatever the server says.
        assert!(!still_leading(1_000, LEASE, 0, 1_000 + LEASE));
    }
}
