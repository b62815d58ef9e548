//! Open-loop GET load at a fixed rate: each request is sent on schedule whatever happened to
//! the previous ones, so a stall shows up as latency and failures instead of a lower rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::record::{Outcome, Recorder, Sample};

/// The client's patience: longer than any retry the proxy makes, short enough to count a
/// black hole as a failure.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests outstanding at most; beyond it the generator waits (never reached on loopback
/// unless everything hangs).
const MAX_IN_FLIGHT: usize = 4096;

/// A running load; stop it to wait for its last requests.
pub struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Sends `GET url` at `rate` per second, recording each into `recorder`.
    pub fn start(recorder: &Recorder, url: String, rate: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(pace(recorder.clone(), url, rate, Arc::clone(&stop)));
        Load { stop, task }
    }

    /// Stops sending and waits for the requests in flight (at most [`CLIENT_TIMEOUT`]).
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Err(e) = self.task.await {
            eprintln!("load generator failed: {e}");
        }
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(512)
        .no_proxy()
        .build()
        .unwrap_or_else(|e| panic!("building the load client: {e}"))
}

async fn pace(recorder: Recorder, url: String, rate: f64, stop: Arc<AtomicBool>) {
    let client = client();
    let period = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut tick = tokio::time::interval(period);
    // A late tick sends at once, keeping the average rate (open loop).
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut inflight = JoinSet::new();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        while inflight.try_join_next().is_some() {}
        if inflight.len() >= MAX_IN_FLIGHT {
            let _one_done = inflight.join_next().await;
        }
        let (client, url, recorder) = (client.clone(), url.clone(), recorder.clone());
        inflight.spawn(async move {
            let sent_at = Instant::now();
            let outcome = one(&client, &url).await;
            recorder.push(Sample {
                sent: recorder.at(sent_at),
                latency: sent_at.elapsed(),
                outcome,
            });
        });
    }
    while inflight.join_next().await.is_some() {}
}

async fn one(client: &reqwest::Client, url: &str) -> Outcome {
    let answer = match client.get(url).send().await {
        Ok(a) => a,
        Err(e) => return classify(&e),
    };
    let status = answer.status();
    match answer.bytes().await {
        Err(e) => classify(&e),
        Ok(_) if status.is_success() => Outcome::Ok,
        Ok(_) => Outcome::Status(status.as_u16()),
    }
}

fn classify(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Reset
    }
}
