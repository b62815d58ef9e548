//! `umbra-chaos`: steady GET load through the real `umbra-proxy` while one scenario at a time
//! breaks something (bench/chaos/README.md), or a long soak watching memory and descriptors.

mod load;
mod record;
mod scenario;
mod soak;
mod stack;
mod summary;
mod table;

use std::time::Duration;

use clap::Parser;

/// Load under fault, one scenario at a time, and a table of what clients saw.
#[derive(Debug, Parser)]
#[command(name = "umbra-chaos")]
struct Cli {
    /// Run only these scenarios (comma-separated names; see --list).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Base request rate, requests/s (the migration scenarios add a surge of 0.8x on top).
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Instead of the scenarios, soak for this long (e.g. 30m): steady load, periodic
    /// migrations and rollbacks, RSS and descriptors of both binaries sampled.
    #[arg(long, value_parser = humantime::parse_duration)]
    soak: Option<Duration>,
    /// Soak: seconds between samples of RSS and descriptors.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.list {
        for s in scenario::ALL {
            println!("{:<16} {}", s.name, s.about);
        }
        return Ok(());
    }
    if let Some(d) = cli.soak {
        return soak::run(d, cli.rate, Duration::from_secs(cli.sample_secs)).await;
    }
    for name in &cli.only {
        anyhow::ensure!(
            scenario::ALL.iter().any(|s| s.name == name),
            "no scenario {name:?} (see --list)"
        );
    }
    let options = scenario::Options { rate: cli.rate };
    let mut rows = Vec::new();
    for s in scenario::ALL
        .iter()
        .filter(|s| cli.only.is_empty() || cli.only.iter().any(|n| n == s.name))
    {
        eprintln!("[{}] {}", s.name, s.about);
        rows.push(scenario::run(s, options).await);
    }
    println!("{}", table::render(&rows));
    let missed = rows.iter().filter(|r| !r.met()).count();
    println!(
        "{} of {} scenarios met their target (base rate {} requests/s).",
        rows.len() - missed,
        rows.len(),
        cli.rate
    );
    Ok(())
}
