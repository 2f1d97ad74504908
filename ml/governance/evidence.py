"""The evidence for promoting a challenger: a paired comparison with the deployed model on the
same held-out rows, on the task's primary metric.

- ROC-AUC of a binary task: DeLong, DeLong & Clarke-Pearson (1988), with the O(n log n) midrank
  algorithm of Sun & Xu (2014); the interval is the normal one with DeLong's variance.
- Every other metric: a paired bootstrap (rows resampled with replacement, the same rows for both
  models), with the percentile interval of the difference. Its two-sided p-value is
  `min(1, 2 * min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (B + 1))` over the B resamples `d*` where
  the metric is defined: the smallest level at which the percentile interval excludes 0, with
  the usual +1 so that it is never 0. Identical predictions give p = 1 and the interval [0, 0].
Undefined quantities (one class, no rows, a constant target for r2) are NaN and never
significant; nothing here raises on degenerate data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import norm, rankdata

from ml.core.tasks import greater_is_better

#: Two-sided level of the tests and of the intervals.
ALPHA = 0.05
#: Metrics `paired_bootstrap` computes.
BOOTSTRAP_METRICS = ("r2", "rmse", "mae", "f1", "accuracy", "roc_auc")
#: Resample weights held in memory at once (resamples x rows).
_CHUNK_CELLS = 2**18
_NAN = float("nan")


@dataclass(frozen=True)
class Comparison:
    """Challenger vs deployed on the same rows: both metrics, their difference, its test."""

    metric: str
    test: str
    alpha: float
    n_rows: int
    challenger: float
    deployed: float
    difference: float  # challenger - deployed, in the metric's units
    ci_low: float  # (1 - alpha) two-sided confidence interval of the difference
    ci_high: float
    p_value: float  # two-sided, H0: no difference

    @property
    def gain(self) -> float:
        """The difference, oriented so that > 0 means the challenger is better."""
        return self.difference if greater_is_better(self.metric) else -self.difference

    @property
    def significant(self) -> bool:
        """True when the challenger is better at level `alpha` (False when anything is NaN)."""
        if not np.all(np.isfinite([self.p_value, self.difference, self.ci_low, self.ci_high])):
            return False
        excludes_zero = self.ci_low > 0 if greater_is_better(self.metric) else self.ci_high < 0
        return bool(self.p_value < self.alpha and self.gain > 0 and excludes_zero)

    def line(self) -> str:
        """One human line: both metrics, the difference, its interval and p-value."""
        p = "p<0.001" if self.p_value < 0.001 else f"p={self.p_value:.2g}"
        return (
            f"{self.metric} {self.challenger:.4f} vs {self.deployed:.4f} deployed: "
            f"{self.difference:+.4f} ({(1 - self.alpha) * 100:g}% CI {self.ci_low:+.4f} to "
            f"{self.ci_high:+.4f}, {p}, {self.test}, n={self.n_rows:,})"
        )


def _positives(y_true: np.ndarray, labels: ArrayLike | None = None) -> np.ndarray:
    """Rows of the positive class: the last of `labels`, else the greatest label (sklearn's)."""
    if len(y_true) == 0:
        return np.zeros(0, dtype=bool)
    positive = list(labels)[-1] if labels is not None else np.unique(y_true)[-1]
    return np.asarray(y_true == positive, dtype=bool)


def _arrays(*arrays: ArrayLike) -> list[np.ndarray]:
    out = [np.asarray(a) for a in arrays]
    if any(a.ndim != 1 or len(a) != len(out[0]) for a in out):
        raise ValueError("y_true and both predictions must be 1-d arrays of the same length")
    return out


def delong(
    y_true: ArrayLike, score_challenger: ArrayLike, score_deployed: ArrayLike, alpha: float = ALPHA
) -> Comparison:
    """DeLong's test of two correlated ROC-AUCs on the same rows (binary `y_true`).

    The positive class is the greatest label. Ties count one half (midranks). With a single
    class the AUCs are NaN; a difference of exactly 0 has p = 1; a zero or undefined variance
    with a nonzero difference leaves the interval and p-value NaN.
    """
    y, *scores = _arrays(y_true, score_challenger, score_deployed)
    pos = _positives(y)
    m, n = int(pos.sum()), int((~pos).sum())
    if m == 0 or n == 0:
        return Comparison("roc_auc", "DeLong", alpha, len(y), *(_NAN,) * 6)
    both = np.vstack(scores).astype(float)
    x, z = both[:, pos], both[:, ~pos]
    tx, tz = rankdata(x, axis=1), rankdata(z, axis=1)
    tall = rankdata(np.hstack([x, z]), axis=1)
    auc = tall[:, :m].sum(axis=1) / (m * n) - (m + 1) / (2 * n)
    v10 = (tall[:, :m] - tx) / n  # per positive: share of negatives ranked below it
    v01 = 1 - (tall[:, m:] - tz) / m  # per negative: share of positives ranked above it
    diff = float(auc[0] - auc[1])
    var = _NAN
    if m >= 2 and n >= 2:
        var = float(np.var(v10[0] - v10[1], ddof=1) / m + np.var(v01[0] - v01[1], ddof=1) / n)
    if var > 0:
        half = norm.ppf(1 - alpha / 2) * np.sqrt(var)
        low, high, p = diff - half, diff + half, float(2 * norm.sf(abs(diff) / np.sqrt(var)))
    else:  # a point mass at 0 when both models rank every pair alike, else undefined
        low = high = 0.0 if diff == 0 and var == 0 else _NAN
        p = _NAN
    if diff == 0:
        p = 1.0
    return Comparison("roc_auc", "DeLong", alpha, len(y), float(auc[0]), float(auc[1]), diff,
                      float(low), float(high), p)  # fmt: skip


def _weighted_metric(
    metric: str, y: np.ndarray, pred: np.ndarray, labels: ArrayLike | None
) -> Callable[[np.ndarray], np.ndarray]:
    """`metric` of `pred` as a function of row weights (resamples x rows) -> one value a row."""
    n = len(y)
    if metric in ("rmse", "mae", "r2"):
        y, pred = y.astype(float), pred.astype(float)
        err = (y - pred) ** 2 if metric != "mae" else np.abs(y - pred)
        if metric == "rmse":
            return lambda w: np.sqrt(w @ err / n)
        if metric == "mae":
            return lambda w: w @ err / n
        yc = y - y.mean()
        yc2 = yc**2

        def r2(w: np.ndarray) -> np.ndarray:
            total = w @ yc2
            sst = total - (w @ yc) ** 2 / n
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(sst > 1e-12 * total, 1 - (w @ err) / sst, np.nan)

        return r2
    if metric == "accuracy":
        correct = (y == pred).astype(float)
        return lambda w: w @ correct / n
    if metric == "f1":
        classes = np.asarray(labels)
        truth = (y[:, None] == classes[None, :]).astype(float)
        said = (pred[:, None] == classes[None, :]).astype(float)
        hits = truth * said

        def f1(w: np.ndarray) -> np.ndarray:
            tp, denominator = w @ hits, w @ truth + w @ said
            with np.errstate(divide="ignore", invalid="ignore"):
                scores = np.where(denominator > 0, 2 * tp / denominator, 0.0)
            return scores.mean(axis=1) if len(classes) else np.full(len(w), np.nan)

        return f1
    if metric == "roc_auc":
        pos = _positives(y, labels)
        scores = pred.astype(float)
        positives, negatives = np.flatnonzero(pos), np.flatnonzero(~pos)
        negatives = negatives[np.argsort(scores[negatives], kind="stable")]
        # each positive beats the negatives before `lo` and ties those in [lo, hi): counts one half
        lo = np.searchsorted(scores[negatives], scores[positives], side="left")
        hi = np.searchsorted(scores[negatives], scores[positives], side="right")

        def auc(w: np.ndarray) -> np.ndarray:
            below = np.zeros((len(w), len(negatives) + 1), dtype=np.int64)
            np.cumsum(np.take(w, negatives, axis=1), axis=1, out=below[:, 1:])
            wp = np.take(w, positives, axis=1)
            ties = np.take(below, lo, axis=1) + np.take(below, hi, axis=1)
            twice = np.einsum("ij,ij->i", wp, ties)
            pairs = wp.sum(axis=1) * below[:, -1].astype(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(pairs > 0, twice / 2 / pairs, np.nan)

        return auc
    raise ValueError(f"unsupported metric {metric!r}")


def paired_bootstrap(
    metric: str,
    y_true: ArrayLike,
    pred_challenger: ArrayLike,
    pred_deployed: ArrayLike,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = ALPHA,
    labels: ArrayLike | None = None,
) -> Comparison:
    """Paired bootstrap of `metric`'s difference (challenger - deployed) on the same rows.

    Metrics: "r2", "rmse", "mae" (predicted values), "f1" (macro over `labels`, default every
    label seen), "accuracy" (predicted labels), "roc_auc" (binary, positive-class scores;
    the positive class is the last of `labels`, else the greatest label). Resamples where the
    metric is undefined are left out; the p-value is defined in the module docstring.
    """
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"paired_bootstrap supports {BOOTSTRAP_METRICS}, not {metric!r}")
    y, pc, pd_ = _arrays(y_true, pred_challenger, pred_deployed)
    n = len(y)
    test = f"paired bootstrap ({n_resamples} resamples)"
    if n == 0:
        return Comparison(metric, test, alpha, 0, *(_NAN,) * 6)
    if metric == "f1" and labels is None:
        labels = np.unique(np.concatenate([y, pc, pd_]))
    fc, fd = _weighted_metric(metric, y, pc, labels), _weighted_metric(metric, y, pd_, labels)
    ones = np.ones((1, n), dtype=np.int32)
    challenger, deployed = float(fc(ones)[0]), float(fd(ones)[0])
    diff = challenger - deployed
    rng, chunk, diffs = np.random.default_rng(seed), max(1, _CHUNK_CELLS // n), [np.zeros(0)]
    for start in range(0, n_resamples if np.isfinite(diff) else 0, chunk):
        b = min(chunk, n_resamples - start)
        rows = rng.integers(0, n, size=(b, n)) + n * np.arange(b)[:, None]
        w = np.bincount(rows.ravel(), minlength=b * n).reshape(b, n).astype(np.int32)
        diffs.append(fc(w) - fd(w))  # the same resampled rows for both models
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return Comparison(metric, test, alpha, n, challenger, deployed, diff, *(_NAN,) * 3)
    low, high = np.percentile(d, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    tail = min(1 + np.count_nonzero(d <= 0), 1 + np.count_nonzero(d >= 0))
    p = min(1.0, 2 * tail / (len(d) + 1))
    return Comparison(metric, test, alpha, n, challenger, deployed, diff, float(low), float(high),
                      float(p))  # fmt: skip


def compare(
    problem: str,
    metric: str,
    y_true: ArrayLike,
    pred_challenger: ArrayLike,
    pred_deployed: ArrayLike,
    *,
    seed: int = 0,
    alpha: float = ALPHA,
    labels: ArrayLike | None = None,
) -> Comparison:
    """The comparison for a task: DeLong for a binary task's ROC-AUC, else a paired bootstrap.

    For DeLong, `labels` (if given) names the positive class last.
    """
    if problem == "binary" and metric == "roc_auc":
        y = np.asarray(y_true)
        if labels is not None:
            y = _positives(y, labels).astype(int)
        return delong(y, pred_challenger, pred_deployed, alpha=alpha)
    return paired_bootstrap(metric, y_true, pred_challenger, pred_deployed, seed=seed,
                            alpha=alpha, labels=labels)  # fmt: skip
