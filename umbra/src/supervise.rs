//! `umbra up`'s proxy supervisor: umbra-proxy runs as a child and is started again whenever it
//! exits, after a delay that grows while it keeps dying young, until shutdown stops it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio::sync::watch;

/// Delay before restarting a proxy that had been running for a while.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between restarts of a proxy that keeps exiting.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// A proxy that ran at least this long before exiting counts as having been healthy.
const STABLE: Duration = Duration::from_secs(60);

/// The delay before restarting a proxy that exited after running for `ran_for`, when the
/// previous restart waited `previous`: doubling while it keeps dying within a minute (a bad
/// config, a taken port), so a crash loop does not spin; short again once it had run a minute.
pub fn restart_delay(previous: Option<Duration>, ran_for: Duration) -> Duration {
    match previous {
        Some(d) if ran_for < STABLE => (d * 2).clamp(FIRST_DELAY, MAX_DELAY),
        _ => FIRST_DELAY,
    }
}

/// How to start the proxy.
pub struct ProxyCommand {
    /// The `umbra-proxy` binary.
    pub binary: PathBuf,
    /// Its config file.
    pub config: PathBuf,
    /// (variable, value) pairs its config reads, the admin token among them.
    pub env: Vec<(String, String)>,
    /// Its stdout and stderr are appended here, so a crash's last words survive the restart.
    pub log: PathBuf,
}

impl ProxyCommand {
    /// Starts one proxy process (killed if its handle is dropped).
    pub fn spawn(&self) -> std::io::Result<Child> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
    }
}

/// Keeps the proxy running: `child` is the one already started; whenever it exits another is
/// started. When `stop` flips (shutdown; or its sender is gone) nothing is started any more and
/// the running proxy gets SIGTERM, so it drains its requests, and is killed if it has not
/// exited within `grace`.
pub async fn supervise(
    command: ProxyCommand,
    mut child: Child,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut started = Instant::now();
    let mut delay = None;
    loop {
        let status = tokio::select! {
            biased;
            _ = stopped(&mut stop) => {
                stop_gracefully(&mut child, grace).await;
                return;
            }
            status = child.wait() => status,
        };
        let ran_for = started.elapsed();
        let mut wait = restart_delay(delay, ran_for);
        tracing::error!(status = ?status, ran_for = ?ran_for, restart_in = ?wait, "umbra-proxy exited; restarting it");
        loop {
            tokio::select! {
                biased;
                _ = stopped(&mut stop) => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match command.spawn() {
                Ok(c) => {
                    child = c;
                    break;
                }
                Err(e) => {
                    wait = restart_delay(Some(wait), Duration::ZERO);
                    tracing::error!(error = %e, retry_in = ?wait, "starting umbra-proxy failed");
                }
            }
        }
        delay = Some(wait);
        started = Instant::now();
        tracing::info!(pid = ?child.id(), "umbra-proxy restarted");
    }
}

/// Resolves once `stop` is true or its sender is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: nobody can ask any more, so stop.
    let _gone = stop.wait_for(|s| *s).await;
}

/// SIGTERM, then SIGKILL after `grace`.
async fn stop_gracefully(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        return; // already reaped
    };
    let signalled = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    if (signalled.is_err() || tokio::time::timeout(grace, child.wait()).await.is_err())
        && let Err(e) = child.kill().await
    {
        tracing::warn!(error = %e, "stopping umbra-proxy failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_while_the_proxy_dies_young_and_resets_after_a_stable_run() {
        let young = Duration::from_secs(1);
        let mut d = restart_delay(None, young);
        assert_eq!(d, FIRST_DELAY);
        let mut seen = vec![d];
        for _ in 0..8 {
            d = restart_delay(Some(d), young);
            seen.push(d);
        }
        assert_eq!(seen[1], Duration::from_millis(200));
        assert_eq!(seen[2], Duration::from_millis(400));
        assert_eq!(*seen.last().unwrap_or(&d), MAX_DELAY, "{seen:?}");
        assert_eq!(restart_delay(Some(MAX_DELAY), STABLE), FIRST_DELAY);
    }

    #[tokio::test]
    async fn a_child_that_exits_is_started_again_and_stop_ends_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let count = dir.path().join("starts");
        // A stand-in for the proxy: counts its starts, exits at once the first two times,
        // then stays up (until SIGTERM).
        let script = dir.path().join("fake-proxy");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho x >> {c}\n[ $(wc -l < {c}) -ge 3 ] && exec sleep 30\nexit 1\n",
                c = count.display()
            ),
        )
        .expect("script");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let command = ProxyCommand {
            binary: script,
            config: dir.path().join("unused.toml"),
            env: Vec::new(),
            log: dir.path().join("proxy.log"),
        };
        let first = command.spawn().expect("spawn");
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(supervise(command, first, rx, Duration::from_secs(5)));
        let starts = || {
            std::fs::read_to_string(&count)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while starts() < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(starts(), 3, "restarted after each exit");
        tx.send(true).expect("supervisor listening");
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stop ends the supervisor promptly")
            .expect("supervisor task");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(starts(), 3, "nothing started after stop");
    }
}
