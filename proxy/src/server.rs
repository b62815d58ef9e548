//! Assembles the Pingora server: the proxy service on its plain and TLS listeners, the admin
//! API on its own listener, the guard, health, reload and drain machinery, and the hand-over of
//! every listening socket to a new binary on upgrade.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use config::Config;
use pingora_core::apps::HttpServerOptions;
use pingora_core::protocols::http::v2::server::default_h2_options;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::{RunArgs, Server};
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;

use crate::access_log::AccessLog;
use crate::admin::AdminApp;
use crate::clock::{now_ms, unix_now};
use crate::guard::GuardService;
use crate::health::HealthService;
use crate::metrics::Metrics;
use crate::reload::{ConfigWatcher, sighup_reloader};
use crate::service::UmbraProxy;
use crate::state::Shared;
use crate::threads::ThreadStarter;
use crate::tls::{TlsState, load_store, publish_expiry};

/// How often the config file (and the certificates it names) is checked for changes.
const WATCH_PERIOD: Duration = Duration::from_secs(1);
/// How long the new process waits for the old one's live state on an upgrade.
const HANDOVER_TIMEOUT: Duration = Duration::from_secs(2);
/// Seconds (one try each) the old and new process wait for each other to hand the listening
/// sockets over on an upgrade.
const UPGRADE_SOCKET_TRIES: usize = 15;
/// How long the access log may take to reach the disk when the process exits.
const LOG_FLUSH: Duration = Duration::from_secs(2);

/// How the process starts.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Take the listening sockets over from a running `umbra-proxy` (which hands them over on
    /// SIGQUIT) instead of binding them.
    pub upgrade: bool,
    /// Run in the background (systemd `Type=forking`): the command returns once the daemon is
    /// ready to serve, its pid in the file.
    pub daemon: Option<Daemon>,
}

/// Where a daemon keeps its pid and its log.
#[derive(Clone, Debug)]
pub struct Daemon {
    /// The pid file (the previous one is kept as `<file>.old` during an upgrade).
    pub pid_file: std::path::PathBuf,
    /// Where the daemon's log (stderr) goes; `None` discards it.
    pub log_file: Option<std::path::PathBuf>,
}

/// Builds every service for `config` and runs until SIGTERM/SIGQUIT (drain, then exit) or
/// SIGINT (at once).
pub fn run(config: Config, options: RunOptions) -> anyhow::Result<()> {
    let proxy_conf = &config.proxy;
    if !options.upgrade {
        // Pingora reports a taken port only from inside its runtime; check here to fail clearly.
        for (field, addr) in listeners(&config) {
            drop(
                std::net::TcpListener::bind(addr)
                    .with_context(|| format!("binding {field} {addr}"))?,
            );
        }
    }
    let grace = proxy_conf.shutdown_grace;
    let conf = ServerConf {
        threads: proxy_conf.threads,
        // One thread per core with no stealing measured cheapest per request
        // (../shared/PERF-NOTES.md); with one thread stealing has nothing to steal anyway.
        work_stealing: proxy_conf.threads > 1,
        // Pingora waits this long after a shutdown signal before stopping its runtimes (which
        // drops whatever is still in flight); the drain watch exits earlier once idle.
        grace_period_seconds: Some(grace.as_secs() + u64::from(grace.subsec_nanos() > 0)),
        graceful_shutdown_timeout_seconds: Some(1),
        // One attempt plus the single retry on the other pool after a connect failure.
        max_retries: 2,
        upgrade_sock: proxy_conf.upgrade_sock.to_string_lossy().into_owned(),
        // `systemctl reload` sends SIGQUIT first and starts the new process after; the old one
        // offers its sockets once a second. Pingora's fixed 5 tries leave a new process slow to
        // start (a busy machine) without sockets: 15 s for both sides.
        upgrade_sock_connect_accept_max_retries: Some(UPGRADE_SOCKET_TRIES),
        daemon: options.daemon.is_some(),
        // The starting command returns only once the daemon serves, so `systemctl reload`
        // sends SIGQUIT to the old process only when the new one is ready.
        daemon_wait_for_ready: options.daemon.is_some(),
        pid_file: options.daemon.as_ref().map_or_else(
            || ServerConf::default().pid_file,
            |d| d.pid_file.to_string_lossy().into_owned(),
        ),
        error_log: options
            .daemon
            .as_ref()
            .and_then(|d| d.log_file.as_ref())
            .map(|p| p.to_string_lossy().into_owned()),
        ..ServerConf::default()
    };

    let metrics = Metrics::new().context("registering metrics")?;
    let tls = match &proxy_conf.tls {
        Some(t) => {
            let store = load_store(t, &config.source, unix_now())?;
            publish_expiry(&metrics, &store);
            Some(TlsState::new(
                store,
                metrics.tls_handshakes_started.clone(),
                metrics.tls_handshakes.clone(),
            ))
        }
        None => None,
    };
    let mut threads = Vec::new();
    let access_log = match &proxy_conf.access_log {
        Some(settings) => {
            let (log, writer) = AccessLog::open(settings, metrics.access_log_dropped.clone())
                .context("opening the access log")?;
            threads.push(writer);
            threads.push(log.reopen_on_sigusr1());
            Some(log)
        }
        None => None,
    };
    let client = proxy_conf.client;
    let plain: Vec<SocketAddr> = proxy_conf.listen.clone();
    let admin_addr = proxy_conf.admin_listen;
    // Before the old process hands its sockets over, take its live state (weights, shadow
    // members, cooldowns the controller and guard set), so the upgrade changes nothing for
    // traffic. Without it the new process starts from the file, as a restart would.
    let handed_over = options
        .upgrade
        .then(|| crate::handover::fetch(proxy_conf.admin_listen, HANDOVER_TIMEOUT));
    let shared = Shared::new(config, metrics, tls.clone(), access_log.clone());
    match handed_over {
        Some(Ok(state)) => {
            let applied = state.apply(&shared.table.load(), &shared.registry.load(), now_ms());
            tracing::info!(
                workloads = applied,
                "live state taken over from the running process"
            );
        }
        Some(Err(e)) => tracing::warn!(
            error = %e,
            "could not read the running process's live state; starting from the config file"
        ),
        None => {}
    }
    threads.push(sighup_reloader(Arc::clone(&shared)).context("installing the SIGHUP handler")?);

    let opt = Opt {
        upgrade: options.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    // Bootstrap (with --upgrade: receiving the old process's sockets, up to ~5 s) runs as a
    // service, after the daemon fork, and tells a waiting daemon parent it is ready. Every
    // other service starts after it.
    let boot = server.bootstrap_as_a_service();
    let mut proxy = pingora_proxy::http_proxy_service_with_name(
        &server.configuration,
        UmbraProxy::new(Arc::clone(&shared)),
        "umbra proxy",
    );
    if let Some(app) = proxy.app_logic_mut() {
        let mut options = HttpServerOptions::default();
        // HTTP/2 with prior knowledge beside HTTP/1.1 on the plain listeners.
        options.h2c = true;
        // Pingora counts reuses after the first request; nginx's keepalive_requests (ours)
        // counts requests.
        options.keepalive_request_limit = client.keepalive_requests.map(|n| n.saturating_sub(1));
        options.h2_idle_timeout = Some(client.keepalive_timeout);
        // Slowloris: a request head must be complete within this of its first byte, and a new
        // connection must start one within it (third_party/pingora-core patch 1).
        options.h1_header_timeout = Some(client.header_timeout);
        app.server_options = Some(options);
        let mut h2 = default_h2_options();
        h2.max_concurrent_streams(client.h2_max_concurrent_streams);
        h2.max_header_list_size(u32::try_from(client.max_header_bytes).unwrap_or(u32::MAX));
        app.h2_options = Some(h2);
    }
    for addr in &plain {
        proxy.add_tcp(&addr.to_string());
    }
    if let (Some(state), Some(t)) = (&tls, &shared.config.load().proxy.tls) {
        for addr in &t.listen {
            let mut settings = state
                .listener_settings()
                .map_err(|e| anyhow::anyhow!("TLS listener {addr}: {e}"))?;
            // A client that stalls its handshake is dropped like one that stalls its headers
            // (third_party/pingora-core patch 2).
            settings.set_handshake_timeout(Some(client.header_timeout));
            proxy.add_tls_with_settings(&addr.to_string(), None, settings);
        }
        proxy.endpoints().set_pre_tls_callback(state.pre_tls());
    }
    server.add_service(proxy).add_dependency(&boot);

    // Pingora owns the admin listener too, so an upgrade hands it over with the others.
    let mut admin = Service::new(
        "umbra admin".to_string(),
        AdminApp::new(Arc::clone(&shared)),
    );
    admin.add_tcp(&admin_addr.to_string());
    admin.threads = Some(1);
    server.add_service(admin).add_dependency(&boot);

    server
        .add_service(background_service(
            "umbra guard",
            GuardService::new(Arc::clone(&shared)),
        ))
        .add_dependency(&boot);
    server
        .add_service(background_service(
            "umbra health",
            HealthService::new(Arc::clone(&shared)),
        ))
        .add_dependency(&boot);
    server
        .add_service(background_service(
            "umbra config watch",
            ConfigWatcher::new(Arc::clone(&shared), WATCH_PERIOD),
        ))
        .add_dependency(&boot);
    let log = access_log.clone();
    threads.push(shared.drain.watch(server.watch_execution_phase(), move || {
        if let Some(log) = log {
            log.flush(LOG_FLUSH);
        }
    }));
    server
        .add_service(background_service(
            "umbra threads",
            ThreadStarter::new(threads),
        ))
        .add_dependency(&boot);
    tracing::info!(
        listen = ?plain,
        tls = ?shared.config.load().proxy.tls.as_ref().map(|t| t.listen.clone()),
        admin = %admin_addr,
        upgrade = options.upgrade,
        "umbra-proxy starting"
    );
    server.run(RunArgs::default());
    if let Some(log) = access_log {
        log.flush(LOG_FLUSH);
    }
    Ok(())
}

/// Every socket the process listens on, with the field that names it.
fn listeners(config: &Config) -> Vec<(&'static str, SocketAddr)> {
    let p = &config.proxy;
    let mut out: Vec<_> = p.listen.iter().map(|a| ("proxy.listen", *a)).collect();
    out.extend(
        p.tls
            .iter()
            .flat_map(|t| t.listen.iter().map(|a| ("proxy.tls.listen", *a))),
    );
    out.push(("proxy.admin_listen", p.admin_listen));
    out
}
