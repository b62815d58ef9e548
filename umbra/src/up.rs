//! `umbra up`: everything on one machine — the proxy as a supervised child (started again if
//! it exits), example backends, the controller with the `process` provisioner, state under the
//! data dir.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rand::Rng;
use tokio::process::Child;
use tokio::sync::watch;

use crate::supervise::{ProxyCommand, supervise};

/// The config `umbra up` uses without `--config`.
pub const DEFAULT_CONFIG: &str = "config/umbra.toml";
/// The environment variable the default config reads the admin token from.
pub const TOKEN_ENV: &str = "UMBRA_ADMIN_TOKEN";

/// The admin token for this run: `$UMBRA_ADMIN_TOKEN` if set, else a random one saved (0600)
/// under the data dir so the operator can use the admin APIs. It is never printed.
fn run_token(data_dir: &Path) -> anyhow::Result<(String, Option<PathBuf>)> {
    if let Ok(t) = std::env::var(TOKEN_ENV) {
        if !t.is_empty() {
            return Ok((t, None));
        }
    }
    let token: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("admin-token");
    std::fs::write(&path, &token)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok((token, Some(path)))
}

/// Loads `path`, with `token` answering `env:UMBRA_ADMIN_TOKEN` (other variables come from the
/// environment).
pub fn load_with_token(path: &Path, token: &str) -> anyhow::Result<config::Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let env = |name: &str| {
        if name == TOKEN_ENV {
            Some(token.to_string())
        } else {
            std::env::var(name).ok()
        }
    };
    Ok(config::parse_with_env(path, &text, &env)?)
}

/// Where `umbra-proxy` is: next to this binary.
pub(crate) fn proxy_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("umbra-proxy");
    anyhow::ensure!(
        path.exists(),
        "umbra-proxy not found next to {} (build the workspace: cargo build --release)",
        exe.display()
    );
    Ok(path)
}

/// Waits until the proxy's admin API says it is ready (30 s at most), failing early if it exits.
pub(crate) async fn wait_ready(
    admin: std::net::SocketAddr,
    child: &mut Child,
) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    for _ in 0..300 {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("umbra-proxy exited during start-up ({status}); see its log");
        }
        if http
            .get(format!("http://{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("umbra-proxy not ready after 30 s")
}

/// Runs proxy + controller until SIGINT/SIGTERM, then stops everything it started.
pub async fn up(config_path: &Path) -> anyhow::Result<()> {
    // The token must exist before the config validates; it is kept in the data dir, which the
    // config names: read it once with a placeholder token to learn where that is.
    let probe = load_with_token(config_path, "placeholder")?;
    let data_dir = probe.controller.data_dir.clone();
    let (token, token_file) = run_token(&data_dir)?;
    let config = load_with_token(config_path, &token)?;
    std::fs::create_dir_all(data_dir.join("logs"))?;
    let proxy_log = data_dir.join("logs/proxy.log");
    std::fs::File::create(&proxy_log)
        .with_context(|| format!("creating {}", proxy_log.display()))?;
    let command = ProxyCommand {
        binary: proxy_binary()?,
        config: config_path.to_path_buf(),
        env: vec![(TOKEN_ENV.to_string(), token.clone())],
        log: proxy_log.clone(),
    };
    let mut proxy = command.spawn().context("starting umbra-proxy")?;
    wait_ready(config.proxy.admin_listen, &mut proxy)
        .await
        .with_context(|| format!("see {}", proxy_log.display()))?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = std::sync::Arc::new(stop_tx);
    let on_signal = std::sync::Arc::clone(&stop_tx);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch SIGTERM");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        // The receiver lives until the controller returns.
        let _sent = on_signal.send(true);
    });
    // From here on a proxy that exits (a crash, a kill) is started again until shutdown.
    let supervisor = tokio::spawn(supervise(
        command,
        proxy,
        stop_rx.clone(),
        Duration::from_secs(10),
    ));
    println!(
        "umbra is up\n  traffic      http://{}/\n  status page  http://{}/   (or: umbra status)\n  proxy admin  http://{}/v1/workloads\n  state        {}\n  admin token  {}",
        config.proxy.local_address(),
        config.controller.api_listen,
        config.proxy.admin_listen,
        data_dir.display(),
        token_file.map_or_else(|| format!("${TOKEN_ENV}"), |p| p.display().to_string()),
    );
    if config.controller.example_load_rps > 0.0 {
        tokio::spawn(crate::example_load::run(
            config.proxy.local_address(),
            crate::example_load::targets(&config.workloads),
            config.controller.example_load_rps,
            stop_rx.clone(),
        ));
    }
    let result = controller::run::run(config, stop_rx, true).await;
    // The controller may also have ended on an error: stop the proxy either way (it gets
    // SIGTERM and drains its requests in flight).
    let _sent = stop_tx.send(true);
    if let Err(e) = supervisor.await {
        tracing::warn!(error = %e, "the proxy supervisor failed");
    }
    result
}
