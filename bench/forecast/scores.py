"""Error measures shared by compare.py and m4.py, with M4's definitions.

MASE divides by the in-sample mean |y_t - y_{t-m}| (M4's `mase_cal`); sMAPE is M4's
200|y - f| / (|y| + |f|); the pinball loss is divided by the same MASE scale so series of
different sizes can be averaged; coverage is the share of held-out points inside [lo, hi].
"""

import numpy as np


def scale(train, m):
    train = np.asarray(train, dtype=float)
    return float(np.mean(np.abs(train[m:] - train[:-m])))


def mase(train, actual, pred, m):
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(pred))) / scale(train, m))


def smape(actual, pred):
    actual, pred = np.asarray(actual, dtype=float), np.asarray(pred, dtype=float)
    d = np.abs(actual) + np.abs(pred)
    return float(np.mean(np.where(d == 0, 0.0, 200 * np.abs(actual - pred) / np.where(d == 0, 1, d))))


def pinball(actual, pred, q):
    """Mean quantile loss of `pred` as the `q` quantile (not scaled)."""
    diff = np.asarray(actual, dtype=float) - np.asarray(pred, dtype=float)
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def coverage(actual, lo, hi):
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((np.asarray(lo) <= actual) & (actual <= np.asarray(hi))))


def interval_scores(train, actual, quantiles, m):
    """Coverage of [q0.1, q0.9] and the MASE-scaled pinball losses at q0.6 and q0.9;
    `quantiles` maps 0.1, 0.6 and 0.9 to forecasts, or is None for a point-only model."""
    if quantiles is None:
        return None
    s = scale(train, m)
    return {
        "cov80": coverage(actual, quantiles[0.1], quantiles[0.9]),
        "pb60": pinball(actual, quantiles[0.6], 0.6) / s,
        "pb90": pinball(actual, quantiles[0.9], 0.9) / s,
    }
