//! Prophet (augurs, wasmstan optimizer) with events as holidays and regressors as extra regressors.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use augurs::prophet::{
    Holiday, HolidayOccurrence, PredictionData, Prophet, ProphetOptions,
    Regressor as ProphetRegressor, SeasonalityOption, TrainingData,
};

use augurs::prophet::optimizer::OptimizeOpts;

use super::FitInput;
use crate::ForecastError;
use crate::seasons::calendar_periods;

const NAME: &str = "prophet";

/// Prophet point forecast on the last `prophet_max_points` of the training data.
pub(crate) fn forecast(input: &FitInput<'_>, horizon: usize) -> Result<Vec<f64>, ForecastError> {
    let optimizer = input
        .optimizer
        .ok_or_else(|| ForecastError::model(NAME, "the wasmstan optimizer is unavailable"))?;
    let n = input.values.len();
    let skip = n.saturating_sub(input.prophet_max_points.max(2));
    let values = &input.values[skip..];
    let start = input.start + skip as i64 * input.step;
    let ds: Vec<i64> = (0..values.len())
        .map(|i| start + i as i64 * input.step)
        .collect();
    let future: Vec<i64> = (0..horizon)
        .map(|i| start + (values.len() + i) as i64 * input.step)
        .collect();

    let mut options = ProphetOptions {
        uncertainty_samples: 0,
        holidays: holidays(input, ds[0], future.last().copied().unwrap_or(ds[0])),
        ..ProphetOptions::default()
    };
    // Seasonalities follow what the periodogram found, not Prophet's own length rules.
    let calendar = calendar_periods(input.step);
    let wanted = |seconds: i64| {
        let steps =
            (input.step > 0 && seconds % input.step == 0).then(|| (seconds / input.step) as usize);
        let detected = steps.is_some_and(|s| input.periods.contains(&s) && calendar.contains(&s));
        SeasonalityOption::Manual(detected)
    };
    options.daily_seasonality = wanted(86_400);
    options.weekly_seasonality = wanted(7 * 86_400);
    options.yearly_seasonality = wanted(365 * 86_400);

    let mut train_x = HashMap::new();
    let mut future_x = HashMap::new();
    for r in input.regressors {
        if r.values.len() < n + horizon {
            return Err(ForecastError::Invalid(format!(
                "regressor `{}` has {} values, needs {} (history + horizon)",
                r.name,
                r.values.len(),
                n + horizon
            )));
        }
        train_x.insert(r.name.clone(), r.values[skip..n].to_vec());
        future_x.insert(r.name.clone(), r.values[n..n + horizon].to_vec());
    }

    let mut model = Prophet::new(options, optimizer.clone());
    for r in input.regressors {
        model.add_regressor(r.name.clone(), ProphetRegressor::additive());
    }
    let mut data =
        TrainingData::new(ds, values.to_vec()).map_err(|e| ForecastError::model(NAME, e))?;
    let mut prediction = PredictionData::new(future);
    if !train_x.is_empty() {
        data = data
            .with_regressors(train_x)
            .map_err(|e| ForecastError::model(NAME, e))?;
        prediction = prediction
            .with_regressors(future_x)
            .map_err(|e| ForecastError::model(NAME, e))?;
    }
    // The optimizer runs Stan inside wasm; a trap or a bug in it must cost this candidate,
    // not the controller.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        model.fit(data, OptimizeOpts::default())?;
        model.predict(prediction)
    }));
    let predictions = match outcome {
        Ok(result) => result.map_err(|e| ForecastError::model(NAME, e))?,
        Err(_) => return Err(ForecastError::model(NAME, "the optimizer panicked")),
    };
    let point = predictions.yhat.point;
    if point.len() != horizon || point.iter().any(|p| !p.is_finite()) {
        return Err(ForecastError::model(NAME, "non-finite or short forecast"));
    }
    Ok(point)
}

/// One Prophet holiday per event name, for names with an occurrence in `[from, to]`.
fn holidays(input: &FitInput<'_>, from: i64, to: i64) -> HashMap<String, Holiday> {
    let mut by_name: HashMap<String, Vec<HolidayOccurrence>> = HashMap::new();
    for e in input
        .events
        .iter()
        .filter(|e| e.end > from && e.start <= to)
    {
        by_name
            .entry(e.name.clone())
            .or_default()
            .push(HolidayOccurrence::new(e.start, e.end));
    }
    by_name
        .into_iter()
        .map(|(name, occurrences)| (name, Holiday::new(occurrences)))
        .collect()
}
