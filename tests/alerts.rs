//! Alerts to a webhook, end to end: a migration rolls back (a shadow instance is killed
//! mid-ramp, as in `tests/controller.rs`) with `alert_webhook` pointing at a receiver in this
//! test, which checks the Alertmanager v2 shape and relays the same bytes to a real
//! Alertmanager; the alert must then be active in Alertmanager's `GET /api/v2/alerts`.
//!
//! One rollback run feeds both checks: the receiver sees exactly what Umbra sent, and
//! Alertmanager's own validation decides whether the shape is right.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use umbra_e2e::controller::Stack;
use umbra_e2e::external::Alertmanager;
use umbra_e2e::http::{client, eventually};
use umbra_e2e::load::Load;

/// The fast clocks and policy of `tests/controller.rs`: a forecast shortage starts a migration
/// within seconds, ramping 0.1 per second.
const CONTROLLER: &str =
    "step = \"1s\"\nscrape_interval = \"500ms\"\nforecast_interval = \"1s\"\ntick = \"250ms\"\n";

const POLICY: &str = "[forecast]\nquantile = 0.9\nhorizon = \"60s\"\n\n\
     [sizing]\ninstance_capacity = 10.0\nbuffer = 0.2\nmin_instances = 1\nmax_instances = 4\nstartup = \"2s\"\n\
     idle = { cpu_millis = 200, memory_mib = 64 }\nfull = { cpu_millis = 1000, memory_mib = 256 }\n\n\
     [trigger]\nthreshold = 0.9\nclear_below = 0.3\nlead_time = \"20s\"\nmin_hold = \"10m\"\n\n\
     [ramp]\nstart_weight = 0.1\nstep = 0.1\ninterval = \"1s\"\nmin_requests = 2\nmax_p99_ms = 500\n\
     at_full = \"keep_warm\"\nprovision_timeout = \"30s\"\nretry_after = \"10m\"\n";

fn workload() -> String {
    "[[workloads]]\nname = \"api\"\nprimary = [\"127.0.0.1:PRIMARY\"]\npolicy = \"test\"\n\n\
     [workloads.instance]\ncommand = [\"{umbra}\", \"backend\", \"--listen\", \"{addr}\", \"--capacity\", \"2000\", \"--name\", \"inst-{port}\"]\n\
     health_path = \"/healthz\"\nmanage_primary = true\n\n\
     [workloads.guard]\nwindow = \"2s\"\nmin_requests = 10\nmax_p99_ms = 400\nmax_error_rate = 0.5\ncooldown = \"5s\"\n"
        .replace("PRIMARY", &umbra_e2e::free_port().to_string())
}

/// Every body POSTed to the receiver, in order.
type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// An HTTP receiver that records each POST body and relays it to `relay`
/// (`http://host:port/path`), answering with the relay's status.
async fn receiver(relay: String) -> (SocketAddr, Received) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let addr = listener.local_addr().expect("addr");
    let received: Received = Arc::default();
    let log = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (log, relay) = (Arc::clone(&log), relay.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                let mut line = String::new();
                if reader.read_line(&mut line).await.is_err() {
                    return;
                }
                loop {
                    let mut h = String::new();
                    match reader.read_line(&mut h).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let h = h.trim_end();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                log.lock().expect("log").push(body.clone());
                let status = match client()
                    .post(&relay)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 502,
                };
                let answer = format!(
                    "HTTP/1.1 {status} relayed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _closed = reader.get_mut().write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, received)
}

/// Checks one body against Alertmanager's `POST /api/v2/alerts` schema (postableAlerts):
/// a JSON array of objects with string-valued `labels` (required, with `alertname`), string
/// `annotations`, and RFC 3339 `startsAt`.
fn check_alertmanager_shape(body: &[u8]) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_slice(body).expect("alert body is JSON");
    let alerts = v.as_array().expect("a JSON array of alerts").clone();
    assert!(!alerts.is_empty(), "empty alert array");
    for a in &alerts {
        let labels = a["labels"].as_object().expect("labels object");
        assert!(labels.values().all(|v| v.is_string()), "{a}");
        assert!(
            labels
                .get("alertname")
                .and_then(|n| n.as_str())
                .is_some_and(|n| !n.is_empty()),
            "{a}"
        );
        let annotations = a["annotations"].as_object().expect("annotations object");
        assert!(annotations.values().all(|v| v.is_string()), "{a}");
        let starts = a["startsAt"].as_str().expect("startsAt string");
        // 2026-11-28T22:41:45.529+00:00: date, 'T', time, and an offset or Z.
        let b = starts.as_bytes();
        assert!(
            starts.len() >= 20
                && b[4] == b'-'
                && b[7] == b'-'
                && b[10] == b'T'
                && b[13] == b':'
                && (starts.ends_with('Z') || starts[19..].contains(['+', '-'])),
            "startsAt {starts:?} is not RFC 3339"
        );
        for key in a.as_object().expect("alert object").keys() {
            assert!(
                [
                    "labels",
                    "annotations",
                    "startsAt",
                    "endsAt",
                    "generatorURL"
                ]
                .contains(&key.as_str()),
                "{key} is not a postableAlert field: {a}"
            );
        }
    }
    alerts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_alert_reaches_a_webhook_and_a_real_alertmanager() {
    let am = Alertmanager::start().await;
    let (tap, received) = receiver(format!("http://{}/api/v2/alerts", am.addr)).await;
    let mut s = Stack::new(
        &format!("{CONTROLLER}alert_webhook = \"http://{tap}/api/v2/alerts\"\n"),
        &workload(),
        POLICY,
    );
    let slice = s.morning_history();
    s.import("api", &slice, 0.001);
    s.start_proxy().await;
    s.start_controller().await;
    s.wait_serving().await;
    let load = Load::start(s.listen, 5.0);

    let ramped = eventually(Duration::from_secs(60), || async {
        (s.proxy_workload("api").await["shadow_weight"].as_f64()? >= 0.3).then_some(())
    })
    .await;
    assert!(ramped.is_some(), "ramp never reached 0.3");
    assert!(
        received.lock().expect("log").is_empty(),
        "alert before anything failed"
    );
    let pids = s.shadow_pids("api");
    assert!(!pids.is_empty(), "no shadow instances");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill a shadow instance");

    let delivered = eventually(Duration::from_secs(20), || {
        let received = Arc::clone(&received);
        async move {
            let bodies = received.lock().expect("log").clone();
            bodies
                .into_iter()
                .find(|b| String::from_utf8_lossy(b).contains("UmbraRollback"))
        }
    })
    .await;
    let (ok, failed) = load.stop().await;
    let body = delivered.expect("no rollback alert reached the webhook");
    let alerts = check_alertmanager_shape(&body);
    let rollback = &alerts[0];
    assert_eq!(rollback["labels"]["alertname"], "UmbraRollback");
    assert_eq!(rollback["labels"]["workload"], "api");
    assert_eq!(rollback["labels"]["service"], "umbra");
    assert!(
        rollback["annotations"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "a rollback alert says why: {rollback}"
    );
    assert_eq!(
        failed,
        0,
        "{failed} of {} client requests failed",
        ok + failed
    );

    // Alertmanager took it: active, with Umbra's labels and reason.
    let in_am = eventually(Duration::from_secs(10), || async {
        am.alerts().await.into_iter().find(|a| {
            a["labels"]["alertname"] == "UmbraRollback" && a["labels"]["workload"] == "api"
        })
    })
    .await
    .expect("the rollback alert is not in Alertmanager");
    assert_eq!(in_am["status"]["state"], "active", "{in_am}");
    assert_eq!(
        in_am["annotations"]["description"], rollback["annotations"]["description"],
        "{in_am}"
    );
    // The controller saw every delivery succeed (Alertmanager's answer was relayed to it).
    let metrics = s.controller_metrics().await;
    assert!(
        !metrics.contains("component=\"alert\""),
        "alert deliveries failed:\n{metrics}"
    );
}
