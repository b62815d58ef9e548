//! What the demo's clients saw: requests, failures and latency percentiles per phase of the
//! story, and per wall-clock second for the report's chart.

use serde::Serialize;

use super::load::{LivePhase, Sample};

/// One phase's requests.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseStats {
    /// The phase.
    pub phase: LivePhase,
    /// Its name in tables.
    pub label: &'static str,
    /// First and last request sent in it, ms after the live window started.
    pub from_ms: u32,
    /// See `from_ms`.
    pub to_ms: u32,
    /// Requests sent.
    pub requests: u64,
    /// Requests that failed (non-2xx, connection error, timeout).
    pub failed: u64,
    /// Share served by the shadow pool.
    pub on_shadow: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest request, ms.
    pub max_ms: f64,
}

/// One wall-clock bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    /// Bucket start, ms after the live window started.
    pub at_ms: u32,
    /// Requests/s sent.
    pub sent_rps: f64,
    /// Requests/s that failed.
    pub failed_rps: f64,
    /// Share served by the shadow pool.
    pub on_shadow: f64,
    /// p99 latency, ms (0 without requests).
    pub p99_ms: f64,
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn summarise(phase: LivePhase, label: &'static str, samples: &[&Sample]) -> Option<PhaseStats> {
    let first = samples.first()?;
    let mut latencies: Vec<f32> = samples.iter().map(|s| s.latency_ms).collect();
    latencies.sort_by(f32::total_cmp);
    let n = samples.len() as u64;
    Some(PhaseStats {
        phase,
        label,
        from_ms: first.sent_ms,
        to_ms: samples.last().map_or(first.sent_ms, |s| s.sent_ms),
        requests: n,
        failed: samples.iter().filter(|s| !s.ok).count() as u64,
        on_shadow: samples.iter().filter(|s| s.shadow).count() as f64 / n as f64,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        max_ms: latencies.last().map_or(0.0, |v| f64::from(*v)),
    })
}

/// Per phase (in story order, phases without requests left out), then the whole run.
pub fn by_phase(samples: &[Sample]) -> (Vec<PhaseStats>, Option<PhaseStats>) {
    let phases = LivePhase::ALL
        .iter()
        .filter_map(|&p| {
            let of: Vec<&Sample> = samples.iter().filter(|s| s.phase == p).collect();
            summarise(p, p.label(), &of)
        })
        .collect();
    let all: Vec<&Sample> = samples.iter().collect();
    // The whole run is tagged with the last phase; only its label is read.
    (phases, summarise(LivePhase::AfterRollback, "all", &all))
}

/// Buckets of `bucket_ms` (samples sorted by send time).
pub fn per_bucket(samples: &[Sample], bucket_ms: u32) -> Vec<Bucket> {
    let bucket_ms = bucket_ms.max(1);
    let seconds = f64::from(bucket_ms) / 1000.0;
    samples
        .chunk_by(|a, b| a.sent_ms / bucket_ms == b.sent_ms / bucket_ms)
        .map(|chunk| {
            let mut lat: Vec<f32> = chunk.iter().map(|s| s.latency_ms).collect();
            lat.sort_by(f32::total_cmp);
            let n = chunk.len() as f64;
            Bucket {
                at_ms: chunk[0].sent_ms / bucket_ms * bucket_ms,
                sent_rps: n / seconds,
                failed_rps: chunk.iter().filter(|s| !s.ok).count() as f64 / seconds,
                on_shadow: chunk.iter().filter(|s| s.shadow).count() as f64 / n,
                p99_ms: percentile(&lat, 0.99),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(sent_ms: u32, latency_ms: f32, ok: bool, shadow: bool, phase: LivePhase) -> Sample {
        Sample {
            sent_ms,
            latency_ms,
            ok,
            shadow,
            phase,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }

    #[test]
    fn phases_count_their_own_requests() {
        let samples = vec![
            sample(0, 20.0, true, false, LivePhase::PrimaryOnly),
            sample(10, 22.0, true, false, LivePhase::PrimaryOnly),
            sample(1000, 21.0, true, true, LivePhase::OnShadow),
            sample(2000, 310.0, true, true, LivePhase::Fault),
            sample(2100, 0.0, false, false, LivePhase::Fault),
        ];
        let (phases, all) = by_phase(&samples);
        assert_eq!(phases.len(), 3, "phases without requests are left out");
        assert_eq!(phases[0].requests, 2);
        assert_eq!(phases[0].on_shadow, 0.0);
        assert_eq!(phases[1].on_shadow, 1.0);
        let fault = &phases[2];
        assert_eq!((fault.requests, fault.failed), (2, 1));
        assert_eq!(fault.p99_ms, 310.0);
        assert_eq!((fault.from_ms, fault.to_ms), (2000, 2100));
        let all = all.expect("all");
        assert_eq!((all.requests, all.failed, all.label), (5, 1, "all"));
    }

    #[test]
    fn buckets_are_rates() {
        let samples = vec![
            sample(0, 10.0, true, false, LivePhase::PrimaryOnly),
            sample(400, 30.0, false, true, LivePhase::PrimaryOnly),
            sample(1200, 5.0, true, true, LivePhase::OnShadow),
        ];
        let b = per_bucket(&samples, 1000);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].at_ms, b[0].sent_rps, b[0].failed_rps), (0, 2.0, 1.0));
        assert_eq!((b[0].on_shadow, b[0].p99_ms), (0.5, 30.0));
        assert_eq!((b[1].at_ms, b[1].sent_rps), (1000, 1.0));
    }
}
