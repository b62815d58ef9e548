//! The shadow weight: the share of a workload's requests sent to its shadow pool.

use serde::Serialize;

/// A share of requests in `0.0..=1.0`; cannot be constructed out of range or NaN.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default, Serialize)]
#[serde(transparent)]
pub struct ShadowWeight(f64);

/// A weight outside `0..=1` (or not a number).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("shadow weight must be between 0 and 1, got {0}")]
pub struct WeightError(pub f64);

impl ShadowWeight {
    /// No traffic to the shadow pool.
    pub const ZERO: ShadowWeight = ShadowWeight(0.0);
    /// All traffic to the shadow pool.
    pub const FULL: ShadowWeight = ShadowWeight(1.0);

    /// A weight, or an error when `w` is NaN or outside `0..=1`.
    pub fn new(w: f64) -> Result<Self, WeightError> {
        if (0.0..=1.0).contains(&w) {
            Ok(ShadowWeight(w))
        } else {
            Err(WeightError(w))
        }
    }

    /// The share as a float in `0..=1`.
    pub fn get(self) -> f64 {
        self.0
    }

    /// The weight in parts per million, the form the proxy stores atomically.
    pub fn to_ppm(self) -> u32 {
        (self.0 * 1_000_000.0).round() as u32
    }

    /// Inverse of [`ShadowWeight::to_ppm`]; values above one million saturate to 1.
    pub fn from_ppm(ppm: u32) -> Self {
        ShadowWeight(f64::from(ppm.min(1_000_000)) / 1_000_000.0)
    }

    /// True when no request may go to the shadow pool.
    pub fn is_zero(self) -> bool {
        self.0 == 0.0
    }
}

impl std::fmt::Display for ShadowWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_out_of_range_and_nan() {
        assert!(ShadowWeight::new(-0.01).is_err());
        assert!(ShadowWeight::new(1.01).is_err());
        assert!(ShadowWeight::new(f64::NAN).is_err());
        assert!(ShadowWeight::new(f64::INFINITY).is_err());
        assert_eq!(ShadowWeight::new(0.3).map(ShadowWeight::get), Ok(0.3));
    }

    proptest! {
        #[test]
        fn ppm_round_trip_stays_in_range(w in 0.0f64..=1.0) {
            let sw = ShadowWeight::new(w).expect("in range");
            let back = ShadowWeight::from_ppm(sw.to_ppm());
            prop_assert!((back.get() - w).abs() <= 1e-6);
            prop_assert!((0.0..=1.0).contains(&back.get()));
        }

        #[test]
        fn from_ppm_never_leaves_range(ppm in any::<u32>()) {
            prop_assert!((0.0..=1.0).contains(&ShadowWeight::from_ppm(ppm).get()));
        }
    }
}
