//! Criterion benches of the request path's pure parts, each beside the obvious alternative:
//! the lock-free window vs a Vec sorted for each p99, P2C vs a full least-loaded scan.
// criterion_group! generates an undocumented public fn.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use policies::{UpstreamLoad, choose_pool, pick_two_choices};
use proxy::LatencyWindow;

fn window(c: &mut Criterion) {
    let mut g = c.benchmark_group("latency_window");
    let w = LatencyWindow::new(Duration::from_secs(2));
    let mut t = 0u64;
    g.bench_function("umbra_record", |b| {
        b.iter(|| {
            t += 1;
            w.record(black_box(t / 64), Duration::from_micros(t % 5000), false);
        })
    });
    g.bench_function("umbra_p99_of_window", |b| {
        b.iter(|| black_box(w.snapshot(black_box(t / 64))))
    });
    // The alternative the guard avoids: keep samples, sort to get a p99.
    let samples: Vec<Duration> = (0..2000)
        .map(|i| Duration::from_micros((i * 7919) % 5000))
        .collect();
    g.bench_function("sorted_vec_p99_of_2000", |b| {
        b.iter(|| {
            let mut v = samples.clone();
            v.sort_unstable();
            black_box(v[v.len() * 99 / 100])
        })
    });
    g.finish();
}

fn selection(c: &mut Criterion) {
    let mut g = c.benchmark_group("upstream_choice");
    let loads: Vec<UpstreamLoad> = (0..16)
        .map(|i| UpstreamLoad {
            healthy: i % 5 != 0,
            in_flight: i * 3 % 7,
            ewma_us: 800 + i * 37,
        })
        .collect();
    let mut k = 0u32;
    g.bench_function("umbra_p2c_16", |b| {
        b.iter(|| {
            k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            black_box(pick_two_choices(loads.len(), |i| loads[i], (k, k >> 7)))
        })
    });
    g.bench_function("least_loaded_scan_16", |b| {
        b.iter(|| {
            black_box(
                loads
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.healthy)
                    .min_by_key(|(_, l)| u64::from(l.ewma_us) * (u64::from(l.in_flight) + 1))
                    .map(|(i, _)| i),
            )
        })
    });
    g.bench_function("umbra_split", |b| {
        b.iter(|| {
            k = k.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            black_box(choose_pool(black_box(300_000), k % 1_000_000))
        })
    });
    g.finish();
}

criterion_group!(benches, window, selection);
criterion_main!(benches);
