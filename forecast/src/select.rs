//! Per-series model choice by rolling-origin backtest over recent folds.
//!
//! `Auto` forecasts with the mean of the three candidates that backtested best, weighted by
//! the inverse square of their backtest MASE. Picking the single best candidate chose on a
//! few noisy numbers and was catastrophic where the folds rewarded an old regime (a seasonal
//! naive kept after a level shift: MASE 15 on a bench trace); the weighted mean rarely
//! follows one bad choice all the way, and a clear winner still gets most of the weight.

use std::collections::BTreeMap;

use crate::metrics::{mase, mean, smape};
use crate::models::{EtsForm, ModelKind, pointwise_median, weighted_mean};
use crate::runner::Runner;

/// How many of the best-backtested candidates `Auto` combines.
const TOP: usize = 3;

/// Backtest score of one candidate, averaged over folds.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelScore {
    /// The candidate.
    pub model: ModelKind,
    /// Mean MASE over folds (`inf` when it failed on some fold).
    pub mase: f64,
    /// Mean sMAPE (percent) over folds.
    pub smape: f64,
    /// MASE per fold, oldest first (`inf` where it failed).
    pub folds: Vec<f64>,
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
    /// Weight of each member of a [`ModelKind::WeightedTop3`] (sums to 1; empty otherwise).
    pub weights: Vec<f64>,
    /// Detected seasonal periods, in steps.
    pub periods: Vec<usize>,
    /// Natural season in steps (seasonal naive lag and MASE scale).
    pub season: usize,
    /// Backtest scores of every candidate, best first.
    pub scores: Vec<ModelScore>,
    /// Backtest errors (actual - forecast) of the chosen model, one list per fold, oldest
    /// first, for interval calibration. A weighted combination's errors on a fold come from
    /// weights chosen on the other folds, so they are out of sample like the forecast's.
    pub residuals: Vec<Vec<f64>>,
    /// What to try, in order, if the chosen model fails when refitted.
    pub fallbacks: Vec<ModelKind>,
    /// Horizon the selection was made for.
    pub horizon: usize,
    /// The ETS form (of ETS itself, or of MSTL's trend) each model in the choice fitted on
    /// the most recent fold: refits keep it and re-estimate only its parameters.
    pub ets_forms: Vec<(ModelKind, EtsForm)>,
}

/// Forecasts and scores of every candidate on every fold.
struct FoldResults {
    origins: Vec<usize>,
    /// model -> one forecast (or error) per fold
    runs: BTreeMap<ModelKind, Vec<Result<Vec<f64>, String>>>,
}

/// Chooses a model for `requested` (which may be `Auto`) by backtest on recent folds.
pub(crate) fn choose(
    runner: &Runner<'_>,
    requested: ModelKind,
    horizon: usize,
    allow_prophet: bool,
) -> Selection {
    let base_candidates: Vec<ModelKind> = if requested == ModelKind::Auto || requested.is_ensemble()
    {
        ModelKind::ALL
            .into_iter()
            .filter(|k| !k.is_ensemble())
            .filter(|k| *k != ModelKind::Prophet || allow_prophet)
            .collect()
    } else {
        vec![requested]
    };
    // `Auto` forecasts with the weighted combination; the medians are scored beside it so
    // the report shows what they would have done.
    let ensembles: Vec<ModelKind> = match requested {
        ModelKind::Auto => vec![
            ModelKind::MedianTop3,
            ModelKind::MedianAll,
            ModelKind::WeightedTop3,
        ],
        k if k.is_ensemble() => vec![k],
        _ => Vec::new(),
    };
    let n = runner.values.len();
    // Folds at least a season long: a one-step fold of daily data would choose on one number.
    // When no such fold fits after two seasons of training (a day of 1-minute points is 1,440,
    // and the controller reads 4,032), folds of the horizon are still better than choosing on
    // none, which left seasonal naive as the only answer.
    let origins_for = |fold_len: usize| {
        let min_train = (2 * runner.season).max(2 * fold_len).max(8);
        let mut origins: Vec<usize> = (1..=runner.config.folds.max(1))
            .filter_map(|f| n.checked_sub(f * fold_len))
            .filter(|o| *o >= min_train)
            .collect();
        origins.reverse();
        origins
    };
    let mut fold_len = horizon.max(runner.season);
    let mut origins = origins_for(fold_len);
    if origins.is_empty() && fold_len > horizon {
        fold_len = horizon;
        origins = origins_for(fold_len);
    }
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
    let all_folds: Vec<usize> = (0..folds.origins.len()).collect();
    let mut members_of: BTreeMap<ModelKind, (Vec<ModelKind>, Vec<f64>)> = BTreeMap::new();
    for ensemble in &ensembles {
        let base = &scores[..base_candidates.len()];
        let (members, weights) = membership(*ensemble, base, &all_folds);
        let runs = all_folds
            .iter()
            .map(|&f| {
                if *ensemble == ModelKind::WeightedTop3 {
                    // Weighted on the other folds only: this fold's score is out of sample.
                    let others: Vec<usize> =
                        all_folds.iter().copied().filter(|g| *g != f).collect();
                    let others = if others.is_empty() {
                        all_folds.clone()
                    } else {
                        others
                    };
                    let (members, weights) = membership(*ensemble, base, &others);
                    combine(&folds, f, &members, &weights, *ensemble)
                } else {
                    combine(&folds, f, &members, &weights, *ensemble)
                }
            })
            .collect();
        folds.runs.insert(*ensemble, runs);
        scores.push(score(runner, &folds, *ensemble));
        members_of.insert(*ensemble, (members, weights));
    }
    scores.sort_by(|a, b| a.mase.total_cmp(&b.mase));

    // Only `Auto` chooses; a named model (an ensemble too) is kept, its folds only calibrate.
    let model = match requested {
        ModelKind::Auto => {
            let usable = members_of
                .get(&ModelKind::WeightedTop3)
                .is_some_and(|(m, _)| !m.is_empty());
            if usable {
                ModelKind::WeightedTop3
            } else {
                ModelKind::SeasonalNaive
            }
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
                runner.values[*origin..*origin + point.len()]
                    .iter()
                    .zip(point)
                    .map(|(a, p)| a - p)
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let mut fallbacks: Vec<ModelKind> = scores
        .iter()
        .filter(|s| s.mase.is_finite() && s.model != model && !s.model.is_ensemble())
        .map(|s| s.model)
        .collect();
    for last_resort in [ModelKind::SeasonalNaive, ModelKind::Ets] {
        if model != last_resort && !fallbacks.contains(&last_resort) {
            fallbacks.push(last_resort);
        }
    }
    let (members, weights) = members_of.remove(&model).unwrap_or_default();
    let ets_forms = match folds.origins.last() {
        Some(&last) => std::iter::once(model)
            .chain(members.iter().copied())
            .filter_map(|k| Some((k, runner.fitted_form(k, last)?)))
            .collect(),
        None => Vec::new(),
    };
    tracing::debug!(%model, ?members, ?weights, folds = folds.origins.len(), "model selected");
    Selection {
        model,
        weights: if model == ModelKind::WeightedTop3 {
            weights
        } else {
            Vec::new()
        },
        members,
        periods: runner.periods.clone(),
        season: runner.season,
        scores,
        residuals,
        fallbacks,
        horizon,
        ets_forms,
    }
}

/// The members of `ensemble` (and their weights) judged on the folds `on`: the base
/// candidates that ran on all of them, best mean MASE first; all of them for the median of
/// all, the best three otherwise, weighted by inverse squared MASE for the weighted mean.
fn membership(
    ensemble: ModelKind,
    base: &[ModelScore],
    on: &[usize],
) -> (Vec<ModelKind>, Vec<f64>) {
    let mut ranked: Vec<(f64, ModelKind)> = base
        .iter()
        .filter_map(|s| {
            let picked: Vec<f64> = on.iter().filter_map(|f| s.folds.get(*f).copied()).collect();
            let m = mean(picked.iter().copied());
            (picked.len() == on.len() && m.is_finite()).then_some((m, s.model))
        })
        .collect();
    // Ties keep the simpler model first (`base` is in `ModelKind::ALL` order).
    ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
    let take = if ensemble == ModelKind::MedianAll {
        ranked.len()
    } else {
        TOP
    };
    ranked.truncate(take);
    let members = ranked.iter().map(|(_, k)| *k).collect();
    // A perfect backtest (MASE 0) must not divide by zero: floor the error.
    let raw: Vec<f64> = ranked.iter().map(|(m, _)| m.max(1e-6).powi(-2)).collect();
    let total: f64 = raw.iter().sum();
    let weights = raw.iter().map(|w| w / total).collect();
    (members, weights)
}

/// The ensemble's forecast on fold `f` from its members' fold forecasts.
fn combine(
    folds: &FoldResults,
    f: usize,
    members: &[ModelKind],
    weights: &[f64],
    ensemble: ModelKind,
) -> Result<Vec<f64>, String> {
    let mut points: Vec<&[f64]> = Vec::new();
    let mut used = Vec::new();
    for (i, m) in members.iter().enumerate() {
        if let Some(Ok(p)) = folds.runs.get(m).and_then(|r| r.get(f)) {
            points.push(p);
            used.push(weights.get(i).copied().unwrap_or(1.0));
        }
    }
    match ensemble {
        ModelKind::WeightedTop3 if !points.is_empty() => Ok(weighted_mean(&points, &used)),
        _ if points.len() >= 2 => Ok(pointwise_median(&points)),
        _ => Err("fewer than two members fit".to_string()),
    }
}

fn score(runner: &Runner<'_>, folds: &FoldResults, model: ModelKind) -> ModelScore {
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
                let from = origin.saturating_sub(runner.config.max_train_points);
                let train = &runner.values[from..*origin];
                let actual = &runner.values[*origin..*origin + point.len()];
                let m = mase(train, actual, point, runner.season);
                mases.push(if m.is_nan() { f64::INFINITY } else { m });
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
        folds: mases,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(model: ModelKind, folds: &[f64]) -> ModelScore {
        ModelScore {
            model,
            mase: mean(folds.iter().copied()),
            smape: 0.0,
            folds: folds.to_vec(),
            error: None,
        }
    }

    #[test]
    fn the_best_three_are_weighted_by_inverse_squared_error() {
        let base = [
            s(ModelKind::SeasonalNaive, &[1.0, 1.0]),
            s(ModelKind::Ets, &[0.5, 0.5]),
            s(ModelKind::Mstl, &[f64::INFINITY, 0.1]),
            s(ModelKind::MstlLog, &[2.0, 2.0]),
            s(ModelKind::MedianOfPeriods, &[4.0, 4.0]),
        ];
        let (members, weights) = membership(ModelKind::WeightedTop3, &base, &[0, 1]);
        // MSTL failed on a fold: out, however good its other fold.
        assert_eq!(
            members,
            [ModelKind::Ets, ModelKind::SeasonalNaive, ModelKind::MstlLog]
        );
        // 1/0.25 : 1/1 : 1/4 = 16 : 4 : 1.
        let expected = [16.0 / 21.0, 4.0 / 21.0, 1.0 / 21.0];
        for (w, e) in weights.iter().zip(expected) {
            assert!((w - e).abs() < 1e-12, "{weights:?}");
        }
        // Judged on the second fold alone, MSTL is in and leads.
        let (members, _) = membership(ModelKind::WeightedTop3, &base, &[1]);
        assert_eq!(members[0], ModelKind::Mstl);
    }

    #[test]
    fn a_perfect_backtest_does_not_divide_by_zero() {
        let base = [
            s(ModelKind::SeasonalNaive, &[0.0]),
            s(ModelKind::Ets, &[1.0]),
        ];
        let (_, weights) = membership(ModelKind::WeightedTop3, &base, &[0]);
        assert!(weights.iter().all(|w| w.is_finite()));
        assert!(weights[0] > 0.999_999);
    }

    #[test]
    fn the_median_of_all_takes_every_candidate_that_ran() {
        let base = [
            s(ModelKind::SeasonalNaive, &[1.0]),
            s(ModelKind::Ets, &[f64::INFINITY]),
            s(ModelKind::Mstl, &[0.5]),
        ];
        let (members, _) = membership(ModelKind::MedianAll, &base, &[0]);
        assert_eq!(members, [ModelKind::Mstl, ModelKind::SeasonalNaive]);
        assert!(membership(ModelKind::MedianAll, &[], &[0]).0.is_empty());
    }
}
