"""The evaluation plots of a model page: the leaderboard, and the curves of the held-out test
predictions (ROC, precision-recall, confusion, calibration, residuals). Pure functions of frames
and arrays, each returning (figure, title)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from ml.reports.figures import (
    ACCENT,
    GREY,
    HIGHLIGHT,
    TAB10,
    label_axes,
    new_figure,
    reference_line,
    titled,
)
from ml.reports.labels import axis_label, unit
from ml.reports.model_data import direction, model_label, models_in_order, num

#: Multiclass tasks with many classes: ROC curves drawn (the most frequent classes), classes whose
#: confusion cells and F1 bars are annotated with numbers.
MAX_CURVES = 10
MAX_ANNOTATED_CLASSES = 15
MODEL_COLOURS = {
    "linear": "#1f77b4",
    "tree": "#8c564b",
    "xgboost": "#2ca02c",
    "lightgbm": "#bcbd22",
    "keras": "#9467bd",
    "voting": "#ff7f0e",
    "stacking": "#17becf",
    "selection": "#e377c2",
}
CLASS_COLOURS = TAB10


def plot_leaderboard(
    runs: pd.DataFrame, metric: str, champion: str, oracle: float = math.nan
) -> tuple[Any, str]:
    """CV mean +- sd per candidate, its test score, and the oracle as a horizontal line."""
    names = models_in_order(runs)
    x = np.arange(len(names))
    mean = np.array([num(r, f"cv_{metric}_mean") for _, r in runs.iterrows()])
    std = np.nan_to_num(np.array([num(r, f"cv_{metric}_std") for _, r in runs.iterrows()]))
    test = np.array([num(r, f"test_{metric}") for _, r in runs.iterrows()])
    fig, ax = new_figure(figsize=(8, 4.6))
    colours = [HIGHLIGHT if n == champion else ACCENT for n in names]
    for xi, m, s, c in zip(x, mean, std, colours, strict=True):
        ax.errorbar(xi - 0.12, m, yerr=s, fmt="o", color=c, capsize=5, markersize=7, lw=1.6)
    ax.scatter(x + 0.12, test, marker="D", s=46, color=colours, edgecolor="black", zorder=3)
    # legend proxies
    ax.errorbar(
        [], [], yerr=[], fmt="o", color=ACCENT, capsize=5, label="CV mean ± sd (train folds)"
    )
    ax.scatter([], [], marker="D", color=ACCENT, edgecolor="black", label="test split")
    ax.scatter([], [], marker="s", color=HIGHLIGHT, label="champion")
    if math.isfinite(oracle):
        reference_line(ax, oracle, f"oracle (simulator's truth) = {oracle:.4f}")
    for xi, t in zip(x, test, strict=True):
        if math.isfinite(t):
            ax.annotate(
                f"{t:.3f}", (xi + 0.12, t), xytext=(8, -3), textcoords="offset points", fontsize=7
            )
    ax.set_xticks(x, [model_label(n, champion).replace(" (", "\n(") for n in names])
    for label, n in zip(ax.get_xticklabels(), names, strict=True):
        if n == champion:
            label.set_fontweight("bold")
            label.set_color(HIGHLIGHT)
    ax.set_xlim(-0.6, len(names) - 0.4)
    label_axes(
        ax,
        "candidate model (best selection score first)",
        f"{metric} ({direction(metric)})",
        grid="y",
    )
    return titled(
        fig,
        ax,
        f"Leaderboard: {metric} by candidate",
        f" (CV vs test{' vs oracle' if math.isfinite(oracle) else ''})",
    )


def _roc_frame(ax: Any, false_positives: str, true_positives: str) -> None:
    """Chance diagonal, unit square, axis labels, legend and grid of a ROC plot."""
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", lw=1, label="chance: AUC 0.5")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    label_axes(
        ax,
        f"false positive rate ({false_positives})",
        f"true positive rate ({true_positives})",
        legend="lower right",
    )


def _binary_candidates(
    test: pd.DataFrame, models: Sequence[str]
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(model, actual 0/1, predicted probability) of each candidate whose test rows hold both
    classes, in the order of `models`."""
    for name in models:
        rows = test[test["model_name"] == name]
        y, p = rows["actual"].to_numpy(int), rows["predicted"].to_numpy(float)
        if len(np.unique(y)) >= 2:
            yield name, y, p


def _curve_style(name: str, champion: str) -> dict[str, Any]:
    """A candidate's colour; the champion's curve thicker and on top."""
    is_champ = name == champion
    return {
        "color": MODEL_COLOURS.get(name, ACCENT),
        "lw": 2.6 if is_champ else 1.2,
        "alpha": 1.0 if is_champ else 0.8,
        "zorder": 3 if is_champ else 2,
    }


def plot_roc_binary(test: pd.DataFrame, models: Sequence[str], champion: str) -> tuple[Any, str]:
    """ROC curves of every candidate on the test split, AUC in the legend, chance diagonal."""
    fig, ax = new_figure(figsize=(6.4, 5.6))
    n = 0
    for name, y, p in _binary_candidates(test, models):
        n = len(y)
        fpr, tpr, _ = skm.roc_curve(y, p)
        label = f"{model_label(name, champion)}: AUC {skm.roc_auc_score(y, p):.3f}"
        ax.plot(fpr, tpr, label=label, **_curve_style(name, champion))
    _roc_frame(ax, "share of negatives flagged", "recall: share of positives flagged")
    return titled(fig, ax, "ROC curves of every candidate", f" (test split, n = {n:,})")


def plot_pr_binary(
    test: pd.DataFrame, models: Sequence[str], champion: str, positive: str
) -> tuple[Any, str]:
    """Precision-recall curves of every candidate (average precision) and the prevalence line."""
    fig, ax = new_figure(figsize=(6.4, 5.2))
    prevalence = math.nan
    for name, y, p in _binary_candidates(test, models):
        prevalence = float(y.mean())
        precision, recall, _ = skm.precision_recall_curve(y, p)
        label = f"{model_label(name, champion)}: AP {skm.average_precision_score(y, p):.3f}"
        ax.step(recall, precision, where="post", label=label, **_curve_style(name, champion))
    if math.isfinite(prevalence):
        ax.axhline(
            prevalence,
            color=GREY,
            linestyle="--",
            lw=1,
            label=f"no skill: prevalence {prevalence:.1%}",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    label_axes(
        ax,
        f"recall (share of {positive} found)",
        f"precision (share of flagged rows that are {positive})",
        legend="upper right",
    )
    return titled(fig, ax, "Precision-recall curves of every candidate", " (test split)")


def plot_confusion(
    matrix: np.ndarray, labels: Sequence[str], title: str, subtitle: str, xlabel: str
) -> tuple[Any, str]:
    """A confusion matrix: cells coloured by the share of their actual class (row), annotated
    with the count and that share."""
    matrix = np.asarray(matrix, dtype=float)
    k = len(labels)
    row_sums = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, row_sums, out=np.zeros_like(matrix), where=row_sums > 0)
    size = min(max(4.8, 1.1 * k + 2.6), 14.0)
    fig, ax = new_figure(figsize=(size + 1.2, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    total = matrix.sum()
    for i in range(k if k <= MAX_ANNOTATED_CLASSES else 0):
        for j in range(k):
            colour = "white" if share[i, j] > 0.55 else "black"
            text = f"{int(matrix[i, j]):,}\n{share[i, j]:.1%} of row"
            if k <= 2 and total:
                text += f"\n{matrix[i, j] / total:.1%} of all"
            ax.text(j, i, text, ha="center", va="center", fontsize=9 if k <= 4 else 7, color=colour)
    ticks = 8 if k <= 12 else 6
    ax.set_xticks(
        range(k),
        labels,
        rotation=30 if k > 3 else 0,
        ha="right" if k > 3 else "center",
        fontsize=ticks,
    )
    ax.set_yticks(
        range(k),
        [f"{lab}\n(n={int(s):,})" for lab, s in zip(labels, row_sums[:, 0], strict=True)],
        fontsize=ticks,
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("actual class (n = test rows)")
    fig.colorbar(im, ax=ax, label="share of the actual class (row %)", shrink=0.8)
    ax.set_title(f"{title}\n{subtitle}", fontsize=11)
    return fig, title


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Mean |observed rate - mean predicted probability| over quantile bins of `p`, weighted by
    the rows in each bin (the gap a reliability diagram shows, as one number)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0:
        return math.nan
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges[1:-1], p, side="right"), 0, max(len(edges) - 2, 0))
    gap = 0.0
    for b in np.unique(which):
        hit = which == b
        gap += hit.sum() * abs(y[hit].mean() - p[hit].mean())
    return float(gap / len(y))


def plot_calibration(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    champion: str,
    xlabel: str,
    ylabel: str,
    title: str,
    n_bins: int = 10,
    brier: bool = True,
) -> tuple[Any, str]:
    """Reliability diagram: per quantile bin of the predicted probability, the observed rate;
    `curves` holds (model, outcome 0/1, predicted probability) per model. The legend gives each
    curve's expected calibration error (and Brier score when `brier`)."""
    fig, ax = new_figure(figsize=(6.4, 5.4))
    ax.plot([0, 1], [0, 1], color=GREY, linestyle="--", lw=1, label="perfectly calibrated")
    n = 0
    for name, y, p in curves:
        y, p = np.asarray(y, dtype=int), np.clip(np.asarray(p, dtype=float), 0, 1)
        if len(y) == 0:
            continue
        n = len(y)
        bins = int(max(2, min(n_bins, len(np.unique(p)))))
        observed, predicted = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        score = f"ECE {expected_calibration_error(y, p, bins):.3f}"
        if brier:
            score = f"Brier {float(np.mean((p - y) ** 2)):.4f}, {score}"
        is_champ = name == champion
        ax.plot(
            predicted,
            observed,
            marker="o",
            color=MODEL_COLOURS.get(name, ACCENT),
            lw=2.4 if is_champ else 1.3,
            markersize=6 if is_champ else 4,
            label=f"{model_label(name, champion)} ({score})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    label_axes(ax, xlabel, ylabel, legend="upper left")
    ax.set_title(f"{title}\n(test split, n = {n:,}, {n_bins} quantile bins)", fontsize=11)
    return fig, title


def plot_probability_histogram(
    y: np.ndarray, p: np.ndarray, threshold: float, champion: str, positive: str, negative: str
) -> tuple[Any, str]:
    """The champion's predicted probability of the positive class, split by the actual class."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    fig, ax = new_figure(figsize=(7.5, 4.4))
    bins = np.linspace(0, 1, 26)
    for cls, label, colour in ((0, negative, ACCENT), (1, positive, HIGHLIGHT)):
        values = p[y == cls]
        if len(values):
            ax.hist(
                values,
                bins=bins,
                weights=np.full(len(values), 1 / len(values)),
                color=colour,
                alpha=0.55,
                edgecolor=colour,
                label=f"actual {label} (n={len(values):,})",
            )
    if math.isfinite(threshold):
        reference_line(ax, threshold, f"decision threshold {threshold:.3f}", vertical=True)
    ax.set_xlim(0, 1)
    label_axes(
        ax,
        f"predicted probability of {positive} ({champion})",
        "share of the class's test rows (per bin of 0.04)",
        grid="y",
    )
    return titled(fig, ax, "Predicted probability by actual class", " (champion, test split)")


def plot_roc_multiclass(
    y: np.ndarray, proba: np.ndarray, labels: Sequence[str], champion: str
) -> tuple[Any, str]:
    """One-vs-rest ROC curve of every class for the champion, AUC in the legend."""
    y = np.asarray(y, dtype=int)
    fig, ax = new_figure(figsize=(6.4, 5.6))
    counts = np.bincount(y, minlength=len(labels))
    shown = sorted(np.argsort(-counts, kind="stable")[:MAX_CURVES])
    for k in shown:
        label = labels[k]
        truth = (y == k).astype(int)
        if truth.min() == truth.max():
            continue
        fpr, tpr, _ = skm.roc_curve(truth, proba[:, k])
        auc = skm.roc_auc_score(truth, proba[:, k])
        ax.plot(
            fpr,
            tpr,
            lw=1.8,
            color=CLASS_COLOURS[k % len(CLASS_COLOURS)],
            label=f"{label} vs rest: AUC {auc:.3f}",
        )
    _roc_frame(ax, "share of other classes flagged", "share of the class found")
    title = "One-vs-rest ROC curves per class"
    more = f", the {MAX_CURVES} most frequent classes" if len(labels) > MAX_CURVES else ""
    ax.set_title(f"{title}\n({champion}, test split, n = {len(y):,}{more})", fontsize=11)
    return fig, title


def plot_per_class_scores(
    y: np.ndarray, predicted: np.ndarray, labels: Sequence[str], champion: str
) -> tuple[Any, str]:
    """Precision, recall and F1 of every class for the champion, grouped bars."""
    codes = list(range(len(labels)))
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        np.asarray(y, int), np.asarray(predicted, int), labels=codes, zero_division=0
    )
    fig, ax = new_figure(figsize=(min(max(6.4, 1.6 * len(labels) + 2), 16.0), 4.6))
    x = np.arange(len(labels))
    width = 0.26
    for offset, values, name, colour in (
        (-width, precision, "precision", "#a9c1e0"),
        (0.0, recall, "recall", "#6a93c4"),
        (width, f1, "F1", HIGHLIGHT),
    ):
        ax.bar(x + offset, values, width=width, color=colour, label=name)
    for xi, v in zip(x if len(labels) <= MAX_ANNOTATED_CLASSES else [], f1, strict=False):
        ax.text(xi + width, v + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(
        x,
        [f"{lab}\n(n={int(s):,})" for lab, s in zip(labels, support, strict=True)],
        fontsize=8 if len(labels) <= 12 else 6,
        rotation=0 if len(labels) <= 8 else 45,
    )
    ax.set_ylim(0, 1.1)
    label_axes(ax, "actual class (n = test rows)", "score (0-1)", legend=None, grid="y")
    ax.legend(fontsize=8, ncol=3, loc="upper center")
    return titled(
        fig,
        ax,
        "Per-class precision, recall and F1",
        f" ({champion}, test split; macro F1 {np.mean(f1):.3f})",
    )


def plot_predicted_vs_actual(
    actual: np.ndarray, predicted: np.ndarray, target: str, champion: str
) -> tuple[Any, str]:
    """The champion's predictions against the actual values with the y = x line."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    fig, ax = new_figure(figsize=(6.2, 5.6))
    ax.scatter(actual, predicted, s=10, alpha=0.45, color=ACCENT, edgecolor="none")
    lo = float(np.nanmin([actual.min(), predicted.min()])) if len(actual) else 0.0
    hi = float(np.nanmax([actual.max(), predicted.max()])) if len(actual) else 1.0
    pad = 0.03 * (hi - lo or 1)
    ax.plot(
        [lo - pad, hi + pad],
        [lo - pad, hi + pad],
        color="black",
        linestyle="--",
        lw=1.2,
        label="perfect prediction (y = x)",
    )
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    if len(actual) > 1:
        r2 = skm.r2_score(actual, predicted)
        mae = skm.mean_absolute_error(actual, predicted)
        ax.text(
            0.03,
            0.97,
            f"R² {r2:.3f}\nMAE {mae:.3f}",
            transform=ax.transAxes,
            va="top",
            fontsize=9,
            bbox={"facecolor": "white", "edgecolor": "#d9dee7"},
        )
    label_axes(
        ax, f"actual {axis_label(target)}", f"predicted {axis_label(target)}", legend="lower right"
    )
    return titled(fig, ax, "Predicted vs actual", f" ({champion}, test split, n = {len(actual):,})")


def binned_mean(
    x: np.ndarray, y: np.ndarray, bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres, means and standard deviations of y in (at most) `bins` quantile bins of x; a
    robust stand-in for a LOWESS line."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    edges = np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return np.array([x.mean()]), np.array([y.mean()]), np.array([y.std()])
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    centres, means, stds = [], [], []
    for b in range(len(edges) - 1):
        hit = which == b
        if hit.any():
            centres.append(x[hit].mean())
            means.append(y[hit].mean())
            stds.append(y[hit].std())
    return np.array(centres), np.array(means), np.array(stds)


def plot_residuals_vs_fitted(
    actual: np.ndarray, predicted: np.ndarray, target: str, champion: str
) -> tuple[Any, str]:
    """Residual (actual - predicted) against the prediction, with a binned mean line and band."""
    actual, predicted = np.asarray(actual, float), np.asarray(predicted, float)
    residual = actual - predicted
    fig, ax = new_figure(figsize=(7.5, 4.6))
    ax.scatter(
        predicted, residual, s=10, alpha=0.4, color=ACCENT, edgecolor="none", label="test rows"
    )
    centres, means, stds = binned_mean(predicted, residual)
    if len(centres):
        ax.fill_between(
            centres,
            means - stds,
            means + stds,
            color=HIGHLIGHT,
            alpha=0.15,
            label="± 1 sd of the bin",
        )
        ax.plot(
            centres,
            means,
            color=HIGHLIGHT,
            lw=2,
            marker="o",
            markersize=4,
            label="binned mean (15 quantile bins)",
        )
    ax.axhline(0, color="black", linestyle="--", lw=1)
    label_axes(
        ax, f"predicted {axis_label(target)}", f"residual: actual - predicted ({unit(target)})"
    )
    return titled(fig, ax, "Residuals vs fitted values", f" ({champion}, test split)")


def plot_residual_histogram(
    actual: np.ndarray, predicted: np.ndarray, target: str, champion: str
) -> tuple[Any, str]:
    """Distribution of the champion's residuals with their mean and standard deviation."""
    residual = np.asarray(actual, float) - np.asarray(predicted, float)
    fig, ax = new_figure(figsize=(7.5, 4.2))
    ax.hist(residual, bins=40, color=ACCENT, alpha=0.85, edgecolor="white")
    mean, sd = float(residual.mean()), float(residual.std())
    ax.axvline(0, color="black", linestyle="--", lw=1, label="zero error")
    ax.axvline(mean, color=HIGHLIGHT, lw=1.6, label=f"mean {mean:+.3f} (sd {sd:.3f})")
    label_axes(ax, f"residual: actual - predicted ({unit(target)})", "test rows", grid="y")
    return titled(
        fig, ax, "Distribution of residuals", f" ({champion}, test split, n = {len(residual):,})"
    )
