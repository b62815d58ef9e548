//! Per-series model choice by rolling-origin backtest over recent folds.

use std::collections::BTreeMap;

use crate::metrics::{mase, mean, smape};
use crate::models::{ModelKind, pointwise_median};
use crate::runner::Runner;

/// Backtest score of one candidate, averaged over folds.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelScore {
    /// The candidate.
    pub model: ModelKind,
    /// Mean MASE over folds (`inf` when it failed on some fold).
    pub mase: f64,
    /// Mean sMAPE (percent) over folds.
    pub smape: f64,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The outcome of model selection for one series, reusable for cheap refits
/// ([`crate::Forecaster::fit_predict`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The chosen model (never `Auto`).
    pub model: ModelKind,
    /// Base models the chosen ensemble combines (empty for a base model).
    pub members: Vec<ModelKind>,
    /// Detected seasonal periods, in steps.
    pub periods: Vec<usize>,
    /// Natural season in steps (seasonal naive lag and MASE scale).
    pub season: usize,
    /// Backtest scores of every candidate, best first.
    pub scores: Vec<ModelScore>,
    /// Backtest errors (actual - forecast) of the chosen model, for interval calibration.
    pub residuals: Vec<f64>,
    /// What to try, in order, if the chosen model fails when refitted.
    pub fallbacks: Vec<ModelKind>,
    /// Horizon the selection was made for.
    pub horizon: usize,
}

/// Forecasts and errors of every candidate on every fold.
struct FoldResults {
    origins: Vec<usize>,
    /// model -> one forecast (or error) per fold
    runs: BTreeMap<ModelKind, Vec<Result<Vec<f64>, String>>>,
}

/// Chooses a model for `requested` (which may be `Auto`) by backtest on `folds` recent windows.
pub(crate) fn choose(
    runner: &Runner<'_>,
    requested: ModelKind,
    horizon: usize,
    allow_prophet: bool,
) -> Selection {
    let base_candidates: Vec<ModelKind> = match requested {
        ModelKind::Auto | ModelKind::MedianTop3 | ModelKind::MedianAll => ModelKind::ALL
            .into_iter()
            .filter(|k| !k.is_ensemble())
            .filter(|k| *k != ModelKind::Prophet || allow_prophet)
            .collect(),
        other => vec![other],
    };
    let ensembles: Vec<ModelKind> = match requested {
        ModelKind::Auto => vec![ModelKind::MedianTop3, ModelKind::MedianAll],
        k if k.is_ensemble() => vec![k],
        _ => Vec::new(),
    };
    let n = runner.values.len();
    // Folds at least a season long: a one-step fold of daily data would choose on one number.
    let fold_len = horizon.max(runner.season);
    let min_train = (2 * runner.season).max(2 * fold_len).max(8);
    let origins: Vec<usize> = (1..=runner.config.folds.max(1))
        .filter_map(|f| n.checked_sub(f * fold_len))
        .filter(|o| *o >= min_train)
        .collect();
    let mut folds = FoldResults {
        origins,
        runs: BTreeMap::new(),
    };
    for kind in &base_candidates {
        let runs = folds
            .origins
            .iter()
            .map(|&origin| {
                runner
                    .run_base(*kind, origin, fold_len)
                    .map(|r| r.point)
                    .map_err(|e| e.to_string())
            })
            .collect();
        folds.runs.insert(*kind, runs);
    }
    let mut scores: Vec<ModelScore> = base_candidates
        .iter()
        .map(|k| score(runner, &folds, *k))
        .collect();
    let mut members_of: BTreeMap<ModelKind, Vec<ModelKind>> = BTreeMap::new();
    for ensemble in &ensembles {
        let mut usable: Vec<&ModelScore> = scores.iter().filter(|s| s.mase.is_finite()).collect();
        usable.sort_by(|a, b| a.mase.total_cmp(&b.mase));
        let take = if *ensemble == ModelKind::MedianTop3 {
            3
        } else {
            usable.len()
        };
        let members: Vec<ModelKind> = usable.iter().take(take).map(|s| s.model).collect();
        let runs = (0..folds.origins.len())
            .map(|f| {
                let points: Vec<&[f64]> = members
                    .iter()
                    .filter_map(|m| folds.runs.get(m)?.get(f)?.as_ref().ok())
                    .map(Vec::as_slice)
                    .collect();
                if points.len() < 2 {
                    Err("fewer than two members fit".to_string())
                } else {
                    Ok(pointwise_median(&points))
                }
            })
            .collect();
        folds.runs.insert(*ensemble, runs);
        scores.push(score(runner, &folds, *ensemble));
        members_of.insert(*ensemble, members);
    }
    scores.sort_by(|a, b| a.mase.total_cmp(&b.mase));

    // Only `Auto` chooses; a named model (an ensemble too) is kept, its folds only calibrate.
    let model = match requested {
        ModelKind::Auto => {
            pick(&scores, runner.config.tie_tolerance).unwrap_or(ModelKind::SeasonalNaive)
        }
        other => other,
    };
    let residuals = folds
        .origins
        .iter()
        .zip(folds.runs.get(&model).into_iter().flatten())
        .filter_map(|(origin, run)| {
            let point = run.as_ref().ok()?;
            Some(
                runner.values[*origin..*origin + fold_len]
                    .iter()
                    .zip(point)
                    .map(|(a, p)| a - p)
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect();
    let mut fallbacks: Vec<ModelKind> = scores
        .iter()
        .filter(|s| s.mase.is_finite() && s.model != model)
        .map(|s| s.model)
        .collect();
    for last_resort in [ModelKind::SeasonalNaive, ModelKind::Ets] {
        if model != last_resort && !fallbacks.contains(&last_resort) {
            fallbacks.push(last_resort);
        }
    }
    tracing::debug!(%model, folds = folds.origins.len(), "model selected");
    Selection {
        model,
        members: members_of.remove(&model).unwrap_or_default(),
        periods: runner.periods.clone(),
        season: runner.season,
        scores,
        residuals,
        fallbacks,
        horizon,
    }
}

fn score(runner: &Runner<'_>, folds: &FoldResults, model: ModelKind) -> ModelScore {
    let horizon_of = |p: &Vec<f64>| p.len();
    let mut mases = Vec::new();
    let mut smapes = Vec::new();
    let mut error = None;
    for (origin, run) in folds
        .origins
        .iter()
        .zip(folds.runs.get(&model).into_iter().flatten())
    {
        match run {
            Ok(point) => {
                let h = horizon_of(point);
                let from = origin.saturating_sub(runner.config.max_train_points);
                let train = &runner.values[from..*origin];
                let actual = &runner.values[*origin..*origin + h];
                mases.push(mase(train, actual, point, runner.season));
                smapes.push(smape(actual, point));
            }
            Err(e) => {
                tracing::debug!(%model, origin, error = %e, "candidate failed on a fold");
                error = Some(e.clone());
                mases.push(f64::INFINITY);
            }
        }
    }
    let m = mean(mases.iter().copied());
    ModelScore {
        model,
        mase: if m.is_nan() { f64::INFINITY } else { m },
        smape: mean(smapes.into_iter()),
        error,
    }
}

/// The simplest model whose score is within `tolerance` of the best (scores sorted ascending).
fn pick(scores: &[ModelScore], tolerance: f64) -> Option<ModelKind> {
    let best = scores.first().filter(|s| s.mase.is_finite())?.mase;
    let limit = best * (1.0 + tolerance) + 1e-9;
    ModelKind::ALL
        .into_iter()
        .find(|k| scores.iter().any(|s| s.model == *k && s.mase <= limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(model: ModelKind, mase: f64) -> ModelScore {
        ModelScore {
            model,
            mase,
            smape: 0.0,
            error: None,
        }
    }

    #[test]
    fn ties_go_to_the_simpler_model() {
        let scores = [
            s(ModelKind::Mstl, 0.500),
            s(ModelKind::SeasonalNaive, 0.505),
        ];
        assert_eq!(pick(&scores, 0.02), Some(ModelKind::SeasonalNaive));
        assert_eq!(pick(&scores, 0.0), Some(ModelKind::Mstl));
    }

    #[test]
    fn nothing_finite_means_no_pick() {
        assert_eq!(pick(&[s(ModelKind::Ets, f64::INFINITY)], 0.02), None);
        assert_eq!(pick(&[], 0.02), None);
    }
}
