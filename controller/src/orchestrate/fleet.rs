//! The proxy fleet as one tick sees it: every proxy read once, all at once, each with its own timeout.

use std::collections::HashMap;
use std::time::Duration;

use policies::ProxyFacts;

use crate::metrics::ControllerMetrics;
use crate::proxies::Proxies;

/// What the proxies said this tick.
pub struct Fleet {
    by_workload: HashMap<String, Vec<wire::Workload>>,
    /// The proxies that answered: this tick's changes go to them alone.
    answering: Proxies,
}

impl Fleet {
    /// Reads every proxy at once. A proxy that does not answer within `timeout` (dead, or
    /// accepting and never answering) is counted, logged and left out of this tick; it never
    /// holds up the others. When it answers again, the reconciler repairs its weight and
    /// members from what it reports.
    pub async fn read(proxies: &Proxies, timeout: Duration, metrics: &ControllerMetrics) -> Self {
        let mut by_workload: HashMap<String, Vec<wire::Workload>> = HashMap::new();
        let mut answered = Vec::new();
        for (proxy, result) in proxies.workloads(timeout).await {
            let up = result.is_ok();
            metrics
                .proxy_up
                .with_label_values(&[&proxy.to_string()])
                .set(i64::from(up));
            match result {
                Ok(list) => {
                    answered.push(proxy);
                    for w in list {
                        by_workload.entry(w.name.clone()).or_default().push(w);
                    }
                }
                Err(e) => {
                    metrics.error("proxy");
                    tracing::warn!(%proxy, error = %e, "reading proxy state failed; left out of this tick");
                }
            }
        }
        Fleet {
            by_workload,
            answering: proxies.only(&answered),
        }
    }

    /// What each answering proxy reports on `workload`.
    pub fn reports(&self, workload: &str) -> &[wire::Workload] {
        self.by_workload.get(workload).map_or(&[], Vec::as_slice)
    }

    /// Whether a proxy reports its guard has rolled `workload`'s shadow back.
    pub fn rolled_back(&self, workload: &str) -> bool {
        self.reports(workload)
            .iter()
            .any(|r| r.state == wire::GuardStatus::RolledBack)
    }

    /// The proxies that answered, to carry this tick's changes.
    pub fn answering(&self) -> &Proxies {
        &self.answering
    }
}

/// One proxy's report in the reconciler's terms.
pub fn proxy_facts(r: &wire::Workload) -> ProxyFacts {
    ProxyFacts {
        weight: r.shadow_weight,
        rolled_back_at_ms: r.rolled_back_at_ms(),
        shadow_error_rate: r.shadow.error_rate,
    }
}
