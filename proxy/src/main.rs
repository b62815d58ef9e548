//! `umbra-proxy`: run the edge proxy, `--check` a config like `nginx -t`, or translate an nginx
//! config with `convert-nginx`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Umbra's edge proxy: weighted primary/shadow routing with an in-proxy rollback guard.
#[derive(Parser)]
#[command(name = "umbra-proxy", version)]
struct Args {
    /// The config file.
    #[arg(long, short, env = "UMBRA_CONFIG", default_value = "umbra.toml")]
    config: PathBuf,
    /// Validate the config and exit: 0 when valid, 1 with the error otherwise.
    #[arg(long, short = 't')]
    check: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "UMBRA_LOG_JSON")]
    log_json: bool,
    /// Take the listening sockets over from the running umbra-proxy (hitless binary upgrade):
    /// start this, then send SIGQUIT to the old process; it hands its sockets over on
    /// `proxy.upgrade_sock` and drains.
    #[arg(long, short = 'u')]
    upgrade: bool,
    /// Run in the background (systemd `Type=forking`); returns once the daemon serves.
    #[arg(long, short = 'd')]
    daemon: bool,
    /// With --daemon: the pid file (default: proxy.upgrade_sock with `.pid` for `.sock`).
    #[arg(long, requires = "daemon")]
    pid_file: Option<PathBuf>,
    /// With --daemon: where the log goes (default: discarded).
    #[arg(long, requires = "daemon")]
    log_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the Umbra config (`[proxy]` listeners and TLS, `[[workloads]]`) equivalent to an
    /// nginx config's server, location and upstream blocks; notes go to stderr; exits 1 naming
    /// file:line of what cannot be translated.
    ConvertNginx {
        /// The nginx config, e.g. /etc/nginx/nginx.conf (`include`s are followed).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(args.log_json);
    if let Some(Command::ConvertNginx { file }) = &args.command {
        return convert_nginx(file);
    }
    if args.check {
        return check(&args.config);
    }
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("umbra-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let daemon = args.daemon.then(|| proxy::Daemon {
        pid_file: args
            .pid_file
            .clone()
            .unwrap_or_else(|| config.proxy.upgrade_sock.with_extension("pid")),
        log_file: args.log_file.clone(),
    });
    let options = proxy::RunOptions {
        upgrade: args.upgrade,
        daemon,
    };
    match proxy::run(config, options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umbra-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--check`: the config, then the certificates it names (readable, matching, in date). Like
/// `nginx -t` it runs where the secrets may not be (CI): an `env:NAME` token whose variable is
/// unset is a warning here, while starting the proxy without it is an error.
fn check(path: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("umbra-proxy: {}: cannot read config: {e}", path.display());
            return ExitCode::FAILURE;
        }
    };
    let unset = std::cell::RefCell::new(Vec::new());
    let env = |name: &str| {
        std::env::var(name).ok().or_else(|| {
            unset.borrow_mut().push(name.to_string());
            Some("set-at-run-time".to_string())
        })
    };
    let config = match config::parse_with_env(path, &text, &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("umbra-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    for name in unset.borrow().iter() {
        eprintln!(
            "umbra-proxy: warning: environment variable {name} is not set here; the proxy will not start without it"
        );
    }
    let config = &config;
    let mut certs = String::new();
    if let Some(tls) = &config.proxy.tls {
        match proxy::tls::load_store(tls, path, unix_now()) {
            Ok(store) => {
                for c in store.certs() {
                    certs.push_str(&format!(
                        "\n  certificate {} ({}) valid until {} UTC",
                        c.cert_path.display(),
                        c.names.join(", "),
                        proxy::tls::utc(c.not_after)
                    ));
                }
            }
            Err(e) => {
                eprintln!("umbra-proxy: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!(
        "umbra-proxy: {} is valid ({} workloads){certs}",
        path.display(),
        config.workloads.len()
    );
    ExitCode::SUCCESS
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn convert_nginx(file: &std::path::Path) -> ExitCode {
    match nginx_convert::convert(file) {
        Ok(c) => {
            for note in &c.notes {
                eprintln!("umbra-proxy: note: {note}");
            }
            print!("{}", c.toml);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("umbra-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
