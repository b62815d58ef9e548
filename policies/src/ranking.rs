//! Which workloads to move first when several could: stateless first, then higher demand,
//! then higher priority.

use std::cmp::Ordering;

use crate::Priority;

/// A workload that could be migrated.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Name (ties are broken by name so the order is stable).
    pub name: String,
    /// No server-side session state.
    pub stateless: bool,
    /// Its policy allows moving it although it is stateful.
    pub allow_stateful: bool,
    /// Predicted resource demand (e.g. peak requests/s at the sizing quantile).
    pub demand: f64,
    /// Priority class.
    pub priority: Priority,
}

/// The order to migrate candidates in, as indices into `candidates`. Stateful workloads whose
/// policy does not allow it are left out.
pub fn rank_workloads(candidates: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].stateless || candidates[i].allow_stateful)
        .collect();
    order.sort_by(|&a, &b| compare(&candidates[a], &candidates[b]));
    order
}

fn compare(a: &Candidate, b: &Candidate) -> Ordering {
    b.stateless
        .cmp(&a.stateless)
        .then_with(|| b.demand.total_cmp(&a.demand))
        .then_with(|| b.priority.cmp(&a.priority))
        .then_with(|| a.name.cmp(&b.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, stateless: bool, allow: bool, demand: f64, priority: Priority) -> Candidate {
        Candidate {
            name: name.into(),
            stateless,
            allow_stateful: allow,
            demand,
            priority,
        }
    }

    #[test]
    fn stateless_then_demand_then_priority() {
        let cands = vec![
            c("stateful-big", false, true, 1000.0, Priority::Critical),
            c("small", true, false, 10.0, Priority::Critical),
            c("big-low", true, false, 500.0, Priority::Low),
            c("big-high", true, false, 500.0, Priority::High),
            c("stateful-locked", false, false, 9999.0, Priority::Critical),
        ];
        let names: Vec<_> = rank_workloads(&cands)
            .into_iter()
            .map(|i| cands[i].name.as_str())
            .collect();
        assert_eq!(names, ["big-high", "big-low", "small", "stateful-big"]);
    }

    #[test]
    fn order_is_deterministic() {
        let cands = vec![
            c("b", true, false, 1.0, Priority::Normal),
            c("a", true, false, 1.0, Priority::Normal),
        ];
        assert_eq!(rank_workloads(&cands), vec![1, 0]);
    }
}
