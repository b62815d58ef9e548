//! `umbra demo`: a real trace replayed as live traffic through the real proxy and controller,
//! a forecast-driven migration, a shadow pool broken on purpose and rolled back, the numbers.

mod args;
mod compare;
mod load;
mod narrative;
mod observe;
mod output;
mod plan;
mod report;
mod run;
mod stack;
mod stats;

pub use args::DemoArgs;
pub use observe::FaultKind;

/// Runs `umbra demo`: sets up its directory and log file, then the run on a fresh runtime.
pub fn main(args: DemoArgs) -> anyhow::Result<()> {
    let (dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "umbra-demo-{}-{}",
                std::process::id(),
                controller::clock::unix_ms()
            )),
            true,
        ),
    };
    let logs = dir.join("data/logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", logs.display()))?;
    init_logging(&logs.join("umbra.log"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run::run(&args, &dir));
    // Instances and the proxy are stopped by now; their tasks must not outlive the data dir.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    if temporary {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("umbra demo: could not remove {}: {e}", dir.display());
        }
    }
    result
}

/// The controller's and the demo's logs go to a file: the terminal is for the story.
fn init_logging(path: &std::path::Path) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    tracing_subscriber::fmt()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    Ok(())
}
