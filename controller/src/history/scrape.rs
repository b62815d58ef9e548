//! Request rate and p99 latency per workload and pool, from successive scrapes of the proxies'
//! `/metrics` (counter deltas, summed over proxies).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::exposition::{Line, parse};

/// Cumulative counts of one proxy at one scrape, per (workload, pool).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    requests: BTreeMap<(String, String), f64>,
    /// Histogram buckets: (workload, pool) -> upper bound (seconds) -> cumulative count.
    buckets: BTreeMap<(String, String), Vec<(f64, f64)>>,
}

impl Totals {
    /// Reads the counters from a `/metrics` body.
    pub fn from_exposition(text: &str) -> Totals {
        let mut t = Totals::default();
        for Line {
            name,
            labels,
            value,
        } in parse(text)
        {
            let (Some(w), Some(p)) = (labels.get("workload"), labels.get("pool")) else {
                continue;
            };
            let key = (w.clone(), p.clone());
            match name.as_str() {
                "umbra_requests_total" => *t.requests.entry(key).or_default() += value,
                "umbra_request_duration_seconds_bucket" => {
                    let le = match labels.get("le").map(String::as_str) {
                        Some("+Inf") => f64::INFINITY,
                        Some(v) => match v.parse() {
                            Ok(v) => v,
                            Err(_) => continue,
                        },
                        None => continue,
                    };
                    t.buckets.entry(key).or_default().push((le, value));
                }
                _ => {}
            }
        }
        for b in t.buckets.values_mut() {
            b.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        t
    }
}

/// Rate and latency of one (workload, pool) over a scrape interval.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolRate {
    /// Workload.
    pub workload: String,
    /// `primary` or `shadow`.
    pub pool: String,
    /// Requests per second.
    pub rps: f64,
    /// p99 latency in ms over the interval (None without requests).
    pub p99_ms: Option<f64>,
}

/// Turns successive scrapes into rates. Keeps the previous totals of every proxy.
#[derive(Default)]
pub struct RateTracker {
    previous: HashMap<SocketAddr, (i64, Totals)>,
}

impl RateTracker {
    /// Feeds one scrape per proxy taken at `now_ms`; returns rates summed over the proxies that
    /// have a previous scrape. A counter that went down (proxy restart) counts from zero.
    pub fn observe(&mut self, scrapes: Vec<(SocketAddr, Totals)>, now_ms: i64) -> Vec<PoolRate> {
        let mut requests: BTreeMap<(String, String), f64> = BTreeMap::new();
        let mut buckets: BTreeMap<(String, String), BTreeMap<u64, f64>> = BTreeMap::new();
        let mut seconds = 0.0f64;
        for (proxy, totals) in scrapes {
            if let Some((then, prev)) = self.previous.get(&proxy) {
                let dt = (now_ms - then) as f64 / 1000.0;
                if dt > 0.0 {
                    seconds = seconds.max(dt);
                    for (k, &now) in &totals.requests {
                        let before = prev.requests.get(k).copied().unwrap_or(0.0);
                        *requests.entry(k.clone()).or_default() += delta(before, now) / dt;
                    }
                    for (k, bs) in &totals.buckets {
                        let old = prev.buckets.get(k);
                        let entry = buckets.entry(k.clone()).or_default();
                        for &(le, now) in bs {
                            let before = old
                                .and_then(|o| o.iter().find(|(l, _)| *l == le))
                                .map_or(0.0, |(_, v)| *v);
                            *entry.entry(le.to_bits()).or_default() += delta(before, now);
                        }
                    }
                }
            }
            self.previous.insert(proxy, (now_ms, totals));
        }
        if seconds == 0.0 {
            return Vec::new();
        }
        requests
            .into_iter()
            .map(|((workload, pool), rps)| {
                let p99_ms = buckets
                    .get(&(workload.clone(), pool.clone()))
                    .and_then(|b| histogram_quantile(b, 0.99))
                    .map(|s| s * 1000.0);
                PoolRate {
                    workload,
                    pool,
                    rps,
                    p99_ms,
                }
            })
            .collect()
    }
}

fn delta(before: f64, now: f64) -> f64 {
    if now >= before { now - before } else { now }
}

/// Prometheus' `histogram_quantile`: linear interpolation inside the bucket holding the rank.
fn histogram_quantile(buckets: &BTreeMap<u64, f64>, q: f64) -> Option<f64> {
    let mut sorted: Vec<(f64, f64)> = buckets
        .iter()
        .map(|(k, v)| (f64::from_bits(*k), *v))
        .collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = sorted.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev_le = 0.0;
    let mut prev_count = 0.0;
    for (le, count) in sorted {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev_le);
            }
            let in_bucket = count - prev_count;
            let frac = if in_bucket > 0.0 {
                (rank - prev_count) / in_bucket
            } else {
                1.0
            };
            return Some(prev_le + (le - prev_le) * frac);
        }
        prev_le = le;
        prev_count = count;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(primary: u64, shadow: u64, fast: u64, slow: u64) -> String {
        format!(
            "umbra_requests_total{{code=\"200\",pool=\"primary\",workload=\"api\"}} {primary}\n\
             umbra_requests_total{{code=\"200\",pool=\"shadow\",workload=\"api\"}} {shadow}\n\
             umbra_request_duration_seconds_bucket{{pool=\"primary\",workload=\"api\",le=\"0.01\"}} {fast}\n\
             umbra_request_duration_seconds_bucket{{pool=\"primary\",workload=\"api\",le=\"0.5\"}} {}\n\
             umbra_request_duration_seconds_bucket{{pool=\"primary\",workload=\"api\",le=\"+Inf\"}} {}\n",
            fast + slow,
            fast + slow
        )
    }

    #[test]
    fn rates_sum_over_proxies_and_survive_restarts() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let b: SocketAddr = "127.0.0.1:2".parse().expect("addr");
        let mut t = RateTracker::default();
        assert!(
            t.observe(
                vec![(a, Totals::from_exposition(&exposition(100, 0, 100, 0)))],
                0
            )
            .is_empty()
        );
        t.observe(
            vec![(b, Totals::from_exposition(&exposition(0, 0, 0, 0)))],
            0,
        );
        let rates = t.observe(
            vec![
                (a, Totals::from_exposition(&exposition(200, 50, 200, 0))),
                // b restarted: its counter is below the last value, so it counts from zero.
                (b, Totals::from_exposition(&exposition(30, 0, 30, 0))),
            ],
            10_000,
        );
        let primary = rates.iter().find(|r| r.pool == "primary").expect("primary");
        assert!((primary.rps - 13.0).abs() < 1e-9, "{primary:?}"); // (100 + 30) / 10 s
        let shadow = rates.iter().find(|r| r.pool == "shadow").expect("shadow");
        assert!((shadow.rps - 5.0).abs() < 1e-9);
    }

    #[test]
    fn p99_interpolates_inside_the_bucket() {
        let a: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let mut t = RateTracker::default();
        t.observe(
            vec![(a, Totals::from_exposition(&exposition(0, 0, 0, 0)))],
            0,
        );
        // 98 fast, 2 slow: the 99th percentile falls half-way into the 10-500 ms bucket.
        let rates = t.observe(
            vec![(a, Totals::from_exposition(&exposition(100, 0, 98, 2)))],
            1000,
        );
        let p99 = rates
            .iter()
            .find(|r| r.pool == "primary")
            .and_then(|r| r.p99_ms)
            .expect("p99");
        assert!((p99 - 255.0).abs() < 1e-6, "{p99}");
    }
}
