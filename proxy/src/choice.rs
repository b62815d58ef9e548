//! Where a routed request goes: the pool (by weight, or by its session's pin), the fallback to
//! the other pool when the chosen one has no healthy member, the pool's occupancy for
//! admission, and the upstream to reserve. A plain function over the workload's state and the
//! caller's draws, so the request path and the routing bench run the same code.

use std::sync::Arc;

use policies::{PoolKind, SessionFacts, choose_pool, choose_pool_sticky};

use crate::upstream::Upstream;
use crate::workload::Workload;

/// The random numbers one choice uses (caller-owned RNG): two for the balancer, one in
/// `0..1_000_000` for the pool split.
#[derive(Clone, Copy, Debug)]
pub struct Draws {
    /// Balancer candidates.
    pub upstream: (u32, u32),
    /// Pool split, parts per million.
    pub split: u32,
}

/// What [`choose`] decided.
pub struct Choice {
    /// The pool admission counts against (the chosen one, or the other if only it is healthy).
    pub pool: PoolKind,
    /// Requests in flight to that pool's healthy members.
    pub in_flight: u64,
    /// Its healthy members.
    pub healthy: u64,
    /// The upstream to reserve once admitted, and its pool (the other one when `pool` has no
    /// healthy member at pick time); `None` when neither pool has one.
    pub upstream: Option<(PoolKind, Arc<Upstream>)>,
    /// The session should be pinned with a cookie to the pool that serves it.
    pub pin: bool,
}

/// The pool and upstream for a request of `w`. `facts` is `Some` for stateful workloads (what
/// the request's cookies say). Each pool's member list is loaded once.
pub fn choose(w: &Workload, facts: Option<SessionFacts>, now_ms: u64, draws: Draws) -> Choice {
    let (mut pool, pin) = match facts {
        None => (choose_pool(w.weight_ppm(), draws.split), false),
        Some(facts) => choose_pool_sticky(w.weight_ppm(), draws.split, facts),
    };
    let pools = w.pools();
    let (mut in_flight, mut healthy) = pools.get(pool).occupancy(now_ms);
    if healthy == 0 {
        // No healthy member: the other pool takes the request if it has one.
        let (other_in_flight, other_healthy) = pools.get(pool.other()).occupancy(now_ms);
        if other_healthy > 0 {
            (pool, in_flight, healthy) = (pool.other(), other_in_flight, other_healthy);
        }
    }
    let upstream = [pool, pool.other()].into_iter().find_map(|kind| {
        pools
            .get(kind)
            .pick(now_ms, draws.upstream)
            .map(|u| (kind, Arc::clone(u)))
    });
    Choice {
        pool,
        in_flight,
        healthy,
        upstream,
        pin,
    }
}
