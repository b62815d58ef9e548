//! The load generator: the trace's request rate, compressed in time, sent through the proxy as
//! live HTTP requests, each one's outcome, latency and serving pool recorded.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Requests the client has outstanding at most; past it a request counts as failed at once
/// (the proxy or backends have stalled and piling up more would only measure the client).
const MAX_IN_FLIGHT: usize = 2_000;
/// How often the pacer wakes up.
const PACE: Duration = Duration::from_millis(5);
/// A request without an answer after this counts as failed.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the demo's story is; every request is tagged with the phase it was sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LivePhase {
    /// All traffic on primary, before the controller moves any.
    PrimaryOnly = 0,
    /// The controller is moving traffic to the shadow pool step by step.
    Ramping = 1,
    /// All traffic on the shadow pool.
    OnShadow = 2,
    /// The shadow pool is broken on purpose, until the proxy's guard rolls it back.
    Fault = 3,
    /// Back on primary after the rollback.
    AfterRollback = 4,
}

impl LivePhase {
    /// Every phase, in story order.
    pub const ALL: [LivePhase; 5] = [
        LivePhase::PrimaryOnly,
        LivePhase::Ramping,
        LivePhase::OnShadow,
        LivePhase::Fault,
        LivePhase::AfterRollback,
    ];

    /// How the tables name it.
    pub fn label(self) -> &'static str {
        match self {
            LivePhase::PrimaryOnly => "primary only",
            LivePhase::Ramping => "ramping",
            LivePhase::OnShadow => "on shadow",
            LivePhase::Fault => "fault -> rollback",
            LivePhase::AfterRollback => "after rollback",
        }
    }

    fn from_u8(v: u8) -> LivePhase {
        LivePhase::ALL
            .get(usize::from(v))
            .copied()
            .unwrap_or(LivePhase::AfterRollback)
    }
}

/// The current phase, shared between the observer (writer) and the load generator (reader).
#[derive(Clone, Debug, Default)]
pub struct PhaseCell(Arc<AtomicU8>);

impl PhaseCell {
    /// Now.
    pub fn get(&self) -> LivePhase {
        LivePhase::from_u8(self.0.load(Ordering::Relaxed))
    }

    /// Moves the story on.
    pub fn set(&self, phase: LivePhase) {
        self.0.store(phase as u8, Ordering::Relaxed);
    }
}

/// One request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// When it was sent, ms after the live window started.
    pub sent_ms: u32,
    /// Time to the full response (or to the failure), ms.
    pub latency_ms: f32,
    /// 2xx and a complete body.
    pub ok: bool,
    /// Served by the shadow pool (the proxy's `x-umbra-pool` header).
    pub shadow: bool,
    /// The phase it was sent in.
    pub phase: LivePhase,
}

/// Turns a rate into whole requests: carries the fraction over, so a rate of 0.5/s sends one
/// request every two seconds instead of none.
#[derive(Debug, Default)]
pub struct Pacer {
    credit: f64,
}

impl Pacer {
    /// Requests due after `dt` seconds at `rate` requests/s.
    pub fn due(&mut self, rate: f64, dt: f64) -> u32 {
        if rate.is_finite() && rate > 0.0 && dt > 0.0 {
            self.credit += rate * dt;
        }
        let n = self.credit.floor();
        self.credit -= n;
        n as u32
    }
}

/// Sends `rate(elapsed)` requests/s to `url` for `duration`, tagging each with `phase`;
/// returns every request once the last answer (or timeout) is in.
pub async fn run_load(
    url: String,
    rate: impl Fn(Duration) -> f64,
    duration: Duration,
    phase: PhaseCell,
) -> anyhow::Result<Vec<Sample>> {
    let client = reqwest::Client::builder().timeout(CLIENT_TIMEOUT).build()?;
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut pacer = Pacer::default();
    let mut tick = tokio::time::interval(PACE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = started;
    loop {
        tick.tick().await;
        let now = Instant::now();
        let elapsed = now.duration_since(started);
        if elapsed >= duration {
            break;
        }
        let due = pacer.due(rate(elapsed), now.duration_since(last).as_secs_f64());
        last = now;
        for _ in 0..due {
            let sent_ms = elapsed.as_millis() as u32;
            let tag = phase.get();
            if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                record(&samples, sent_ms, 0.0, false, false, tag);
                continue;
            }
            in_flight.fetch_add(1, Ordering::Relaxed);
            let (client, url, samples, in_flight) = (
                client.clone(),
                url.clone(),
                Arc::clone(&samples),
                Arc::clone(&in_flight),
            );
            tokio::spawn(async move {
                let t0 = Instant::now();
                let (ok, shadow) = send(&client, &url).await;
                let latency = t0.elapsed().as_secs_f32() * 1000.0;
                record(&samples, sent_ms, latency, ok, shadow, tag);
                in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
    }
    let drain_until = Instant::now() + CLIENT_TIMEOUT + Duration::from_secs(1);
    while in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut out = match samples.lock() {
        Ok(mut s) => std::mem::take(&mut *s),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    out.sort_by_key(|s| s.sent_ms);
    Ok(out)
}

async fn send(client: &reqwest::Client, url: &str) -> (bool, bool) {
    match client.get(url).send().await {
        Ok(resp) => {
            let shadow = resp
                .headers()
                .get("x-umbra-pool")
                .is_some_and(|v| v.as_bytes() == b"shadow");
            let success = resp.status().is_success();
            // The latency a user sees includes the body.
            let body = resp.bytes().await.is_ok();
            (success && body, shadow)
        }
        Err(e) => {
            tracing::debug!(error = %e, "demo request failed");
            (false, false)
        }
    }
}

fn record(
    samples: &Mutex<Vec<Sample>>,
    sent_ms: u32,
    latency_ms: f32,
    ok: bool,
    shadow: bool,
    phase: LivePhase,
) {
    let sample = Sample {
        sent_ms,
        latency_ms,
        ok,
        shadow,
        phase,
    };
    match samples.lock() {
        Ok(mut s) => s.push(sample),
        Err(poisoned) => poisoned.into_inner().push(sample),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_keeps_fractions_and_ignores_nonsense() {
        let mut p = Pacer::default();
        let total: u32 = (0..200).map(|_| p.due(100.0, 0.005)).sum();
        assert_eq!(total, 100, "100 req/s for one second in 5 ms steps");
        let mut slow = Pacer::default();
        let sent: u32 = (0..4).map(|_| slow.due(0.5, 1.0)).sum();
        assert_eq!(sent, 2, "0.5 req/s sends one every two seconds");
        let mut bad = Pacer::default();
        assert_eq!(bad.due(f64::NAN, 1.0) + bad.due(-3.0, 1.0), 0);
    }

    #[test]
    fn phases_round_trip_through_the_cell() {
        let cell = PhaseCell::default();
        assert_eq!(cell.get(), LivePhase::PrimaryOnly);
        for p in LivePhase::ALL {
            cell.set(p);
            assert_eq!(cell.get(), p);
        }
    }

    #[tokio::test]
    async fn load_follows_the_rate_and_records_failures() {
        // Nothing listens on this port: every request fails fast, and each is recorded once.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port");
        let samples = run_load(
            format!("http://{addr}/"),
            |_| 200.0,
            Duration::from_millis(500),
            PhaseCell::default(),
        )
        .await
        .expect("load");
        assert!((80..=110).contains(&samples.len()), "{}", samples.len());
        assert!(samples.iter().all(|s| !s.ok && !s.shadow));
    }
}
