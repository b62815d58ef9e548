//! The election loop of one replica: every round reads the Lease, asks
//! `policies::decide_lease`, writes what it says, and publishes whether this replica leads.
//! The holder renews every third of the lease; followers look ten times per lease.

use std::time::Duration;

use policies::{LeaseAction, LeaseObservation, decide_lease, observe_lease, still_leading};
use tokio::sync::watch;

use super::lease::{Claim, LeaseClient, record_of};

/// How often the election runs and how much it tolerates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElectionTiming {
    /// How long a renewal holds the lease.
    pub lease: Duration,
    /// The holder renews this often. Default: a third of the lease.
    pub renew_every: Duration,
    /// Followers read the lease this often. Default: a tenth of the lease.
    pub retry_every: Duration,
    /// Added to a foreign lease's duration before it counts as expired (clock rates, request
    /// latency). Default: a twentieth of the lease.
    pub tolerance: Duration,
}

impl ElectionTiming {
    /// The defaults above for a lease of `lease`.
    pub fn for_lease(lease: Duration) -> Self {
        ElectionTiming {
            lease,
            renew_every: lease / 3,
            retry_every: lease / 10,
            tolerance: lease / 20,
        }
    }
}

/// One replica's side of the election.
pub struct Elector {
    lease: LeaseClient,
    timing: ElectionTiming,
    observed: Option<LeaseObservation>,
    /// Local unix ms at which the last successful claim was sent.
    renewed_at_ms: Option<u64>,
    leading: watch::Sender<bool>,
    gauge: Option<prometheus::IntGauge>,
}

impl Elector {
    /// An elector (not leading) and the receiver that follows its verdict. `gauge` (the
    /// `umbra_controller_leader` metric) is set to 1 while leading.
    pub fn new(
        lease: LeaseClient,
        timing: ElectionTiming,
        gauge: Option<prometheus::IntGauge>,
    ) -> (Self, watch::Receiver<bool>) {
        let (leading, rx) = watch::channel(false);
        if let Some(g) = &gauge {
            g.set(0);
        }
        let elector = Elector {
            lease,
            timing,
            observed: None,
            renewed_at_ms: None,
            leading,
            gauge,
        };
        (elector, rx)
    }

    fn publish(&mut self, leading: bool, why: &str) {
        let was = *self.leading.borrow();
        if was != leading {
            if leading {
                tracing::info!(lease = %self.lease.name(), identity = %self.lease.identity(), reason = why, "became the leader");
            } else {
                tracing::warn!(lease = %self.lease.name(), identity = %self.lease.identity(), reason = why, "stepped down");
            }
            self.leading.send_replace(leading);
        }
        if !leading {
            self.renewed_at_ms = None;
        }
        if let Some(g) = &self.gauge {
            g.set(i64::from(leading));
        }
    }

    /// One round at local time `now_ms`: read, decide, write. Returns whether this replica
    /// leads afterwards. A failed read or write, or a 409, steps down at once.
    pub async fn step(&mut self, now_ms: u64) -> bool {
        let read = match self.lease.read().await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, "reading the lease failed");
                self.publish(false, "the lease could not be read");
                return false;
            }
        };
        self.observed = observe_lease(self.observed.as_ref(), read.as_ref().map(record_of), now_ms);
        let action = decide_lease(
            self.observed.as_ref(),
            self.lease.identity(),
            now_ms,
            self.timing.tolerance.as_millis() as u64,
        );
        if let LeaseAction::Follow { holder, .. } = &action {
            self.publish(false, &format!("{holder} holds the lease"));
            return false;
        }
        match self.lease.claim(read.as_ref(), &action, now_ms).await {
            Ok(Claim::Held) => {
                self.renewed_at_ms = Some(now_ms);
                let why = match &action {
                    LeaseAction::TakeOver {
                        previous: Some(previous),
                    } => format!("took over the lease {previous} let expire"),
                    _ => format!("{action:?}"),
                };
                self.publish(true, &why);
                true
            }
            Ok(Claim::Lost) => {
                self.publish(false, "another replica wrote the lease first (409)");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, action = ?action, "writing the lease failed");
                self.publish(false, "the lease could not be written");
                false
            }
        }
    }

    /// Whether the last renewal still covers `now_ms` (stops a little before the lease
    /// expires for the others).
    pub fn covered(&self, now_ms: u64) -> bool {
        self.renewed_at_ms.is_some_and(|r| {
            still_leading(
                r,
                self.timing.lease.as_millis() as u64,
                self.timing.tolerance.as_millis() as u64,
                now_ms,
            )
        })
    }

    /// Runs rounds until `shutdown`, then releases the lease if held. A round that takes
    /// longer than the renewal period counts as a failed renewal.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let now = crate::clock::unix_ms().max(0) as u64;
            let leading = match tokio::time::timeout(self.timing.renew_every, self.step(now)).await
            {
                Ok(leading) => leading,
                Err(_) => {
                    self.publish(false, "a lease round timed out");
                    false
                }
            };
            let wait = if leading {
                self.timing.renew_every
            } else {
                self.timing.retry_every
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => break,
            }
            let now = crate::clock::unix_ms().max(0) as u64;
            if *self.leading.borrow() && !self.covered(now) {
                self.publish(false, "the last renewal no longer covers now");
            }
        }
        if *self.leading.borrow() {
            self.publish(false, "shutting down");
            match self.lease.release().await {
                Ok(()) => tracing::info!(lease = %self.lease.name(), "lease released"),
                Err(e) => tracing::warn!(error = %e, "releasing the lease failed; it expires"),
            }
        }
    }
}
