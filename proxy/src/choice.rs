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
/// the request's cookies say). The other pool is loaded only when the chosen one has no
/// healthy member; each pool's members are read once ([`Pool::survey`](crate::Pool::survey)).
pub fn choose(w: &Workload, facts: Option<SessionFacts>, now_ms: u64, draws: Draws) -> Choice {
    let (pool, pin) = match facts {
        None => (choose_pool(w.weight_ppm(), draws.split), false),
        Some(facts) => choose_pool_sticky(w.weight_ppm(), draws.split, facts),
    };
    let chosen = w.pool(pool);
    let s = chosen.survey(now_ms, draws.upstream);
    if let Some(u) = s.pick {
        return Choice {
            pool,
            in_flight: s.in_flight,
            healthy: s.healthy,
            upstream: Some((pool, Arc::clone(u))),
            pin,
        };
    }
    // No healthy member (or its last one failed a check between reads): the other pool takes
    // the request if it has one, and admission counts against the pool that serves it.
    let other = w.pool(pool.other());
    let o = other.survey(now_ms, draws.upstream);
    let (admit, in_flight, healthy) = if s.healthy == 0 && o.healthy > 0 {
        (pool.other(), o.in_flight, o.healthy)
    } else {
        (pool, s.in_flight, s.healthy)
    };
    Choice {
        pool: admit,
        in_flight,
        healthy,
        upstream: o.pick.map(|u| (pool.other(), Arc::clone(u))),
        pin,
    }
}
