//! The store survives a writer killed with SIGKILL: every append the writer saw acknowledged
//! is there after reopening, nothing half-written is, and SQLite's integrity check passes.
//!
//! The writer is this test binary itself, re-run with `--ignored --exact writer` and the
//! database path in an environment variable, so the kill hits a real process mid-write.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use controller::store::{Resource, SeriesKey, Store};

const DB_ENV: &str = "UMBRA_TEST_STORE_WRITER_DB";
const BATCH: i64 = 100;

fn key() -> SeriesKey {
    SeriesKey::new("api", "primary", Resource::Rps)
}

/// The writer process: appends batches of `BATCH` samples until killed, printing the number
/// of each batch after its transaction committed. Not a test of its own (hence ignored).
#[test]
#[ignore = "the writer process of acknowledged_appends_survive_a_kill_9_of_the_writer"]
fn writer() {
    let path = std::env::var(DB_ENV).expect("run by the kill test, which sets the database path");
    let store = Store::open(std::path::Path::new(&path)).expect("open the store");
    for batch in 0i64.. {
        let samples: Vec<_> = (batch * BATCH..(batch + 1) * BATCH)
            .map(|i| (key(), i * 1000, i as f64))
            .collect();
        store.append(&samples).expect("append");
        println!("acked {}", batch + 1);
    }
}

#[test]
fn acknowledged_appends_survive_a_kill_9_of_the_writer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("umbra.sqlite");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--ignored",
            "--exact",
            "writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DB_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");
    let mut acked = 0i64;
    let lines = BufReader::new(child.stdout.take().expect("writer stdout")).lines();
    for line in lines {
        let line = line.expect("writer output");
        if let Some(n) = line.strip_prefix("acked ") {
            acked = n.trim().parse().expect("batch number");
            if acked >= 200 {
                break;
            }
        }
    }
    // Mid-stream: the writer is inside its next transaction or about to start it.
    child.kill().expect("SIGKILL the writer");
    let status = child.wait().expect("reap the writer");
    assert!(!status.success(), "the writer ended by itself: {status}");
    assert_eq!(acked, 200, "the writer stopped early");

    let conn = rusqlite::Connection::open(&db).expect("reopen with sqlite");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    drop(conn);

    let store = Store::open(&db).expect("reopen the store");
    let got = store.samples(&key(), 0, i64::MAX).expect("read back");
    let n = got.len() as i64;
    assert!(
        n >= acked * BATCH,
        "{n} samples survived, {} were acknowledged",
        acked * BATCH
    );
    // Whole batches only (one transaction each), in order, each with its value.
    assert_eq!(n % BATCH, 0, "a batch survived half-written: {n} samples");
    for (i, (ts, v)) in got.iter().enumerate() {
        assert_eq!((*ts, *v), (i as i64 * 1000, i as f64), "sample {i}");
    }
}
