//! End-to-end: `umbra up` supervises its proxy: one that dies is started again, and stopping
//! `umbra up` stops it.

use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use umbra_e2e::TestUpstream;
use umbra_e2e::controller::Stack;
use umbra_e2e::http::{answers_2xx, eventually};
use umbra_e2e::procfs::{alive, children_named};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_proxy_is_started_again_and_stops_with_umbra_up() {
    let backend = TestUpstream::start("b").await;
    let body = format!(
        "[[workloads]]\nname = \"api\"\nprimary = [\"{}\"]\n",
        backend.addr()
    );
    let mut s = Stack::new("", &body, "");
    s.start_up().await;
    s.wait_serving().await;
    let up = s.controller_pid().expect("umbra up runs");
    let old = children_named(up, "umbra-proxy");
    assert_eq!(old.len(), 1, "one proxy child: {old:?}");

    kill(Pid::from_raw(old[0] as i32), Signal::SIGKILL).expect("kill the proxy");
    let url = format!("http://{}/", s.listen);
    let new = eventually(Duration::from_secs(15), || async {
        let pid = children_named(up, "umbra-proxy")
            .into_iter()
            .find(|p| *p != old[0])?;
        answers_2xx(&url, Duration::from_millis(100))
            .await
            .then_some(pid)
    })
    .await
    .unwrap_or_else(|| panic!("no new proxy served:\n{}", s.log("up.log")));
    assert!(
        s.log("up.log")
            .contains("umbra-proxy exited; restarting it"),
        "the restart is logged"
    );

    // Stopping umbra up (SIGTERM, as the stack's drop does) stops the new proxy too.
    drop(s);
    let gone = eventually(Duration::from_secs(15), || async {
        (!alive(new)).then_some(())
    })
    .await;
    assert!(gone.is_some(), "proxy {new} outlived umbra up");
}
