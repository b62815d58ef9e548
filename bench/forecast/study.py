"""Selection research over `forecast/examples/study.rs` dumps: scores combination rules built
from every candidate's backtest forecasts, on a tuning half and a held-out half.

    python3 study.py m4.jsonl [traces.jsonl ...]

Series are split by a hash of their name: rules are compared on the `tune` half, and the
`held` half is only read for the final report.
"""

import json
import sys
import zlib

import numpy as np

BASE = ["snaive", "wnaive", "median3", "wmedian3", "ets", "mstl", "mstl-clip", "mstl-log1p"]


def load(paths):
    out = []
    for p in paths:
        with open(p) as f:
            for line in f:
                out.append(json.loads(line))
    return out


def scale_of(train, m):
    m = max(1, min(m, len(train) - 1))
    d = np.abs(train[m:] - train[:-m])
    s = float(np.mean(d)) if len(d) else 0.0
    return s if s > 1e-12 else 1.0


def mase(train, actual, pred, m):
    return float(np.mean(np.abs(actual - pred))) / scale_of(train, m)


class S:
    """One series: fold actuals/forecasts and final forecasts, as arrays."""

    def __init__(self, d):
        self.name = d["name"]
        self.values = np.array(d["values"], float)
        self.test = np.array(d["test"], float)
        self.origins = d["origins"][:-1]
        self.fold_len = d["fold_len"]
        self.m_eval = 24 if d["step"] == 3600 else max(1, 86400 // d["step"]) if d["step"] < 86400 else 7
        self.season = d["season"]
        self.models = [k for k in BASE if k in d["runs"]]
        self.fold = {}  # model -> list of arrays or None
        self.final = {}
        for k in self.models:
            r = d["runs"][k]
            self.fold[k] = [None if x is None else np.array(x, float) for x in r[:-1]]
            self.final[k] = None if r[-1] is None else np.array(r[-1], float)
        # per fold, per model: MASE with the selection's own season
        self.fold_scores = {}
        for k in self.models:
            sc = []
            for o, f in zip(self.origins, self.fold[k]):
                if f is None:
                    sc.append(np.inf)
                    continue
                h = len(f)
                sc.append(mase(self.values[max(0, o - 2016):o], self.values[o:o + h], f, self.season))
            self.fold_scores[k] = sc
        self.train = self.values

    def score(self, pred):
        return mase(self.train, self.test, pred, self.m_eval)


def fold_mean(s, k, folds, recency=1.0):
    sc = s.fold_scores[k][-folds:] if folds else s.fold_scores[k]
    w = np.array([recency ** (len(sc) - 1 - i) for i in range(len(sc))])
    sc = np.array(sc)
    if not np.all(np.isfinite(sc)):
        return np.inf
    return float(np.sum(w * sc) / np.sum(w))


def ranked(s, folds, recency=1.0):
    r = [(fold_mean(s, k, folds, recency), k) for k in s.models if s.final[k] is not None]
    r = [x for x in r if np.isfinite(x[0])]
    r.sort()
    return r


def med(preds):
    return np.median(np.vstack(preds), axis=0)


def rule_single(k):
    def f(s):
        return s.final.get(k) if s.final.get(k) is not None else s.final["snaive"]
    return f


def rule_argmin(folds, recency=1.0):
    def f(s):
        r = ranked(s, folds, recency)
        return s.final[r[0][1]] if r else s.final["snaive"]
    return f


def rule_median_all():
    def f(s):
        return med([s.final[k] for k in s.models if s.final[k] is not None])
    return f


def rule_median_topk(k, folds, recency=1.0):
    def f(s):
        r = ranked(s, folds, recency)[:k]
        return med([s.final[m] for _, m in r]) if r else s.final["snaive"]
    return f


def rule_inv_weights(k, folds, power=1.0, recency=1.0):
    def f(s):
        r = ranked(s, folds, recency)[:k]
        if not r:
            return s.final["snaive"]
        w = np.array([1.0 / max(x, 1e-6) ** power for x, _ in r])
        p = np.vstack([s.final[m] for _, m in r])
        return (w[:, None] * p).sum(0) / w.sum()
    return f


def rule_current(folds=2, tol=0.02):
    """What `auto` does today: argmin over base + median-top3 + median-all, ties simplest."""
    order = BASE[:8] + ["median-top3", "median-all"]

    def f(s):
        r = ranked(s, folds)
        cands = {k: (sc, s.final[k]) for sc, k in r}
        # ensembles scored on folds too
        for name, take in (("median-top3", 3), ("median-all", None)):
            mem = [k for _, k in r][: take or len(r)]
            if len(mem) < 2:
                continue
            scs = []
            for fi in range(len(s.origins))[-folds:]:
                p = [s.fold[k][fi] for k in mem if s.fold[k][fi] is not None]
                o = s.origins[fi]
                h = len(p[0])
                scs.append(mase(s.values[max(0, o - 2016):o], s.values[o:o + h], med(p), s.season))
            cands[name] = (float(np.mean(scs)), med([s.final[k] for k in mem]))
        if not cands:
            return s.final["snaive"]
        best = min(v[0] for v in cands.values())
        for k in order:
            if k in cands and cands[k][0] <= best * (1 + tol) + 1e-9:
                return cands[k][1]
    return f


def evaluate(series, rule):
    xs = np.array([s.score(rule(s)) for s in series])
    return float(np.mean(xs)), float(np.median(xs)), float(np.max(xs))


def split(series):
    tune = [s for s in series if zlib.crc32(s.name.encode()) % 2 == 0]
    held = [s for s in series if zlib.crc32(s.name.encode()) % 2 == 1]
    return tune, held


def main():
    data = [S(d) for d in load(sys.argv[1:])]
    groups = {}
    for s in data:
        g = "m4" if s.name.startswith("H") and "@" not in s.name else "traces"
        groups.setdefault(g, []).append(s)
    maxf = max(len(s.origins) for s in data)
    rules = {f"single {k}": rule_single(k) for k in BASE}
    rules["current auto"] = rule_current()
    rules["median all"] = rule_median_all()
    for folds in sorted({1, 2, 3, maxf}):
        rules[f"argmin f{folds}"] = rule_argmin(folds)
        for k in (2, 3, 4, 5):
            rules[f"median top{k} f{folds}"] = rule_median_topk(k, folds)
            rules[f"invw top{k} f{folds}"] = rule_inv_weights(k, folds)
            rules[f"invw2 top{k} f{folds}"] = rule_inv_weights(k, folds, power=2)
        for rec in (0.5,):
            rules[f"median top3 f{folds} rec{rec}"] = rule_median_topk(3, folds, rec)
            rules[f"invw top3 f{folds} rec{rec}"] = rule_inv_weights(3, folds, recency=rec)
    for g, ss in groups.items():
        tune, held = split(ss)
        print(f"\n## {g}: {len(tune)} tune / {len(held)} held-out series")
        print(f"{'rule':<28} {'tune mean':>9} {'median':>7} {'worst':>7}   {'held mean':>9} {'median':>7} {'worst':>7}")
        res = []
        for name, rule in rules.items():
            res.append((evaluate(tune, rule), evaluate(held, rule), name))
        res.sort(key=lambda x: x[0][0])
        for t, h, name in res:
            print(f"{name:<28} {t[0]:9.3f} {t[1]:7.3f} {t[2]:7.2f}   {h[0]:9.3f} {h[1]:7.3f} {h[2]:7.2f}")




# ---- intervals: the combination applied to the backtest folds gives its own residuals ----

def weights_invw(s, k, folds, power):
    r = ranked(s, folds)[:k]
    if not r:
        return {"snaive": 1.0}
    w = {m: 1.0 / max(x, 1e-6) ** power for x, m in r}
    t = sum(w.values())
    return {m: v / t for m, v in w.items()}


def weights_argmin(s, folds):
    r = ranked(s, folds)
    return {r[0][1] if r else "snaive": 1.0}


def combine(s, w, fold=None):
    preds = []
    for m, v in w.items():
        p = s.final[m] if fold is None else s.fold[m][fold]
        if p is None:
            return None
        preds.append(v * p)
    return np.sum(preds, axis=0)


def pinball(actual, q_pred, q):
    d = actual - q_pred
    return float(np.mean(np.maximum(q * d, (q - 1) * d)))


def interval_eval(series, weigher, folds_for_res, method):
    cov, pb6, pb9, ms = [], [], [], []
    for s in series:
        w = weigher(s)
        point = combine(s, w)
        res = []
        for fi in range(len(s.origins))[-folds_for_res:]:
            p = combine(s, w, fi)
            if p is None:
                continue
            o = s.origins[fi]
            res.extend(s.values[o:o + len(p)] - p)
        res = np.array(res) if res else np.zeros(1)
        h = len(s.test)
        if method == "pooled":
            lo, hi, q6 = np.quantile(res, 0.1), np.quantile(res, 0.9), np.quantile(res, 0.6)
            lo, hi = min(lo, 0), max(hi, 0)
            L, U, Q6 = point + lo, point + hi, point + q6
        elif method == "abs":
            a = np.quantile(np.abs(res), 0.8)
            L, U = point - a, point + a
            Q6 = point + np.quantile(res, 0.6)
        elif method.startswith("grow"):
            # pooled quantiles, widened with sqrt of the lead time relative to the fold mean
            lead = np.arange(1, h + 1)
            f = np.sqrt(lead / np.mean(np.arange(1, len(res) // max(1, folds_for_res) + 1)))
            f = np.clip(f, 0.5, 2.0)
            lo, hi, q6 = np.quantile(res, 0.1), np.quantile(res, 0.9), np.quantile(res, 0.6)
            L, U, Q6 = point + min(lo, 0) * f, point + max(hi, 0) * f, point + q6 * f
        sc = scale_of(s.train, s.m_eval)
        cov.append(np.mean((s.test >= L) & (s.test <= U)))
        pb6.append(pinball(s.test, Q6, 0.6) / sc)
        pb9.append(pinball(s.test, U, 0.9) / sc)
        ms.append(s.score(point))
    return np.mean(ms), np.mean(cov), np.mean(pb6), np.mean(pb9)


def intervals_main(paths):
    data = [S(d) for d in load(paths)]
    groups = {}
    for s in data:
        g = "m4" if s.name.startswith("H") and "@" not in s.name else "traces"
        groups.setdefault(g, []).append(s)
    weighers = {
        "argmin f2": lambda s: weights_argmin(s, 2),
        "invw2 top3 f3": lambda s: weights_invw(s, 3, 3, 2),
        "invw2 top3 f2": lambda s: weights_invw(s, 3, 2, 2),
    }
    for g, ss in groups.items():
        print(f"\n## intervals, {g}: {len(ss)} series")
        print(f"{'rule':<16} {'res folds':>9} {'method':<8} {'MASE':>6} {'cov80':>6} {'pb0.6':>6} {'pb0.9':>6}")
        for name, wf in weighers.items():
            for rf in (2, 4):
                for method in ("pooled", "abs", "grow"):
                    m, c, p6, p9 = interval_eval(ss, wf, rf, method)
                    print(f"{name:<16} {rf:>9} {method:<8} {m:6.3f} {c:6.3f} {p6:6.3f} {p9:6.3f}")



def ranked_idx(s, idx):
    r = []
    for k in s.models:
        if s.final[k] is None:
            continue
        sc = [s.fold_scores[k][i] for i in idx]
        if sc and np.all(np.isfinite(sc)):
            r.append((float(np.mean(sc)), k))
    r.sort()
    return r


def invw_idx(s, idx, k=3, power=2):
    r = ranked_idx(s, idx)[:k]
    if not r:
        return {"snaive": 1.0}
    w = {m: 1.0 / max(x, 1e-6) ** power for x, m in r}
    t = sum(w.values())
    return {m: v / t for m, v in w.items()}


def argmin_idx(s, idx):
    r = ranked_idx(s, idx)
    return {r[0][1] if r else "snaive": 1.0}


def lofo_eval(series, weigher, nfolds, inflate=1.0):
    """Weights from the last `nfolds` folds; residuals of fold f from weights chosen without f."""
    cov, pb6, pb9, ms = [], [], [], []
    for s in series:
        F = len(s.origins)
        idx = list(range(F))[-nfolds:]
        w = weigher(s, idx)
        point = combine(s, w)
        res = []
        for f in idx:
            others = [i for i in idx if i != f] or idx
            p = combine(s, weigher(s, others), f)
            if p is None:
                continue
            o = s.origins[f]
            res.extend(s.values[o:o + len(p)] - p)
        res = np.array(res) if res else np.zeros(1)
        lo, hi, q6 = np.quantile(res, 0.1), np.quantile(res, 0.9), np.quantile(res, 0.6)
        lo, hi = min(lo, 0) * inflate, max(hi, 0) * inflate
        L, U, Q6 = point + lo, point + hi, point + q6
        sc = scale_of(s.train, s.m_eval)
        cov.append(np.mean((s.test >= L) & (s.test <= U)))
        pb6.append(pinball(s.test, Q6, 0.6) / sc)
        pb9.append(pinball(s.test, U, 0.9) / sc)
        ms.append(s.score(point))
    return np.mean(ms), np.mean(cov), np.mean(pb6), np.mean(pb9)


def lofo_main(paths):
    data = [S(d) for d in load(paths)]
    groups = {}
    for s in data:
        g = "m4" if s.name.startswith("H") and "@" not in s.name else "traces"
        groups.setdefault(g, []).append(s)
    for g, ss in groups.items():
        print(f"\n## leave-one-fold-out intervals, {g}: {len(ss)} series")
        for name, wf in (("argmin", argmin_idx), ("invw2 top3", invw_idx)):
            for nf in (2, 3, 4):
                for inf in (1.0, 1.2):
                    m, c, p6, p9 = lofo_eval(ss, wf, nf, inf)
                    print(f"{name:<12} folds {nf} inflate {inf}: MASE {m:.3f} cov80 {c:.3f} pb0.6 {p6:.3f} pb0.9 {p9:.3f}")



def naive_shape_eval(series, weigher, nfolds, lofo=True):
    """Quantiles of the long in-sample seasonal-naive errors, scaled to the combination's
    (leave-one-fold-out) backtest MAE over the naive's on the same folds."""
    cov, pb6, pb9 = [], [], []
    for s in series:
        F = len(s.origins)
        idx = list(range(F))[-nfolds:]
        w = weigher(s, idx)
        point = combine(s, w)
        m = s.season
        tr = s.values[-2016:]
        e = tr[m:] - tr[:-m]
        mae_n = np.mean(np.abs(e)) or 1.0
        res, nres = [], []
        for f in idx:
            others = [i for i in idx if i != f] or idx
            p = combine(s, weigher(s, others) if lofo else w, f)
            o = s.origins[f]
            res.extend(s.values[o:o + len(p)] - p)
            nres.extend(s.values[o:o + len(p)] - s.fold["snaive"][f])
        ratio = np.mean(np.abs(res)) / max(np.mean(np.abs(nres)), 1e-9)
        k = ratio * np.mean(np.abs(nres)) / mae_n  # = model fold MAE / naive in-sample MAE
        lo, hi, q6 = np.quantile(e, 0.1) * k, np.quantile(e, 0.9) * k, np.quantile(e, 0.6) * k
        L, U, Q6 = point + min(lo, 0), point + max(hi, 0), point + q6
        sc = scale_of(s.train, s.m_eval)
        cov.append(np.mean((s.test >= L) & (s.test <= U)))
        pb6.append(pinball(s.test, Q6, 0.6) / sc)
        pb9.append(pinball(s.test, U, 0.9) / sc)
    return np.mean(cov), np.mean(pb6), np.mean(pb9)


def shape_main(paths):
    data = [S(d) for d in load(paths)]
    groups = {}
    for s in data:
        g = "m4" if s.name.startswith("H") and "@" not in s.name else "traces"
        groups.setdefault(g, []).append(s)
    for g, ss in groups.items():
        print(f"\n## naive-shape intervals, {g}: {len(ss)} series")
        for name, wf in (("argmin", argmin_idx), ("invw2 top3", invw_idx)):
            for nf in (2, 3, 4):
                c, p6, p9 = naive_shape_eval(ss, wf, nf)
                print(f"{name:<12} folds {nf}: cov80 {c:.3f} pb0.6 {p6:.3f} pb0.9 {p9:.3f}")



def cross_eval(series, weigher, nfolds, level=0.8, clip=(1.0, 3.0)):
    """Cross-conformal: the band's shape is the residual quantiles; its scale is the level-
    quantile of how much each fold's residuals exceed the band built from the other folds."""
    cov, pb6, pb9, cs = [], [], [], []
    a = (1 - level) / 2
    for s in series:
        F = len(s.origins)
        idx = list(range(F))[-nfolds:]
        w = weigher(s, idx)
        point = combine(s, w)
        per = {}
        for f in idx:
            others = [i for i in idx if i != f] or idx
            p = combine(s, weigher(s, others), f)
            o = s.origins[f]
            per[f] = s.values[o:o + len(p)] - p
        allres = np.concatenate(list(per.values()))
        need = []
        if len(idx) > 1:
            for f in idx:
                rest = np.concatenate([per[i] for i in idx if i != f])
                lo, hi = min(np.quantile(rest, a), 0), max(np.quantile(rest, 1 - a), 0)
                r = per[f]
                nd = np.where(r >= 0, r / max(hi, 1e-12), r / min(lo, -1e-12))
                need.extend(nd)
        c = float(np.clip(np.quantile(need, level), *clip)) if need else 1.0
        cs.append(c)
        lo, hi, q6 = np.quantile(allres, a), np.quantile(allres, 1 - a), np.quantile(allres, 0.6)
        L, U = point + min(lo, 0) * c, point + max(hi, 0) * c
        Q6 = point + q6
        sc = scale_of(s.train, s.m_eval)
        cov.append(np.mean((s.test >= L) & (s.test <= U)))
        pb6.append(pinball(s.test, Q6, 0.6) / sc)
        pb9.append(pinball(s.test, U, 0.9) / sc)
    return np.mean(cov), np.mean(pb6), np.mean(pb9), np.median(cs)


def cross_main(paths):
    data = [S(d) for d in load(paths)]
    groups = {}
    for s in data:
        g = "m4" if s.name.startswith("H") and "@" not in s.name else "traces"
        groups.setdefault(g, []).append(s)
    for g, ss in groups.items():
        print(f"\n## cross-conformal intervals, {g}: {len(ss)} series")
        for name, wf in (("argmin", argmin_idx), ("invw2 top3", invw_idx)):
            for nf in (2, 3, 4):
                for clip in ((1.0, 3.0), (0.5, 3.0)):
                    c, p6, p9, mc = cross_eval(ss, wf, nf, clip=clip)
                    print(f"{name:<12} folds {nf} clip {clip}: cov80 {c:.3f} pb0.6 {p6:.3f} pb0.9 {p9:.3f} median c {mc:.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "--cross":
        cross_main(sys.argv[2:])
    elif sys.argv[1] == "--shape":
        shape_main(sys.argv[2:])
    elif sys.argv[1] == "--lofo":
        lofo_main(sys.argv[2:])
    elif sys.argv[1] == "--intervals":
        intervals_main(sys.argv[2:])
    else:
        main()
