//! Prometheus as a history source, for real: a Prometheus server scrapes a running
//! `umbra-proxy` every second while traffic flows, then `umbra run` reads it through
//! `[controller.prometheus]` and the test checks what landed in the SQLite store against what
//! Prometheus itself answers.

use std::time::{Duration, Instant};

use umbra_e2e::TestUpstream;
use umbra_e2e::controller::Stack;
use umbra_e2e::external::Prometheus;
use umbra_e2e::http::eventually;
use umbra_e2e::load::Load;
use umbra_e2e::store::StoreReader;

const RPS_QUERY: &str = r#"sum(rate(umbra_requests_total{workload="{workload}"}[5s]))"#;
/// Prometheus's own CPU, since the proxy exports no process metrics; it shows a second
/// resource travelling the same path.
const CPU_QUERY: &str = r#"sum(rate(process_cpu_seconds_total{job="prometheus"}[5s]))"#;
const RATE: f64 = 20.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_controller_backfills_and_follows_series_from_a_real_prometheus() {
    let began = Instant::now();
    let upstream = TestUpstream::start("primary").await;
    let prom_addr = Prometheus::pick_addr();
    // Observe mode and no proxies to scrape: every sample in the store came from Prometheus.
    let controller = format!(
        "step = \"1s\"\nscrape_interval = \"500ms\"\nmode = \"observe\"\nproxies = []\n\n\
         [controller.prometheus]\nurl = \"http://{prom_addr}\"\nlookback = \"10m\"\n\
         queries = {{ rps = '{RPS_QUERY}', cpu = '{CPU_QUERY}' }}\n"
    );
    let body = format!(
        "[[workloads]]\nname = \"api\"\nprimary = [\"{}\"]\n",
        upstream.addr()
    );
    let mut s = Stack::new(&controller, &body, "");
    s.start_proxy().await;
    let prom = Prometheus::start(prom_addr, &[("umbra-proxy", s.admin)]).await;
    let load = Load::start(s.listen, RATE);

    // Enough scrapes for 5 s rate windows to be full before the controller starts.
    let rps_now = RPS_QUERY.replace("{workload}", "api");
    let scraped = eventually(Duration::from_secs(15), || {
        let prom = &prom;
        let q = rps_now.clone();
        async move {
            let v = prom.query(&q).await;
            v.first().filter(|r| **r > RATE * 0.5).map(|_| ())
        }
    })
    .await;
    assert!(
        scraped.is_some(),
        "Prometheus never saw the proxy's requests"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    s.start_controller().await;
    let data = s.dir.path().join("data");
    let backfilled = eventually(Duration::from_secs(10), || {
        let data = data.clone();
        async move {
            let store = StoreReader::open(&data);
            let rps = store.samples("api", "all", "rps");
            let cpu = store.samples("api", "all", "cpu");
            (rps.iter().filter(|(_, v)| *v > 0.0).count() >= 8 && cpu.len() >= 5)
                .then_some((rps, cpu))
        }
    })
    .await;
    let (rps, cpu) = backfilled.expect("no Prometheus series in the store");

    // The backfill is Prometheus's answer, point for point (the newest two seconds are left
    // out: a scrape in flight may still have changed them).
    let newest = rps.last().map_or(0, |p| p.0);
    let truth = prom
        .query_range(&rps_now, rps[0].0 / 1000, newest / 1000)
        .await;
    let settled: Vec<_> = rps.iter().filter(|(t, _)| *t < newest - 2000).collect();
    assert!(settled.len() >= 3, "too few settled points: {rps:?}");
    for (t, v) in &settled {
        let want = truth.iter().find(|(tt, _)| tt == t).map(|p| p.1);
        assert_eq!(
            want,
            Some(*v),
            "stored {v} at {t} but Prometheus answers {want:?}"
        );
    }
    // ...and measures the traffic that was really sent (rate() over a 5 s window, loosely).
    let mut busy: Vec<f64> = rps.iter().map(|p| p.1).filter(|v| *v > 0.0).collect();
    busy.sort_by(f64::total_cmp);
    let median = busy[busy.len() / 2];
    assert!(
        (RATE * 0.5..=RATE * 1.5).contains(&median),
        "median stored rps {median} for {RATE} rps sent: {rps:?}"
    );
    assert!(
        cpu.iter().all(|(_, v)| v.is_finite() && *v >= 0.0),
        "{cpu:?}"
    );
    assert!(
        cpu.iter().any(|(_, v)| *v > 0.0),
        "Prometheus used no CPU? {cpu:?}"
    );
    // Timestamps on Prometheus's step grid (whole seconds), never the controller's clock.
    assert!(rps.iter().all(|(t, _)| t % 1000 == 0), "{rps:?}");

    // After the backfill the loop keeps following: newer points arrive every step.
    let followed = eventually(Duration::from_secs(8), || {
        let data = data.clone();
        async move {
            let latest = StoreReader::open(&data)
                .samples("api", "all", "rps")
                .last()
                .map_or(0, |p| p.0);
            (latest >= newest + 2000).then_some(latest)
        }
    })
    .await;
    assert!(followed.is_some(), "no new samples after the backfill");
    let (ok, failed) = load.stop().await;
    assert!(ok > 0 && failed == 0, "traffic: {ok} ok, {failed} failed");

    let metrics = s.controller_metrics().await;
    assert!(
        !metrics.contains("component=\"prometheus\""),
        "Prometheus queries failed:\n{metrics}"
    );
    eprintln!("prometheus history test took {:?}", began.elapsed());
}
