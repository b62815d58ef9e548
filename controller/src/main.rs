//! `umbra`: the control plane's command-line entry point.

use clap::{Parser, Subcommand};
use controller::cli::forecast::{BacktestArgs, ForecastArgs, run_backtest, run_forecast};

/// Umbra's controller.
#[derive(Debug, Parser)]
#[command(name = "umbra", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Forecast a series from a CSV file.
    Forecast(ForecastArgs),
    /// Backtest every model on a series and show what `auto` would pick.
    Backtest(BacktestArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    match Cli::parse().command {
        Command::Forecast(args) => run_forecast(&args),
        Command::Backtest(args) => run_backtest(&args),
    }
}
