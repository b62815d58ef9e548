//! Forecasts a CSV series with the library alone: `forecast_csv FILE HORIZON [MODEL]`; prints
//! the chosen model, the backtest scores and the time taken (a development aid; `umbra
//! forecast` is the user-facing command).

use std::time::Instant;

use forecast::{ForecastOptions, Forecaster, GridOptions, ModelKind, read_series};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(horizon)) = (args.get(1), args.get(2)) else {
        return Err("usage: forecast_csv FILE HORIZON [MODEL]".into());
    };
    let horizon: usize = horizon.parse()?;
    let model: ModelKind = args.get(3).map_or(Ok(ModelKind::Auto), |m| m.parse())?;
    let started = Instant::now();
    let series = read_series(path.as_ref(), &GridOptions::default())?.series;
    let options = ForecastOptions {
        model,
        ..ForecastOptions::default()
    };
    // FORECAST_MAX_TRAIN overrides the training window, for experiments.
    let mut config = forecast::ForecasterConfig::default();
    if let Some(n) = std::env::var("FORECAST_MAX_TRAIN")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.max_train_points = n;
    }
    let forecaster = Forecaster::with_config(config);
    let selection = forecaster.select(&series, horizon, &options)?;
    let selected = started.elapsed();
    let fc = forecaster.fit_predict(&selection, &series, horizon, &options)?;
    eprintln!(
        "model {} periods {:?} select {:.2}s total {:.2}s",
        fc.model,
        selection.periods,
        selected.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for s in &fc.scores {
        eprintln!("  {:<12} mase {:.3}", s.model.name(), s.mase);
    }
    println!("timestamp,yhat,yhat_lower,yhat_upper");
    for i in 0..fc.point.len() {
        println!(
            "{},{},{},{}",
            fc.time_at(i),
            fc.point[i],
            fc.lower[i],
            fc.upper[i]
        );
    }
    Ok(())
}
