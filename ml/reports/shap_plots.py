"""The SHAP plots of a model page: global importance, the beeswarm and the dependence plots,
drawn from what training stored (`ml.feature_importance`, `ml.shap_sample`). Pure functions,
each plot returning (figure, title)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LinearSegmentedColormap, Normalize

from ml.reports.evaluation_plots import binned_mean
from ml.reports.figures import ACCENT, GREY, HIGHLIGHT, new_figure, titled
from ml.reports.labels import MISSING_LABEL, ORDERS, axis_label, unit
from ml.reports.model_data import ShapSample, positive_label

#: Features in the SHAP beeswarm, dependence plots drawn, bars in the importance chart.
BEESWARM_FEATURES = 12
DEPENDENCE_FEATURES = 3
IMPORTANCE_BARS = 20
#: Categories of a categorical feature shown in its dependence plot (the most frequent).
MAX_CATEGORIES = 15
#: Blue (low) to red (high) for feature values in the beeswarm, as shap draws them.
FEATURE_CMAP = LinearSegmentedColormap.from_list("feature_value", ["#1e88e5", "#7e57c2", "#ff0052"])


def output_description(output_space: str, problem: str, champion: pd.Series) -> str:
    """What a SHAP value adds to, for axis labels."""
    target = str(champion.get("target", "target"))
    if output_space == "value":
        return f"predicted {target}, {unit(target)}"
    if output_space == "log-odds":
        return f"log-odds of {positive_label(champion)}"
    if problem == "multiclass":
        return "probability of the predicted class"
    return f"probability of {positive_label(champion)}"


def feature_colour_values(series: pd.Series, categorical: bool = False) -> np.ndarray:
    """A feature's values scaled to 0-1 for the beeswarm colours, per feature: numbers clipped
    to their 5th-95th percentile (so an outlier does not wash out the rest), a constant 0.5;
    NaN for missing values and for categorical features (drawn grey)."""
    n = len(series)
    if categorical or not (
        pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
    ):
        return np.full(n, np.nan)
    values = pd.to_numeric(series, errors="coerce").astype(float).to_numpy()
    finite = np.isfinite(values)
    out = np.full(n, np.nan)
    if not finite.any():
        return out
    lo, hi = np.percentile(values[finite], [5, 95])
    if hi <= lo:
        lo, hi = values[finite].min(), values[finite].max()
    if hi <= lo:
        out[finite] = 0.5
        return out
    out[finite] = np.clip((values[finite] - lo) / (hi - lo), 0.0, 1.0)
    return out


def swarm_offsets(
    values: np.ndarray, rng: np.random.Generator, width: float = 0.38, bins: int = 40
) -> np.ndarray:
    """Vertical offsets of a beeswarm row: uniform jitter scaled by the local density of the
    values, so dense regions spread wider (within +-`width`)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        density = np.ones(len(values))
    else:
        counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
        which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, bins - 1)
        density = counts[which] / counts.max()
    return rng.uniform(-1.0, 1.0, len(values)) * width * np.sqrt(density)


def plot_importance(importance: pd.DataFrame, xlabel: str, champion: str) -> tuple[Any, str]:
    """Mean |SHAP| per feature (the top `IMPORTANCE_BARS`), largest on top."""
    df = importance.sort_values("rank").head(IMPORTANCE_BARS)
    n_rows = int(df["n_rows"].iloc[0]) if "n_rows" in df.columns and len(df) else 0
    fig, ax = new_figure(figsize=(8, 0.32 * len(df) + 1.6))
    y = np.arange(len(df))
    values = df["mean_abs_shap"].to_numpy(float)
    ax.barh(y, values, color=ACCENT)
    ax.set_yticks(y, df["feature"].astype(str).tolist(), fontsize=8)
    ax.invert_yaxis()
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:.3g}", va="center", fontsize=7)
    ax.set_xlim(0, max(values.max(), 1e-12) * 1.15)
    ax.set_xlabel(f"mean |SHAP value| ({xlabel})")
    ax.set_ylabel("feature")
    ax.grid(axis="x", alpha=0.3)
    more = len(importance) - len(df)
    title = "Global feature importance (mean |SHAP|)"
    suffix = f"; {more} more not shown" if more > 0 else ""
    ax.set_title(f"{title}\n({champion}, {n_rows:,} rows explained{suffix})", fontsize=11)
    return fig, title


def plot_beeswarm(
    shap: ShapSample, features: Sequence[str], xlabel: str, seed: int = 0
) -> tuple[Any, str]:
    """SHAP value of every sampled row for each top feature (most important on top), coloured by
    the feature's value (blue low, red high, grey categorical or missing)."""
    features = list(features)[:BEESWARM_FEATURES]
    rng = np.random.default_rng(seed)
    fig, ax = new_figure(figsize=(8.5, 0.45 * len(features) + 1.8))
    position = {c: j for j, c in enumerate(shap.columns)}
    for i, feature in enumerate(features):
        y0 = len(features) - 1 - i
        values = shap.values[:, position[feature]]
        colour = feature_colour_values(shap.X[feature], feature in shap.categorical)
        y = y0 + swarm_offsets(values, rng)
        grey = np.isnan(colour)
        ax.scatter(values[grey], y[grey], s=7, color=GREY, alpha=0.6, edgecolor="none")
        ax.scatter(
            values[~grey],
            y[~grey],
            s=7,
            c=colour[~grey],
            cmap=FEATURE_CMAP,
            vmin=0,
            vmax=1,
            alpha=0.8,
            edgecolor="none",
        )
    ax.axvline(0, color="black", lw=0.8)
    labels = [f"{f} (categorical)" if f in shap.categorical else f for f in features]
    ax.set_yticks(range(len(features)), list(reversed(labels)), fontsize=8)
    ax.set_ylim(-0.6, len(features) - 0.4)
    ax.set_xlabel(f"SHAP value (contribution to the {xlabel})")
    ax.set_ylabel("feature (most important on top)")
    ax.grid(axis="x", alpha=0.3)
    mappable = ScalarMappable(norm=Normalize(0, 1), cmap=FEATURE_CMAP)
    bar = fig.colorbar(mappable, ax=ax, ticks=[0, 1], shrink=0.8, pad=0.01)
    bar.ax.set_yticklabels(["low", "high"])
    bar.set_label(
        "feature value (5th-95th percentile per feature; grey: categorical or missing)", fontsize=8
    )
    return titled(
        fig,
        ax,
        "SHAP summary (beeswarm) of the top features",
        f"\n({len(shap.values):,} sampled rows, one dot per row)",
        fontsize=11,
    )


def _category_order(feature: str, text: pd.Series, values: np.ndarray) -> list[str]:
    counts = text.value_counts()
    shown = list(counts.index[:MAX_CATEGORIES])
    if feature in ORDERS:
        rank = {v: i for i, v in enumerate(ORDERS[feature])}
        return sorted(shown, key=lambda v: (v == MISSING_LABEL, rank.get(v, len(rank)), v))
    means = pd.Series(values).groupby(text.to_numpy()).mean()
    return sorted(shown, key=lambda v: (v == MISSING_LABEL, float(means.get(v, 0.0))))


def _rows_dots(ax: Any, x: np.ndarray, shap_values: np.ndarray) -> None:
    """One dot per sampled row: its feature value (jittered) against its SHAP value."""
    ax.scatter(
        x, shap_values, s=9, alpha=0.45, color=ACCENT, edgecolor="none", label="sampled rows"
    )


def plot_dependence(
    shap: ShapSample, feature: str, ylabel: str, rank: int, seed: int = 0
) -> tuple[Any, str]:
    """SHAP value against the feature's value: a scatter with a binned mean for numbers, a strip
    plot per category (with the category mean) for categorical features."""
    rng = np.random.default_rng(seed)
    values = shap.values[:, shap.columns.index(feature)]
    raw = shap.X[feature]
    title = f"SHAP dependence of {feature} (rank {rank})"
    fig, ax = new_figure(figsize=(7.5, 4.6))
    if feature in shap.categorical or not pd.api.types.is_numeric_dtype(raw):
        text = raw.astype("object").map(lambda v: MISSING_LABEL if pd.isna(v) else str(v))
        order = _category_order(feature, text, values)
        codes = {c: i for i, c in enumerate(order)}
        x = text.map(codes).to_numpy(dtype=float)
        shown = ~np.isnan(x)
        _rows_dots(ax, x[shown] + rng.uniform(-0.28, 0.28, shown.sum()), values[shown])
        means = [values[shown][x[shown] == i].mean() for i in range(len(order))]
        ax.scatter(
            range(len(order)),
            means,
            marker="D",
            s=50,
            color=HIGHLIGHT,
            edgecolor="black",
            zorder=3,
            label="category mean",
        )
        counts = text.value_counts()
        ax.set_xticks(
            range(len(order)),
            [f"{c}\n(n={int(counts[c]):,})" for c in order],
            fontsize=8,
            rotation=0 if len(order) <= 6 else 30,
        )
        ax.set_xlabel(f"{feature} (category; n = sampled rows)")
        hidden = int((~shown).sum())
        note = f"; {hidden} rows in rarer categories not shown" if hidden else ""
    else:
        x = raw.to_numpy(dtype=float)
        finite = np.isfinite(x)
        distinct = np.unique(x[finite])
        jitter = 0.0
        if 1 < len(distinct) <= 12:  # few values (counts, flags): spread the dots a little
            jitter = 0.15 * float(np.min(np.diff(distinct)))
        _rows_dots(ax, x[finite] + rng.uniform(-jitter, jitter, finite.sum()), values[finite])
        centres, means, _ = binned_mean(x[finite], values[finite])
        if len(centres) > 1:
            ax.plot(
                centres, means, color=HIGHLIGHT, lw=2, marker="o", markersize=4, label="binned mean"
            )
        ax.set_xlabel(axis_label(feature))
        missing = int((~finite).sum())
        note = f"; {missing} rows with a missing value not shown" if missing else ""
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel(f"SHAP value of {feature}\n({ylabel})", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(f"{title}\n({len(values):,} sampled rows{note})", fontsize=11)
    return fig, title
