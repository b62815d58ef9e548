//! Assembles the Pingora server: the proxy service plus guard, health, admin and reload services.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use config::Config;
use pingora_core::server::Server;
use pingora_core::server::configuration::ServerConf;
use pingora_core::services::background::background_service;

use crate::admin::AdminService;
use crate::guard::GuardService;
use crate::health::HealthService;
use crate::metrics::Metrics;
use crate::reload::{ConfigWatcher, spawn_sighup_reloader};
use crate::service::UmbraProxy;
use crate::state::Shared;

/// How often the config file is checked for changes.
const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// Builds every service for `config` and runs until SIGTERM/SIGINT. Never returns normally.
pub fn run(config: Config) -> anyhow::Result<()> {
    let admin_listener = std::net::TcpListener::bind(config.proxy.admin_listen)
        .with_context(|| format!("binding proxy.admin_listen {}", config.proxy.admin_listen))?;
    // Pingora reports a taken port only from inside its runtime; check it here to fail clearly.
    drop(
        std::net::TcpListener::bind(config.proxy.listen)
            .with_context(|| format!("binding proxy.listen {}", config.proxy.listen))?,
    );

    let grace = config.proxy.shutdown_grace;
    let conf = ServerConf {
        threads: config.proxy.threads,
        // One thread per core with no stealing measured cheapest per request
        // (../shared/PERF-NOTES.md); with one thread stealing has nothing to steal anyway.
        work_stealing: config.proxy.threads > 1,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(grace.as_secs().max(1)),
        // One attempt plus the single retry on the other pool after a connect failure.
        max_retries: 2,
        ..ServerConf::default()
    };
    let listen = config.proxy.listen;
    let metrics = Metrics::new().context("registering metrics")?;
    let shared = Shared::new(config, metrics);
    spawn_sighup_reloader(Arc::clone(&shared)).context("installing the SIGHUP handler")?;

    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora_proxy::http_proxy_service_with_name(
        &server.configuration,
        UmbraProxy::new(Arc::clone(&shared)),
        "umbra proxy",
    );
    proxy.add_tcp(&listen.to_string());
    server.add_service(proxy);
    server.add_service(background_service(
        "umbra guard",
        GuardService::new(Arc::clone(&shared)),
    ));
    server.add_service(background_service(
        "umbra health",
        HealthService::new(Arc::clone(&shared)),
    ));
    server.add_service(background_service(
        "umbra admin",
        AdminService::new(Arc::clone(&shared), admin_listener),
    ));
    server.add_service(background_service(
        "umbra config watch",
        ConfigWatcher::new(Arc::clone(&shared), WATCH_PERIOD),
    ));
    tracing::info!(%listen, admin = %shared.config.load().proxy.admin_listen, "umbra-proxy starting");
    server.run_forever()
}
