//! Primary or shadow: the per-request pool choice from the current weight and a random draw.

use crate::PoolKind;

/// Sends a request to the shadow pool with probability `weight_ppm / 1e6`.
///
/// `draw` must be uniform in `0..1_000_000` (the caller owns the RNG, so tests are exact).
/// Weight 0 never chooses shadow and weight 1 always does.
#[inline]
pub fn choose_pool(weight_ppm: u32, draw: u32) -> PoolKind {
    if draw < weight_ppm {
        PoolKind::Shadow
    } else {
        PoolKind::Primary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ShadowWeight;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng, rngs::SmallRng};

    #[test]
    fn extremes_are_exact() {
        for draw in [0, 1, 499_999, 999_999] {
            assert_eq!(choose_pool(0, draw), PoolKind::Primary);
            assert_eq!(choose_pool(1_000_000, draw), PoolKind::Shadow);
        }
    }

    #[test]
    fn every_draw_counts_once() {
        // Over the full draw space the shadow share is exactly the weight.
        let w = ShadowWeight::new(0.3).expect("valid").to_ppm();
        let shadow = (0..1_000_000u32)
            .filter(|&d| choose_pool(w, d) == PoolKind::Shadow)
            .count();
        assert_eq!(shadow, 300_000);
    }

    proptest! {
        #[test]
        fn proportion_within_statistical_bounds(w in 0.0f64..=1.0, seed in any::<u64>()) {
            let ppm = ShadowWeight::new(w).expect("valid").to_ppm();
            let mut rng = SmallRng::seed_from_u64(seed);
            let n = 20_000u32;
            let shadow = (0..n)
                .filter(|_| choose_pool(ppm, rng.gen_range(0..1_000_000)) == PoolKind::Shadow)
                .count() as f64;
            // Six standard deviations of a binomial: fails by chance about once in 10^8 runs.
            let sd = (f64::from(n) * w * (1.0 - w)).sqrt();
            prop_assert!((shadow - f64::from(n) * w).abs() <= 6.0 * sd + 1.0);
        }
    }
}
