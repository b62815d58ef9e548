//! `umbra`: the control plane's command-line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use umbra::backend::BackendArgs;
use umbra::cli::forecast::{BacktestArgs, ForecastArgs, run_backtest, run_forecast};
use umbra::cli::simulate::{SimulateArgs, run_simulate};
use umbra::cli::status::{ImportArgs, StatusArgs, run_import, run_status};

/// The system allocator, wrapped to count what the program holds (`umbra_heap_allocated_bytes`,
/// `umbra_heap_peak_bytes`): a leak shows as growth there, not only in RSS. Not mimalloc, as in
/// the proxy: the controller's live heap is under 1 MiB, and in a 45-minute soak mimalloc kept
/// pages until its RSS went 42.6 -> 58.9 MiB, where the system allocator's stayed at 21-22 MiB
/// (bench/chaos/README.md); replays ran within 4% of mimalloc's time.
#[global_allocator]
static GLOBAL: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Umbra's controller.
#[derive(Debug, Parser)]
#[command(name = "umbra", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything on one machine: proxy, example backends, controller (default config/umbra.toml).
    Up {
        /// Config file.
        #[arg(long, short, default_value = umbra::up::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// The controller alone, driving proxies that run elsewhere.
    Run {
        /// Config file.
        #[arg(long, short, default_value = umbra::up::DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Pools, weights, forecasts and migrations from a running controller.
    Status(StatusArgs),
    /// Forecast a series from a CSV file.
    Forecast(ForecastArgs),
    /// Backtest every model on a series and show what `auto` would pick.
    Backtest(BacktestArgs),
    /// Replay a demand trace: Umbra's forecast-driven migrations vs the Kubernetes HPA.
    Simulate(SimulateArgs),
    /// A real trace replayed live through proxy and controller: a migration, a fault, a rollback.
    Demo(umbra::demo::DemoArgs),
    /// Import a history CSV into the controller's store.
    Import(ImportArgs),
    /// An example HTTP backend with a capacity limit (what `umbra up` runs).
    Backend(BackendArgs),
}

fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> ExitCode {
    controller::metrics::set_heap_reader(|| (GLOBAL.allocated(), GLOBAL.max_allocated()));
    match dispatch(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", error_report(&e));
            ExitCode::FAILURE
        }
    }
}

/// What a failed command prints: the error and its causes on one line. A user's
/// `RUST_BACKTRACE=1` (set for their own programs) must not turn a typo into a stack dump, so
/// the backtrace is printed only when asked for with `RUST_LIB_BACKTRACE=1`.
fn error_report(e: &anyhow::Error) -> String {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_some_and(|v| v != "0") {
        format!("umbra: {e:?}")
    } else {
        format!("umbra: {e:#}")
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up { config } => {
            init_logging("info,pingora=warn");
            runtime()?.block_on(umbra::up::up(&config))
        }
        Command::Run { config } => {
            init_logging("info");
            let config = config::load(&config)?;
            runtime()?.block_on(async move {
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                    }
                    let _sent = tx.send(true);
                });
                controller::run::run(config, rx, false).await
            })
        }
        Command::Status(args) => {
            init_logging("warn");
            runtime()?.block_on(run_status(&args))
        }
        Command::Forecast(args) => {
            init_logging("warn");
            run_forecast(&args)
        }
        Command::Backtest(args) => {
            init_logging("warn");
            run_backtest(&args)
        }
        Command::Simulate(args) => {
            init_logging("warn");
            run_simulate(&args)
        }
        // Logs go to a file in the demo's directory: the terminal is for its story.
        Command::Demo(args) => umbra::demo::main(args),
        Command::Import(args) => {
            init_logging("warn");
            run_import(&args)
        }
        Command::Backend(args) => {
            init_logging("info");
            runtime()?.block_on(umbra::backend::run(args))
        }
    }
}
