//! A lock-free sliding window of request latencies and errors: time slots of log-linear histograms.
//!
//! Recording is a few relaxed atomic adds (no lock, no allocation); the guard sums the slots
//! that are still inside the window. A slot is recycled by the first writer that lands in it
//! after its epoch has passed; a sample racing with that reset may be lost, which is harmless
//! for a p99 over hundreds of samples and is the price of never taking a lock on the hot path.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use policies::PoolWindow;

/// Sub-buckets per power of two: 16 gives about 3% relative resolution.
const SUB_BITS: u32 = 4;
const SUB: u64 = 1 << SUB_BITS;
/// Largest exponent kept; latencies above 2^27 us (~134 s) land in the last bucket.
const MAX_EXP: u32 = 27;
const BUCKETS: usize = (SUB + (MAX_EXP - SUB_BITS + 1) as u64 * SUB) as usize;
/// Slots per window: the window slides in steps of a tenth.
const SLOTS: u64 = 10;

/// Histogram bucket of a latency in microseconds.
fn bucket_of(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let exp = (63 - us.leading_zeros()).min(MAX_EXP);
    let us = us.min((1 << (MAX_EXP + 1)) - 1);
    let sub = (us >> (exp - SUB_BITS)) & (SUB - 1);
    (SUB + u64::from(exp - SUB_BITS) * SUB + sub) as usize
}

/// `[low, high)` microseconds covered by a bucket.
fn bucket_bounds(b: usize) -> (u64, u64) {
    let b = b as u64;
    if b < SUB {
        return (b, b + 1);
    }
    let exp = (b - SUB) / SUB + u64::from(SUB_BITS);
    let sub = (b - SUB) % SUB;
    let width = 1u64 << (exp - u64::from(SUB_BITS));
    let low = (SUB + sub) * width;
    (low, low + width)
}

fn slot_ms_of(window: Duration) -> u64 {
    (u64::try_from(window.as_millis()).unwrap_or(u64::MAX) / SLOTS).max(1)
}

struct Slot {
    epoch: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    buckets: Box<[AtomicU32]>,
}

impl Slot {
    fn new() -> Self {
        Slot {
            epoch: AtomicU64::new(u64::MAX),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            buckets: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn reset(&self) {
        self.requests.store(0, Relaxed);
        self.errors.store(0, Relaxed);
        for b in self.buckets.iter() {
            b.store(0, Relaxed);
        }
    }
}

/// Latencies and errors of one pool over the last `window`.
pub struct LatencyWindow {
    slot_ms: AtomicU64,
    slots: Box<[Slot]>,
}

impl LatencyWindow {
    /// A window of `window` length (at least 10 ms) sliding in tenths.
    pub fn new(window: Duration) -> Self {
        LatencyWindow {
            slot_ms: AtomicU64::new(slot_ms_of(window)),
            slots: (0..SLOTS).map(|_| Slot::new()).collect(),
        }
    }

    /// Records one finished request at `now_ms` (a monotonic millisecond clock).
    pub fn record(&self, now_ms: u64, latency: Duration, error: bool) {
        let slot = self.slot_for_write(now_ms);
        slot.requests.fetch_add(1, Relaxed);
        if error {
            slot.errors.fetch_add(1, Relaxed);
        }
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        slot.buckets[bucket_of(us)].fetch_add(1, Relaxed);
    }

    /// Records a failure with no latency worth measuring (e.g. connect refused).
    pub fn record_error(&self, now_ms: u64) {
        let slot = self.slot_for_write(now_ms);
        slot.requests.fetch_add(1, Relaxed);
        slot.errors.fetch_add(1, Relaxed);
    }

    fn slot_for_write(&self, now_ms: u64) -> &Slot {
        let epoch = now_ms / self.slot_ms.load(Relaxed);
        let slot = &self.slots[(epoch % SLOTS) as usize];
        let seen = slot.epoch.load(Relaxed);
        if seen != epoch
            && slot
                .epoch
                .compare_exchange(seen, epoch, Relaxed, Relaxed)
                .is_ok()
        {
            slot.reset();
        }
        slot
    }

    /// Changes the window length (a reload); forgets what it held.
    pub fn resize(&self, window: Duration) {
        self.slot_ms.store(slot_ms_of(window), Relaxed);
        self.clear();
    }

    /// Forgets everything, e.g. when the shadow pool's members change.
    pub fn clear(&self) {
        for s in self.slots.iter() {
            s.epoch.store(u64::MAX, Relaxed);
            s.reset();
        }
    }

    /// Requests, errors and p99 over the window ending at `now_ms`.
    pub fn snapshot(&self, now_ms: u64) -> PoolWindow {
        let current = now_ms / self.slot_ms.load(Relaxed);
        let live = |s: &&Slot| {
            let e = s.epoch.load(Relaxed);
            e != u64::MAX && e <= current && current - e < SLOTS
        };
        let mut counts = [0u64; BUCKETS];
        let (mut requests, mut errors) = (0, 0);
        for slot in self.slots.iter().filter(live) {
            requests += slot.requests.load(Relaxed);
            errors += slot.errors.load(Relaxed);
            for (c, b) in counts.iter_mut().zip(slot.buckets.iter()) {
                *c += u64::from(b.load(Relaxed));
            }
        }
        PoolWindow {
            requests,
            errors,
            p99: quantile(&counts, 0.99),
        }
    }
}

/// The `q` quantile of a histogram, interpolated linearly inside the bucket it falls in.
fn quantile(counts: &[u64], q: f64) -> Option<Duration> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    // Rank of the sample at quantile q (1-based, nearest-rank definition). Below 1/(1-q)
    // samples that rank is the maximum; one outlier (a cold connection, a scheduling hiccup)
    // is not a trend, so the top sample alone never decides: the rank stops one short of it.
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total.saturating_sub(1).max(1));
    let mut seen = 0;
    for (b, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        if seen + c >= rank {
            let (low, high) = bucket_bounds(b);
            let within = (rank - seen) as f64 / c as f64;
            let us = low as f64 + within * (high - low) as f64;
            return Some(Duration::from_nanos((us * 1000.0) as u64));
        }
        seen += c;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for us in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            100,
            1_000,
            99_999,
            1 << 27,
            u64::MAX,
        ] {
            let b = bucket_of(us);
            assert!(b >= last, "bucket order at {us}");
            assert!(b < BUCKETS);
            last = b;
        }
    }

    proptest! {
        #[test]
        fn value_is_inside_its_bucket(us in 0u64..(1 << 27)) {
            let (low, high) = bucket_bounds(bucket_of(us));
            prop_assert!(low <= us && us < high, "{} not in [{}, {})", us, low, high);
            // Resolution: a bucket is at most 1/16 of its lower bound wide (above 16 us).
            if us >= 16 {
                prop_assert!((high - low) as f64 <= low as f64 / 16.0 + 1.0);
            }
        }
    }

    #[test]
    fn p99_of_mostly_fast_with_slow_tail() {
        let w = LatencyWindow::new(Duration::from_secs(2));
        for i in 0..990 {
            w.record(1000 + i % 100, Duration::from_millis(2), false);
        }
        for _ in 0..10 {
            w.record(1050, Duration::from_millis(300), false);
        }
        let s = w.snapshot(1100);
        assert_eq!(s.requests, 1000);
        let p99 = s.p99.expect("samples");
        assert!(
            p99 >= Duration::from_micros(1900) && p99 <= Duration::from_micros(2100),
            "{p99:?}"
        );
        // One more slow sample pushes the 99th percentile into the slow tail.
        w.record(1060, Duration::from_millis(300), false);
        let p99 = w.snapshot(1100).p99.expect("samples");
        assert!(
            p99 >= Duration::from_millis(290) && p99 <= Duration::from_millis(310),
            "{p99:?}"
        );
    }

    #[test]
    fn one_outlier_in_a_small_window_is_not_the_p99() {
        let w = LatencyWindow::new(Duration::from_secs(2));
        for i in 0..12 {
            w.record(1000 + i, Duration::from_millis(2), false);
        }
        w.record(1050, Duration::from_millis(300), false);
        let p99 = w.snapshot(1100).p99.expect("samples");
        assert!(p99 <= Duration::from_micros(2100), "{p99:?}");
        // Two slow requests out of 14 are a trend.
        w.record(1060, Duration::from_millis(300), false);
        let p99 = w.snapshot(1100).p99.expect("samples");
        assert!(p99 >= Duration::from_millis(290), "{p99:?}");
        // A lone sample is its own p99.
        let one = LatencyWindow::new(Duration::from_secs(2));
        one.record(1000, Duration::from_millis(7), false);
        let p99 = one.snapshot(1000).p99.expect("sample");
        assert!(p99 >= Duration::from_micros(6500), "{p99:?}");
    }

    #[test]
    fn old_samples_slide_out() {
        let w = LatencyWindow::new(Duration::from_secs(1)); // 100 ms slots
        w.record(0, Duration::from_millis(500), true);
        assert_eq!(w.snapshot(50).requests, 1);
        assert_eq!(w.snapshot(999).requests, 1);
        // A full window later the slot is outside the window even though nobody wrote to it.
        assert_eq!(w.snapshot(1000).requests, 0);
        // A write that lands in the recycled slot resets it first.
        w.record(1005, Duration::from_millis(1), false);
        let s = w.snapshot(1005);
        assert_eq!((s.requests, s.errors), (1, 0));
    }

    #[test]
    fn errors_without_latency_count_as_requests() {
        let w = LatencyWindow::new(Duration::from_secs(1));
        w.record_error(10);
        w.record(10, Duration::from_millis(1), false);
        let s = w.snapshot(10);
        assert_eq!((s.requests, s.errors), (2, 1));
        assert!((s.error_rate() - 0.5).abs() < 1e-9);
        w.clear();
        assert_eq!(w.snapshot(10).requests, 0);
    }

    #[test]
    fn empty_window_has_no_p99() {
        let w = LatencyWindow::new(Duration::from_secs(1));
        assert_eq!(w.snapshot(0).p99, None);
    }
}
