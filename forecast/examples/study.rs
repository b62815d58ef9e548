//! Dumps every candidate's forecasts at each backtest origin and at the cut, as JSON lines,
//! for selection research (`bench/forecast/study.py` reads them):
//!   study m4 TRAIN.csv TEST.csv FOLDS > m4.jsonl       (M4 wide files, horizon = test length)
//!   study trace FILE CUTS FOLDS > trace.jsonl          (one-day horizon, CUTS last days held out)

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use forecast::{ForecastOptions, Forecaster, GridOptions, Series, read_m4, read_series};

struct Job {
    name: String,
    train: Series,
    test: Vec<f64>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let jobs = match args.get(1).map(String::as_str) {
        Some("m4") => {
            let train = read_m4(&std::fs::read_to_string(&args[2])?, &args[2])?;
            let test = read_m4(&std::fs::read_to_string(&args[3])?, &args[3])?;
            train
                .into_iter()
                .zip(test)
                .map(|(tr, te)| Job {
                    name: tr.id,
                    train: Series::new(0, 3600, tr.values),
                    test: te.values,
                })
                .collect::<Vec<_>>()
        }
        Some("trace") => {
            let series = read_series(args[2].as_ref(), &GridOptions::default())?.series;
            let cuts: usize = args[3].parse()?;
            let h = (86_400 / series.step).max(1) as usize;
            let stem = std::path::Path::new(&args[2])
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            (1..=cuts)
                .filter_map(|c| {
                    let cut = series.len().checked_sub(c * h)?;
                    Some(Job {
                        name: format!("{stem}@{c}"),
                        train: series.head(cut),
                        test: series.values[cut..cut + h].to_vec(),
                    })
                })
                .collect()
        }
        _ => return Err("usage: study m4 TRAIN TEST FOLDS | study trace FILE CUTS FOLDS".into()),
    };
    let folds: usize = args[4].parse()?;
    let forecaster = Forecaster::new();
    let next = AtomicUsize::new(0);
    let out = Mutex::new(std::io::stdout());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let started = Instant::now();
                    let study = match forecaster.study(
                        &job.train,
                        job.test.len(),
                        folds,
                        &ForecastOptions::default(),
                    ) {
                        Ok(s) => s,
                        Err(e) => {
                            eprintln!("{}: {e}", job.name);
                            continue;
                        }
                    };
                    let runs: serde_json::Map<String, serde_json::Value> = study
                        .runs
                        .iter()
                        .map(|(k, f)| (k.name().to_string(), serde_json::json!(f)))
                        .collect();
                    let line = serde_json::json!({
                        "name": job.name,
                        "step": job.train.step,
                        "season": study.season,
                        "periods": study.periods,
                        "origins": study.origins,
                        "fold_len": study.fold_len,
                        "values": study.values,
                        "test": job.test,
                        "runs": runs,
                        "seconds": started.elapsed().as_secs_f64(),
                        "model_seconds": study.seconds.iter().map(|(k, s)| (k.name().to_string(), serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
                    });
                    use std::io::Write;
                    let mut out = out.lock().expect("stdout lock");
                    let _ = writeln!(out, "{line}");
                }
            });
        }
    });
    Ok(())
}
