//! Forecasts every series of an M4 train/test pair with the library's defaults, as `umbra
//! forecast` would, in parallel over the machine's cores; writes the forecasts and quantiles
//! as CSV for `bench/forecast/m4.py`:
//!   m4 TRAIN.csv TEST.csv OUT.csv [STEP_SECONDS]     (horizon = each series' test length)
//! OUT has `id,step,point,q0.1,q0.6,q0.9,fit_s`: q0.1/q0.9 are the level-0.8 band, q0.6 the
//! upper bound at level 0.2 (the quantile the shadow is sized for), fit_s the seconds of the
//! level-0.8 `forecast` call (selection + refit, repeated on each of the series' rows).

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use forecast::{Forecast, ForecastError, ForecastOptions, Forecaster, Series, read_m4};

struct Job {
    id: String,
    train: Series,
    horizon: usize,
}

/// One series' result: the default (level 0.8) forecast, its time, and the q0.6 bound.
struct Done {
    central: Forecast,
    q60: Vec<f64>,
    seconds: f64,
}

fn run(forecaster: &Forecaster, job: &Job) -> Result<Done, ForecastError> {
    let options = ForecastOptions::default();
    let started = Instant::now();
    // What `umbra forecast` does with its defaults: select, then refit at level 0.8.
    let selection = forecaster.select(&job.train, job.horizon, &options)?;
    let central = forecaster.fit_predict(&selection, &job.train, job.horizon, &options)?;
    let seconds = started.elapsed().as_secs_f64();
    // The level-0.2 band's upper bound is the q0.6 forecast; the selection does not depend on
    // the level, so it is reused rather than timed twice.
    let narrow = ForecastOptions {
        level: 0.2,
        ..ForecastOptions::default()
    };
    let q60 = forecaster
        .fit_predict(&selection, &job.train, job.horizon, &narrow)?
        .upper;
    Ok(Done {
        central,
        q60,
        seconds,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(train_path), Some(test_path), Some(out_path)) =
        (args.get(1), args.get(2), args.get(3))
    else {
        return Err("usage: m4 TRAIN.csv TEST.csv OUT.csv [STEP_SECONDS]".into());
    };
    // M4 hourly is the yardstick; other frequencies need their own step to find their seasons.
    let step: i64 = args.get(4).map_or(Ok(3600), |s| s.parse())?;
    let read = |path: &String| -> Result<_, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        Ok(read_m4(&text, path)?)
    };
    let train = read(train_path)?;
    let test = read(test_path)?;
    if train.len() != test.len() {
        return Err(format!(
            "{} train series but {} test series",
            train.len(),
            test.len()
        )
        .into());
    }
    let mut jobs = Vec::with_capacity(train.len());
    for (tr, te) in train.into_iter().zip(test) {
        if tr.id != te.id {
            return Err(format!("train row {} is not test row {}", tr.id, te.id).into());
        }
        jobs.push(Job {
            id: tr.id,
            train: Series::new(0, step, tr.values),
            horizon: te.values.len(),
        });
    }

    let forecaster = Forecaster::new();
    let threads = std::env::var("UMBRA_M4_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Result<Done, ForecastError>>>> =
        jobs.iter().map(|_| Mutex::new(None)).collect();
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let done = run(&forecaster, job);
                    // A poisoned slot only means another thread panicked; this one is still ours.
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(done);
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();

    let mut csv = String::from("id,step,point,q0.1,q0.6,q0.9,fit_s,model\n");
    let mut failed = Vec::new();
    let mut fit_total = 0.0;
    for (job, slot) in jobs.iter().zip(results) {
        match slot.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(done)) => {
                fit_total += done.seconds;
                let fc = &done.central;
                for i in 0..fc.point.len() {
                    writeln!(
                        csv,
                        "{},{},{},{},{},{},{:.4},{}",
                        job.id,
                        i + 1,
                        fc.point[i],
                        fc.lower[i],
                        done.q60[i],
                        fc.upper[i],
                        done.seconds,
                        fc.model
                    )?;
                }
            }
            Some(Err(e)) => failed.push(format!("{}: {e}", job.id)),
            None => failed.push(format!("{}: not run (a worker panicked)", job.id)),
        }
    }
    std::fs::write(out_path, csv).map_err(|e| format!("{out_path}: {e}"))?;
    for f in &failed {
        eprintln!("failed {f}");
    }
    eprintln!(
        "{} series ({} failed) on {threads} threads in {wall:.1} s wall: {:.2} series/s, \
         mean fit {:.3} s",
        jobs.len(),
        failed.len(),
        jobs.len() as f64 / wall,
        fit_total / (jobs.len() - failed.len()).max(1) as f64
    );
    Ok(())
}
