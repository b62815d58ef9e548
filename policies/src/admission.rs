//! Priority admission: under contention lower classes get a smaller share of a pool's budget.

use crate::Priority;

/// The share of a pool's in-flight budget each priority class may use, low to critical.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdmissionShares([f64; 4]);

/// Shares that would let a lower class crowd out a higher one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SharesError {
    /// Every share is a fraction of the budget.
    #[error("share for {class} must be in (0, 1], got {value}")]
    Range {
        /// The class whose share is out of range.
        class: Priority,
        /// The offending share.
        value: f64,
    },
    /// A lower class may never get more of the budget than a higher one.
    #[error("share for {lower} ({lower_share}) is above the share for {higher} ({higher_share})")]
    NotMonotone {
        /// The lower class.
        lower: Priority,
        /// Its share.
        lower_share: f64,
        /// The next higher class.
        higher: Priority,
        /// Its share.
        higher_share: f64,
    },
}

impl AdmissionShares {
    /// Shares for `[low, normal, high, critical]`, each in `(0, 1]` and non-decreasing with
    /// priority, so that critical traffic is never shed while lower traffic is admitted.
    pub fn new(shares: [f64; 4]) -> Result<Self, SharesError> {
        for (class, value) in Priority::ALL.into_iter().zip(shares) {
            if !(value > 0.0 && value <= 1.0) {
                return Err(SharesError::Range { class, value });
            }
        }
        for i in 1..4 {
            if shares[i - 1] > shares[i] {
                return Err(SharesError::NotMonotone {
                    lower: Priority::ALL[i - 1],
                    lower_share: shares[i - 1],
                    higher: Priority::ALL[i],
                    higher_share: shares[i],
                });
            }
        }
        Ok(AdmissionShares(shares))
    }

    /// The share for one class.
    pub fn share(&self, p: Priority) -> f64 {
        self.0[p.index()]
    }
}

impl Default for AdmissionShares {
    /// low 50%, normal 70%, high 90%, critical 100%.
    fn default() -> Self {
        AdmissionShares([0.5, 0.7, 0.9, 1.0])
    }
}

/// Admits a request of class `p` when the pool's in-flight count is below that class's share of
/// `budget`. A budget of 0 means "unlimited": nothing is shed.
#[inline]
pub fn admit(p: Priority, in_flight: u64, budget: u64, shares: &AdmissionShares) -> bool {
    if budget == 0 {
        return true;
    }
    let limit = (budget as f64 * shares.share(p)).floor() as u64;
    in_flight < limit.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_limits() {
        let s = AdmissionShares::default();
        assert!(admit(Priority::Low, 49, 100, &s));
        assert!(!admit(Priority::Low, 50, 100, &s));
        assert!(admit(Priority::Normal, 69, 100, &s));
        assert!(!admit(Priority::Normal, 70, 100, &s));
        assert!(admit(Priority::High, 89, 100, &s));
        assert!(!admit(Priority::High, 90, 100, &s));
        assert!(admit(Priority::Critical, 99, 100, &s));
        assert!(!admit(Priority::Critical, 100, 100, &s));
    }

    #[test]
    fn zero_budget_is_unlimited() {
        assert!(admit(
            Priority::Low,
            u64::MAX - 1,
            0,
            &AdmissionShares::default()
        ));
    }

    #[test]
    fn rejects_inverted_or_out_of_range_shares() {
        assert!(matches!(
            AdmissionShares::new([0.8, 0.7, 0.9, 1.0]),
            Err(SharesError::NotMonotone {
                lower: Priority::Low,
                ..
            })
        ));
        assert!(matches!(
            AdmissionShares::new([0.0, 0.7, 0.9, 1.0]),
            Err(SharesError::Range {
                class: Priority::Low,
                ..
            })
        ));
        assert!(AdmissionShares::new([0.5, 0.7, 0.9, 1.1]).is_err());
        assert!(AdmissionShares::new([0.5, f64::NAN, 0.9, 1.0]).is_err());
    }

    fn shares() -> impl Strategy<Value = AdmissionShares> {
        proptest::collection::vec(0.01f64..=1.0, 4).prop_map(|mut v| {
            v.sort_by(f64::total_cmp);
            AdmissionShares::new([v[0], v[1], v[2], v[3]]).expect("sorted shares are valid")
        })
    }

    proptest! {
        /// Whenever a lower class is admitted, every higher class would be admitted too.
        #[test]
        fn higher_classes_admitted_whenever_lower_are(
            s in shares(), in_flight in 0u64..10_000, budget in 0u64..10_000,
        ) {
            for (i, lower) in Priority::ALL.into_iter().enumerate() {
                if admit(lower, in_flight, budget, &s) {
                    for higher in &Priority::ALL[i..] {
                        prop_assert!(admit(*higher, in_flight, budget, &s));
                    }
                }
            }
        }
    }
}
