//! End-to-end checks of the public API on small slices of the shared real traces
//! (see `tests/data/README.md` for their sources).

use std::path::Path;

use forecast::{
    EventWindow, ForecastOptions, Forecaster, ForecasterConfig, GridOptions, ModelKind, Regressor,
    Series, metrics, read_series,
};

fn slice(name: &str) -> Series {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    read_series(&path, &GridOptions::default())
        .expect("slice reads")
        .series
}

fn options(model: ModelKind) -> ForecastOptions {
    ForecastOptions {
        model,
        ..ForecastOptions::default()
    }
}

#[test]
fn nyc_taxi_auto_beats_seasonal_naive_on_the_held_out_day() {
    let full = slice("nyc_taxi_6d.csv");
    assert_eq!(full.step, 1800);
    assert_eq!(full.len(), 288);
    let train = full.head(240);
    let actual = &full.values[240..];
    let forecaster = Forecaster::new();
    let fc = forecaster
        .forecast(&train, 48, &options(ModelKind::Auto))
        .expect("forecasts");
    assert_eq!(fc.start, train.end());
    assert_eq!(fc.point.len(), 48);
    for i in 0..48 {
        assert!(fc.lower[i] <= fc.point[i] && fc.point[i] <= fc.upper[i]);
    }
    let snaive = forecaster
        .forecast(&train, 48, &options(ModelKind::SeasonalNaive))
        .expect("forecasts");
    let auto_mase = metrics::mase(&train.values, actual, &fc.point, 48);
    let naive_mase = metrics::mase(&train.values, actual, &snaive.point, 48);
    assert!(
        auto_mase <= naive_mase * 1.05,
        "auto ({}) {auto_mase} vs snaive {naive_mase}",
        fc.model
    );
    assert!(!fc.scores.is_empty() && fc.model != "auto");
}

#[test]
fn peyton_manning_gap_is_reported_and_bridged() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/peyton_manning_2008_summer.csv");
    let grid = read_series(&path, &GridOptions::default()).expect("reads");
    assert_eq!(grid.series.step, 86_400);
    assert_eq!(grid.gaps.len(), 1, "{:?}", grid.gaps);
    // Prophet is left out of `Auto` here only to keep the test fast.
    let fc = Forecaster::with_config(ForecasterConfig {
        prophet_in_auto: false,
        ..ForecasterConfig::default()
    })
    .forecast(&grid.series, 7, &options(ModelKind::Auto))
    .expect("forecasts despite the gap");
    assert!(fc.point.iter().all(|p| p.is_finite()));
}

#[test]
fn a_series_too_short_for_season_long_folds_is_still_chosen_for_by_backtest() {
    // 130 half-hours: two days of training leave no room for a fold a day long, but there is
    // for folds of the six-hour horizon.
    let short = slice("nyc_taxi_6d.csv").head(130);
    let selection = Forecaster::new()
        .select(&short, 12, &options(ModelKind::Auto))
        .expect("selects");
    assert_eq!(selection.periods, vec![48]);
    assert_eq!(selection.model, ModelKind::WeightedTop3, "{selection:?}");
    assert!(!selection.residuals.is_empty());
}

#[test]
fn selection_is_reused_for_a_cheap_walk_forward_refit() {
    let full = slice("nyc_taxi_6d.csv");
    let forecaster = Forecaster::new();
    let selection = forecaster
        .select(&full.head(192), 48, &options(ModelKind::Auto))
        .expect("selects");
    assert_ne!(selection.model, ModelKind::Auto);
    assert_eq!(selection.periods, vec![48]);
    let later = full.head(240);
    let fc = forecaster
        .fit_predict(&selection, &later, 48, &options(ModelKind::Auto))
        .expect("refits");
    assert_eq!(fc.start, later.end());
    assert_eq!(fc.model, selection.model.name());
}

#[test]
fn forecasts_stay_near_the_training_range() {
    // A strong trend that non-seasonal ETS would extrapolate far beyond the data.
    let values: Vec<f64> = (0..200).map(|i| i as f64).collect();
    let series = Series::new(0, 3600, values);
    let fc = Forecaster::new()
        .forecast(&series, 500, &options(ModelKind::Ets))
        .expect("forecasts");
    let max = fc.point.iter().copied().fold(f64::MIN, f64::max);
    assert!(max <= 199.0 * 1.1 + 1e-9, "{max}");
}

#[test]
fn a_model_that_cannot_fit_falls_back_instead_of_failing() {
    // Pseudo-random values: no seasonal period is detected, so MSTL cannot fit.
    let values: Vec<f64> = (0..300u64)
        .map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f64) / 100.0)
        .collect();
    let series = Series::new(0, 3600, values);
    let fc = Forecaster::new()
        .forecast(&series, 24, &options(ModelKind::Mstl))
        .expect("falls back");
    assert_ne!(fc.model, "mstl");
    assert_eq!(fc.point.len(), 24);
}

#[test]
fn prophet_uses_a_known_future_regressor() {
    const DAY: i64 = 86_400;
    let x: Vec<f64> = (0..70).map(|i| ((i * 7919) % 13) as f64).collect();
    let y: Vec<f64> = x[..60].iter().map(|v| 100.0 + 3.0 * v).collect();
    let series = Series::new(0, DAY, y);
    let opts = ForecastOptions {
        regressors: vec![Regressor::new("promo", x.clone())],
        ..options(ModelKind::Prophet)
    };
    let fc = Forecaster::with_config(ForecasterConfig {
        folds: 1,
        ..ForecasterConfig::default()
    })
    .forecast(&series, 10, &opts)
    .expect("forecasts");
    assert_eq!(fc.model, "prophet");
    assert_eq!(fc.signals_used, vec!["regressor:promo".to_string()]);
    let truth: Vec<f64> = x[60..].iter().map(|v| 100.0 + 3.0 * v).collect();
    let mae = metrics::mean_abs_error(&truth, &fc.point);
    assert!(mae < 3.0, "mae {mae}: {:?}", fc.point);
}

#[test]
fn past_events_lift_the_forecast_on_a_future_event_day() {
    const DAY: i64 = 86_400;
    let game_days = [40usize, 61, 82, 103];
    let values: Vec<f64> = (0..120)
        .map(|d| {
            if game_days.contains(&d) {
                30.0
            } else {
                10.0 + (d % 7) as f64
            }
        })
        .collect();
    let series = Series::new(0, DAY, values);
    let mut events: Vec<EventWindow> = game_days
        .iter()
        .map(|d| EventWindow::new("game", *d as i64 * DAY, (*d as i64 + 1) * DAY))
        .collect();
    events.push(EventWindow::new("game", 122 * DAY, 123 * DAY));
    let config = ForecasterConfig {
        prophet_in_auto: false,
        ..ForecasterConfig::default()
    };
    let forecaster = Forecaster::with_config(config);
    let plain = forecaster
        .forecast(&series, 5, &options(ModelKind::WeeklyNaive))
        .expect("forecasts");
    let with_events = forecaster
        .forecast(
            &series,
            5,
            &ForecastOptions {
                events,
                ..options(ModelKind::WeeklyNaive)
            },
        )
        .expect("forecasts");
    assert!(plain.signals_used.is_empty());
    assert_eq!(with_events.signals_used, vec!["event:game".to_string()]);
    assert!(
        with_events.point[2] > plain.point[2] + 10.0,
        "{:?}",
        with_events.point
    );
    assert_eq!(with_events.point[1], plain.point[1]);
}

#[test]
fn backtest_reports_every_model_and_the_auto_pick() {
    let series = slice("nyc_taxi_6d.csv");
    let forecaster = Forecaster::with_config(ForecasterConfig {
        prophet_in_auto: false,
        folds: 1,
        ..ForecasterConfig::default()
    });
    let mut calls = 0;
    let report = forecaster
        .backtest(&series, 48, 2, &options(ModelKind::Auto), |p| {
            calls += 1;
            assert!(p.done <= p.total);
        })
        .expect("backtests");
    assert_eq!(report.fold_starts.len(), 2);
    assert!(report.models.iter().any(|m| m.model == "auto"));
    let snaive = report
        .models
        .iter()
        .find(|m| m.model == "snaive")
        .expect("snaive row");
    assert_eq!(snaive.mase.len(), 2);
    assert!(snaive.mean_mase.is_finite());
    assert!(calls > 2);
    let ensemble = report
        .models
        .iter()
        .find(|m| m.model == "median-top3")
        .expect("ensemble row");
    assert!(ensemble.mean_mase.is_finite(), "{ensemble:?}");
    assert_ne!(report.auto_pick, "auto");
    assert!((0.0..=1.0).contains(&snaive.mean_coverage), "{snaive:?}");
    // Auto forecasts with its weighted combination and says what it combines.
    assert_eq!(report.auto_pick, "weighted-top3");
    let weights: Vec<f64> = report.auto_members.iter().filter_map(|(_, w)| *w).collect();
    assert!(
        (1..=3).contains(&weights.len()),
        "{:?}",
        report.auto_members
    );
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let series = Series::new(0, 60, vec![1.0, 2.0]);
    assert!(
        Forecaster::new()
            .forecast(&series, 5, &ForecastOptions::default())
            .is_err()
    );
    let ok = Series::new(0, 60, vec![1.0; 50]);
    assert!(
        Forecaster::new()
            .forecast(&ok, 0, &ForecastOptions::default())
            .is_err()
    );
    let bad_level = ForecastOptions {
        level: 1.5,
        ..ForecastOptions::default()
    };
    assert!(Forecaster::new().forecast(&ok, 5, &bad_level).is_err());
}
