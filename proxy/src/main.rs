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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Print the `[[workloads]]` equivalent of an nginx config's upstream, server and location
    /// blocks; notes go to stderr; exits 1 naming file:line of what cannot be translated.
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
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("umbra-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check {
        println!(
            "umbra-proxy: {} is valid ({} workloads)",
            args.config.display(),
            config.workloads.len()
        );
        return ExitCode::SUCCESS;
    }
    match proxy::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umbra-proxy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn convert_nginx(file: &std::path::Path) -> ExitCode {
    match proxy::nginx::convert(file) {
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
