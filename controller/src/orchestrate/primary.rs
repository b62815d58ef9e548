//! Primary instances that `umbra up` runs itself (`instance.manage_primary`): one process per
//! configured primary address, restarted if it exits, stopped on decommission.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::probe;

/// Runs one workload's primary instances.
pub struct PrimarySupervisor {
    workload: String,
    argv: Vec<String>,
    addrs: Vec<SocketAddr>,
    health_path: Option<String>,
    log_dir: PathBuf,
    env: BTreeMap<String, String>,
    children: Mutex<BTreeMap<SocketAddr, Child>>,
    wanted: std::sync::atomic::AtomicBool,
}

impl PrimarySupervisor {
    /// A supervisor for `addrs` running `argv` (`{addr}`, `{port}`, `{umbra}` substituted).
    pub fn new(
        workload: &str,
        argv: Vec<String>,
        addrs: Vec<SocketAddr>,
        health_path: Option<String>,
        env: BTreeMap<String, String>,
        log_dir: PathBuf,
    ) -> Self {
        PrimarySupervisor {
            workload: workload.to_string(),
            argv,
            addrs,
            health_path,
            log_dir,
            env,
            children: Mutex::new(BTreeMap::new()),
            wanted: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether primary should be running (false after a decommission).
    pub fn wanted(&self) -> bool {
        self.wanted.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts every instance that is not running (an address already answering — e.g. left
    /// over from before a controller crash — counts as running). Idempotent.
    pub async fn ensure_running(&self) -> Result<(), String> {
        self.wanted
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut children = self.children.lock().await;
        for &addr in &self.addrs {
            if let Some(child) = children.get_mut(&addr) {
                match child.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(status)) => {
                        tracing::warn!(workload = %self.workload, %addr, %status, "primary instance exited; restarting");
                    }
                    Err(e) => {
                        tracing::warn!(workload = %self.workload, %addr, error = %e, "cannot poll primary instance")
                    }
                }
                children.remove(&addr);
            }
            if probe::ready(addr, None, Duration::from_millis(200)).await {
                // Still running from before a controller crash: adopt it (its pid file lets a
                // later decommission stop it).
                continue;
            }
            let child = self.spawn(addr)?;
            if let Some(pid) = child.id() {
                if let Err(e) = std::fs::write(self.pid_file(addr), pid.to_string()) {
                    tracing::warn!(workload = %self.workload, %addr, error = %e, "writing the pid file failed");
                }
            }
            children.insert(addr, child);
        }
        Ok(())
    }

    fn spawn(&self, addr: SocketAddr) -> Result<Child, String> {
        let umbra = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "umbra".into());
        let argv: Vec<String> = self
            .argv
            .iter()
            .map(|a| {
                a.replace("{addr}", &addr.to_string())
                    .replace("{port}", &addr.port().to_string())
                    .replace("{umbra}", &umbra)
            })
            .collect();
        let (program, args) = argv.split_first().ok_or("empty instance command")?;
        std::fs::create_dir_all(&self.log_dir)
            .map_err(|e| format!("creating {}: {e}", self.log_dir.display()))?;
        let log_path = self
            .log_dir
            .join(format!("{}-primary-{}.log", self.workload, addr.port()));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(program)
            .args(args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting primary {program:?} for {addr}: {e}"))?;
        tracing::info!(workload = %self.workload, %addr, pid = child.id(), "primary instance started");
        Ok(child)
    }

    fn pid_file(&self, addr: SocketAddr) -> PathBuf {
        self.log_dir
            .join(format!("{}-primary-{}.pid", self.workload, addr.port()))
    }

    /// Stops every primary instance: the ones this process started and the ones adopted from
    /// before a restart (by pid file, only if the pid still runs a command naming the address).
    pub async fn stop(&self) {
        self.wanted
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let mut children = self.children.lock().await;
        for (addr, mut child) in std::mem::take(&mut *children) {
            if let Err(e) = child.kill().await {
                tracing::warn!(workload = %self.workload, %addr, error = %e, "stopping primary instance failed");
            } else {
                tracing::info!(workload = %self.workload, %addr, "primary instance stopped");
            }
            let _gone = std::fs::remove_file(self.pid_file(addr));
        }
        for &addr in &self.addrs {
            let path = self.pid_file(addr);
            let Some(pid) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&addr.to_string()) {
                let signalled = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
                tracing::info!(workload = %self.workload, %addr, pid, ok = signalled.is_ok(), "adopted primary instance stopped");
            }
            let _gone = std::fs::remove_file(&path);
        }
    }

    /// Whether every primary address answers its readiness probe.
    pub async fn ready(&self) -> bool {
        for &addr in &self.addrs {
            if !probe::ready(
                addr,
                self.health_path.as_deref(),
                Duration::from_millis(500),
            )
            .await
            {
                return false;
            }
        }
        true
    }
}
