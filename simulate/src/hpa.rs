//! The Kubernetes HorizontalPodAutoscaler's CPU algorithm, step for step: the replica
//! calculator (`pkg/controller/podautoscaler/replica_calculator.go`) and the autoscaling/v2
//! default behaviour (`horizontal.go`: stabilisation window, scale-up/-down rate policies).

use std::collections::VecDeque;

/// One scaling policy of an HPA behaviour (`type: Pods|Percent, value, periodSeconds`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatePolicy {
    /// At most this many pods per period.
    Pods {
        /// Pods.
        value: u32,
        /// Period, seconds.
        period_s: i64,
    },
    /// At most this percentage of the replicas at the period's start per period.
    Percent {
        /// Percent.
        value: u32,
        /// Period, seconds.
        period_s: i64,
    },
}

impl RatePolicy {
    fn period_s(self) -> i64 {
        match self {
            RatePolicy::Pods { period_s, .. } | RatePolicy::Percent { period_s, .. } => period_s,
        }
    }
}

/// An HPA on CPU utilisation. [`HpaConfig::new`] gives the Kubernetes defaults for everything
/// but the target.
#[derive(Clone, Debug, PartialEq)]
pub struct HpaConfig {
    /// `averageUtilization` target, percent of the CPU request.
    pub target_percent: u32,
    /// `--horizontal-pod-autoscaler-tolerance`: no change while |ratio - 1| <= this.
    pub tolerance: f64,
    /// `minReplicas`.
    pub min_replicas: u32,
    /// `maxReplicas`.
    pub max_replicas: u32,
    /// `behavior.scaleUp.stabilizationWindowSeconds`.
    pub up_window_s: i64,
    /// `behavior.scaleDown.stabilizationWindowSeconds`.
    pub down_window_s: i64,
    /// `behavior.scaleUp.policies` (selectPolicy: Max).
    pub scale_up: Vec<RatePolicy>,
    /// `behavior.scaleDown.policies` (selectPolicy: Max).
    pub scale_down: Vec<RatePolicy>,
}

impl HpaConfig {
    /// Target `target_percent` with the defaults of autoscaling/v2: tolerance 0.1, replicas
    /// `min..=max`, no scale-up stabilisation, 300 s scale-down stabilisation, scale-up by
    /// max(100%, 4 pods) per 15 s, scale-down by 100% per 15 s.
    pub fn new(target_percent: u32, min_replicas: u32, max_replicas: u32) -> Self {
        HpaConfig {
            target_percent,
            tolerance: 0.1,
            min_replicas,
            max_replicas,
            up_window_s: 0,
            down_window_s: 300,
            scale_up: vec![
                RatePolicy::Percent {
                    value: 100,
                    period_s: 15,
                },
                RatePolicy::Pods {
                    value: 4,
                    period_s: 15,
                },
            ],
            scale_down: vec![RatePolicy::Percent {
                value: 100,
                period_s: 15,
            }],
        }
    }
}

/// What the HPA sees of the pods at a sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodCounts {
    /// The scale target's replicas (ready or not).
    pub current: u32,
    /// Ready pods: the only ones with a usable CPU sample.
    pub ready: u32,
    /// Pods still starting (Kubernetes "ignored" pods: pending or unready within the CPU
    /// initialisation period).
    pub unready: u32,
}

/// The replica calculator's answer for CPU utilisation `used_millis` summed over ready pods,
/// each requesting `request_millis`. `None` when no pod is ready: Kubernetes then fails with
/// "did not receive metrics for any ready pods" and leaves the scale alone.
pub fn metric_replicas(
    config: &HpaConfig,
    pods: PodCounts,
    used_millis: u64,
    request_millis: u64,
) -> Option<u32> {
    if pods.ready == 0 || request_millis == 0 {
        return None;
    }
    let target = f64::from(config.target_percent.max(1));
    // Kubernetes truncates the utilisation to whole percent before dividing by the target.
    let utilisation =
        |pods_counted: u32| (used_millis * 100 / (u64::from(pods_counted) * request_millis)) as f64;
    let usage_ratio = utilisation(pods.ready) / target;
    let rebalance_ignored = pods.unready > 0 && usage_ratio > 1.0;
    if !rebalance_ignored {
        if (1.0 - usage_ratio).abs() <= config.tolerance {
            return Some(pods.current);
        }
        return Some((usage_ratio * f64::from(pods.ready)).ceil() as u32);
    }
    // Scaling up with pods still starting: they count as using 0% of their request.
    let counted = pods.ready + pods.unready;
    let new_ratio = utilisation(counted) / target;
    if (1.0 - new_ratio).abs() <= config.tolerance || new_ratio < 1.0 {
        return Some(pods.current);
    }
    let replicas = (new_ratio * f64::from(counted)).ceil() as u32;
    if replicas < pods.current {
        return Some(pods.current);
    }
    Some(replicas)
}

/// The HPA controller's memory: recent recommendations and scale events.
#[derive(Clone, Debug)]
pub struct Hpa {
    config: HpaConfig,
    /// (time, unstabilised recommendation).
    recommendations: VecDeque<(i64, u32)>,
    /// (time, pods added).
    up_events: VecDeque<(i64, u32)>,
    /// (time, pods removed).
    down_events: VecDeque<(i64, u32)>,
}

impl Hpa {
    /// An HPA with no history.
    pub fn new(config: HpaConfig) -> Self {
        Hpa {
            config,
            recommendations: VecDeque::new(),
            up_events: VecDeque::new(),
            down_events: VecDeque::new(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &HpaConfig {
        &self.config
    }

    /// One sync at unix second `now`: the replicas the scale target should have.
    pub fn sync(
        &mut self,
        now: i64,
        pods: PodCounts,
        used_millis: u64,
        request_millis: u64,
    ) -> u32 {
        let c = &self.config;
        let desired = if pods.current > c.max_replicas {
            c.max_replicas
        } else if pods.current < c.min_replicas {
            c.min_replicas
        } else {
            match metric_replicas(c, pods, used_millis, request_millis) {
                Some(d) => self.normalize(now, pods.current, d),
                None => pods.current,
            }
        };
        if desired > pods.current {
            self.up_events.push_back((now, desired - pods.current));
        } else if desired < pods.current {
            self.down_events.push_back((now, pods.current - desired));
        }
        desired
    }

    /// `normalizeDesiredReplicasWithBehaviors`: stabilise, then limit the rate and bounds.
    fn normalize(&mut self, now: i64, current: u32, desired: u32) -> u32 {
        let c = &self.config;
        let keep = c.up_window_s.max(c.down_window_s);
        while self
            .recommendations
            .front()
            .is_some_and(|(t, _)| *t < now - keep)
        {
            self.recommendations.pop_front();
        }
        let (mut up, mut down) = (desired, desired);
        for &(t, r) in &self.recommendations {
            if t > now - c.up_window_s {
                up = up.min(r);
            }
            if t > now - c.down_window_s {
                down = down.max(r);
            }
        }
        self.recommendations.push_back((now, desired));
        let mut recommendation = current;
        if recommendation < up {
            recommendation = up;
        }
        if recommendation > down {
            recommendation = down;
        }

        if recommendation > current {
            let limit = self.limit(now, current, &c.scale_up, true).max(current);
            let allowed = c.max_replicas.min(limit);
            recommendation.min(allowed)
        } else if recommendation < current {
            let limit = self.limit(now, current, &c.scale_down, false).min(current);
            let allowed = c.min_replicas.max(limit);
            recommendation.max(allowed)
        } else {
            recommendation
        }
    }

    /// `calculateScale{Up,Down}Limit...`: the furthest the policies let the scale move now.
    fn limit(&self, now: i64, current: u32, policies: &[RatePolicy], up: bool) -> u32 {
        let changed = |events: &VecDeque<(i64, u32)>, period: i64| -> i64 {
            events
                .iter()
                .filter(|(t, _)| *t > now - period)
                .map(|(_, n)| i64::from(*n))
                .sum()
        };
        let proposals = policies.iter().map(|p| {
            let period = p.period_s();
            let start = i64::from(current) - changed(&self.up_events, period)
                + changed(&self.down_events, period);
            let proposed = match (*p, up) {
                (RatePolicy::Pods { value, .. }, true) => start + i64::from(value),
                (RatePolicy::Pods { value, .. }, false) => start - i64::from(value),
                (RatePolicy::Percent { value, .. }, true) => {
                    (start as f64 * (1.0 + f64::from(value) / 100.0)).ceil() as i64
                }
                (RatePolicy::Percent { value, .. }, false) => {
                    (start as f64 * (1.0 - f64::from(value) / 100.0)) as i64
                }
            };
            proposed.clamp(0, i64::from(u32::MAX)) as u32
        });
        // selectPolicy Max: the policy allowing the biggest change wins.
        if up {
            proposals.max().unwrap_or(current)
        } else {
            proposals.min().unwrap_or(current)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HpaConfig {
        HpaConfig::new(50, 1, 100)
    }

    fn pods(current: u32, ready: u32) -> PodCounts {
        PodCounts {
            current,
            ready,
            unready: current - ready,
        }
    }

    #[test]
    fn replica_calculator_matches_kubernetes_arithmetic() {
        let c = config();
        // 2 pods of 1000m at 100%: ratio 2.0 -> ceil(2.0 * 2) = 4.
        assert_eq!(metric_replicas(&c, pods(2, 2), 2000, 1000), Some(4));
        // 54% vs 50%: within the 10% tolerance.
        assert_eq!(metric_replicas(&c, pods(2, 2), 1080, 1000), Some(2));
        // 56%: ratio 1.12 -> ceil(2.24) = 3.
        assert_eq!(metric_replicas(&c, pods(2, 2), 1120, 1000), Some(3));
        // Utilisation is truncated to whole percent: 1199m/2000m is 59% -> 1.18 -> 3.
        assert_eq!(metric_replicas(&c, pods(2, 2), 1199, 1000), Some(3));
        // 2 ready at 100%, 2 starting: rebalanced to 2000/4000 = 50% -> within tolerance.
        assert_eq!(metric_replicas(&c, pods(4, 2), 2000, 1000), Some(4));
        // 2 ready at 100%, 1 starting: 2000/3000 = 66% -> 1.32 -> ceil(3.96) = 4.
        assert_eq!(metric_replicas(&c, pods(3, 2), 2000, 1000), Some(4));
        // Scaling down ignores starting pods: 10% on 2 ready -> ceil(0.2 * 2) = 1.
        assert_eq!(metric_replicas(&c, pods(3, 2), 200, 1000), Some(1));
        // No ready pod: no metrics, no decision.
        assert_eq!(metric_replicas(&c, pods(3, 0), 0, 1000), None);
    }

    #[test]
    fn scale_up_is_limited_to_double_or_four_pods_per_15_s() {
        let mut h = Hpa::new(config());
        // 1 pod at 100% of request with a 10% target: wants 10, may add max(1, 4) = 4 -> 5.
        let mut c = config();
        c.target_percent = 10;
        h.config = c;
        assert_eq!(h.sync(0, pods(1, 1), 1000, 1000), 5);
        // 15 s later the event is outside the period: from 5 it may double to 10.
        assert_eq!(h.sync(15, pods(5, 5), 5000, 1000), 10);
    }

    #[test]
    fn events_inside_the_period_count_against_the_limit() {
        let mut c = config();
        c.target_percent = 10;
        let mut h = Hpa::new(c);
        assert_eq!(h.sync(0, pods(1, 1), 1000, 1000), 5);
        // 10 s later (a sync off the 15 s grid): the period started at 1 replica, so the
        // limit is still max(2 * 1, 1 + 4) = 5.
        assert_eq!(h.sync(10, pods(5, 5), 5000, 1000), 5);
    }

    #[test]
    fn scale_down_waits_for_the_stabilisation_window() {
        let mut h = Hpa::new(config());
        assert_eq!(h.sync(0, pods(4, 4), 2000, 1000), 4);
        // Demand falls: 10% -> recommendation ceil(0.2 * 4) = 1, but 4 was recommended
        // within the last 300 s.
        for t in (15..300).step_by(15) {
            assert_eq!(h.sync(t, pods(4, 4), 400, 1000), 4, "at {t}");
        }
        // At 300 s the sample from 0 s is exactly 300 s old: no longer "after" the cutoff.
        assert_eq!(h.sync(300, pods(4, 4), 400, 1000), 1);
    }

    #[test]
    fn bounds_apply() {
        let mut h = Hpa::new(HpaConfig::new(50, 2, 6));
        assert_eq!(h.sync(0, pods(4, 4), 4000, 1000), 6);
        assert_eq!(h.sync(15, pods(6, 6), 0, 1000), 6);
        let mut h = Hpa::new(HpaConfig::new(50, 2, 6));
        assert_eq!(
            h.sync(0, pods(4, 4), 0, 1000),
            2,
            "no history: straight to min"
        );
    }
}
