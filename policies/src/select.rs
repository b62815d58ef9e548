//! Upstream choice inside a pool: power of two choices over a peak-EWMA load estimate.

/// What the selector needs to know about one upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpstreamLoad {
    /// Passes active health checks and is not passively ejected.
    pub healthy: bool,
    /// Requests currently outstanding to it.
    pub in_flight: u32,
    /// Peak-sensitive moving average of its response time, microseconds (0 = no data yet).
    pub ewma_us: u32,
}

impl UpstreamLoad {
    /// Expected wait for one more request: latency times queue depth, as linkerd's peak-EWMA
    /// balancer scores endpoints. Upstreams without data score as 1 ms so they get tried.
    fn cost(&self) -> u64 {
        let latency = if self.ewma_us == 0 {
            1_000
        } else {
            u64::from(self.ewma_us)
        };
        latency * (u64::from(self.in_flight) + 1)
    }
}

/// Picks one healthy upstream among `n`: two candidates drawn with `draws` (uniform random
/// numbers, caller-owned RNG), the lower cost wins. `None` when no upstream is healthy.
///
/// Two random choices give most of the benefit of least-loaded selection without scanning or
/// herding every proxy onto the same "best" upstream (Mitzenmacher, "The Power of Two Choices").
///
/// The first candidate is the healthy upstream of rank `draws.0 % healthy`, the second another
/// of the rest by `draws.1`. Two passes: one counts the healthy, one finds the two ranks, so
/// `load` is called at most `2n` times (it reads atomics in the proxy).
pub fn pick_two_choices(
    n: usize,
    load: impl Fn(usize) -> UpstreamLoad,
    draws: (u32, u32),
) -> Option<usize> {
    let healthy = (0..n).filter(|&i| load(i).healthy).count();
    if healthy == 0 {
        return None;
    }
    let first = draws.0 as usize % healthy;
    // The second is drawn among the other healthy upstreams so the two are distinct.
    let second = (healthy > 1).then(|| {
        let j = draws.1 as usize % (healthy - 1);
        j + usize::from(j >= first)
    });
    let (mut a, mut b) = (None, None);
    let mut rank = 0;
    for i in 0..n {
        let l = load(i);
        if !l.healthy {
            continue;
        }
        if rank == first {
            a = Some((i, l));
        } else if Some(rank) == second {
            b = Some((i, l));
        }
        rank += 1;
        if a.is_some() && (b.is_some() || second.is_none()) {
            break;
        }
    }
    // A health check may flip between the passes: then whichever candidate was found serves.
    match (a, b) {
        (Some((a, la)), Some((b, lb))) => Some(if lb.cost() < la.cost() { b } else { a }),
        (Some((i, _)), None) | (None, Some((i, _))) => Some(i),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn up(healthy: bool, in_flight: u32, ewma_us: u32) -> UpstreamLoad {
        UpstreamLoad {
            healthy,
            in_flight,
            ewma_us,
        }
    }

    #[test]
    fn none_when_nothing_is_healthy() {
        let loads = [up(false, 0, 0), up(false, 0, 0)];
        assert_eq!(pick_two_choices(2, |i| loads[i], (0, 0)), None);
        assert_eq!(pick_two_choices(0, |i| loads[i], (0, 0)), None);
    }

    #[test]
    fn single_healthy_is_always_chosen() {
        let loads = [up(false, 0, 0), up(true, 100, 100_000), up(false, 0, 0)];
        for d in 0..10 {
            assert_eq!(pick_two_choices(3, |i| loads[i], (d, d * 7)), Some(1));
        }
    }

    #[test]
    fn lower_cost_wins_between_the_two() {
        let loads = [up(true, 10, 1000), up(true, 0, 1000)];
        for d in 0..10 {
            assert_eq!(pick_two_choices(2, |i| loads[i], (d, d + 3)), Some(1));
        }
        // A slow upstream loses to a fast one at equal queue depth.
        let loads = [up(true, 1, 50_000), up(true, 1, 2_000)];
        assert_eq!(pick_two_choices(2, |i| loads[i], (0, 0)), Some(1));
    }

    proptest! {
        #[test]
        fn never_picks_unhealthy(
            health in proptest::collection::vec(any::<bool>(), 0..12),
            a in any::<u32>(), b in any::<u32>(),
        ) {
            let loads: Vec<_> = health.iter().map(|&h| up(h, 0, 0)).collect();
            match pick_two_choices(loads.len(), |i| loads[i], (a, b)) {
                Some(i) => prop_assert!(loads[i].healthy),
                None => prop_assert!(!health.iter().any(|&h| h)),
            }
        }

        /// The candidates are the healthy upstream of rank `a` and another drawn with `b`
        /// among the rest; the cheaper wins, the first on a tie.
        #[test]
        fn picks_the_cheaper_of_two_distinct_candidates(
            members in proptest::collection::vec((any::<bool>(), 0u32..4, 0u32..3000), 1..12),
            a in any::<u32>(), b in any::<u32>(),
        ) {
            let loads: Vec<_> = members.iter().map(|&(h, q, e)| up(h, q, e)).collect();
            let healthy: Vec<usize> = (0..loads.len()).filter(|&i| loads[i].healthy).collect();
            let got = pick_two_choices(loads.len(), |i| loads[i], (a, b));
            if healthy.is_empty() {
                prop_assert_eq!(got, None);
                return Ok(());
            }
            let first = healthy[a as usize % healthy.len()];
            let others: Vec<usize> = healthy.iter().copied().filter(|&i| i != first).collect();
            let want = match others.get(b as usize % others.len().max(1)) {
                Some(&second) if loads[second].cost() < loads[first].cost() => second,
                _ => first,
            };
            prop_assert_eq!(got, Some(want));
        }

        /// Every healthy upstream can be reached, so load spreads over the whole pool.
        #[test]
        fn every_healthy_upstream_is_reachable(n in 1usize..8) {
            let loads: Vec<_> = (0..n).map(|_| up(true, 0, 1000)).collect();
            let mut seen = vec![false; n];
            for a in 0..n as u32 {
                for b in 0..n as u32 {
                    if let Some(i) = pick_two_choices(n, |i| loads[i], (a, b)) {
                        seen[i] = true;
                    }
                }
            }
            prop_assert!(seen.iter().all(|&s| s));
        }
    }
}
