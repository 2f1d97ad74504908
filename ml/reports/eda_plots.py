"""The plots of the EDA page: pure functions of the frames `eda_data` collects, each returning
(figure, title)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ml.reports.figures import (
    ACCENT,
    ACCENT_LIGHT,
    cell_text,
    label_axes,
    new_figure,
    thousands,
    titled,
)
from ml.reports.labels import MISSING_LABEL, ORDERS, OTHER_VALUES, axis_label, ordered

#: z of a 95 % confidence interval (normal approximation).
CI_Z = 1.96


def _grid(n: int, ncols: int, panel: tuple[float, float]) -> tuple[Any, list[Any]]:
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig, axes = new_figure(
        nrows, ncols, figsize=(panel[0] * ncols, panel[1] * nrows + 0.6), squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _bins(x: np.ndarray, lo: float, hi: float, n: int = 40) -> Any:
    """`n` equal bins, or integer-aligned ones for whole numbers (no empty comb teeth)."""
    if np.all(x == np.round(x)) and hi > lo:
        width = max(1, math.ceil((hi - lo + 1) / n))
        return np.arange(lo - 0.5, hi + width, width)
    return n


def _compact_x(ax: Any) -> None:
    """Tick labels like 20k / 1.5M on a linear x axis, so large numbers do not overlap."""

    def fmt(v: float, _: Any) -> str:
        for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(v) >= div:
                return f"{v / div:g}{suffix}"
        return f"{v:g}"

    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(FuncFormatter(fmt))


def _histogram(ax: Any, values: pd.Series, column: str, entity: str, first_col: bool) -> None:
    """One panel: discrete bars, a log-x histogram or a p99-clipped histogram, as fits the data."""
    raw = values.dropna()
    null_share = 1 - len(raw) / len(values) if len(values) else 0.0
    suffix = f", {null_share:.0%} NULL" if null_share >= 0.005 else ""
    label = axis_label(column)
    discrete = False
    if raw.empty:
        ax.text(0.5, 0.5, "all values NULL", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(f"{column}{suffix}", fontsize=10)
        ax.set_xlabel(label, fontsize=8)
        return
    if pd.api.types.is_datetime64_any_dtype(raw):
        ax.hist(raw, bins=40, color=ACCENT)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(f"{column}{suffix}", fontsize=10)
    else:
        x = raw.to_numpy(dtype=float)
        distinct = np.unique(x)
        if len(distinct) <= 25 and np.all(distinct == np.round(distinct)):
            discrete = True
            counts = pd.Series(x).value_counts().sort_index()
            ax.bar(counts.index, counts.to_numpy(), width=0.8, color=ACCENT)
            if len(distinct) <= 12:
                ax.set_xticks(counts.index)
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_title(f"{column}{suffix}", fontsize=10)
        else:
            lo, p99, hi = np.quantile(x, [0.0, 0.99, 1.0])
            skew = float(pd.Series(x).skew())
            if skew > 2 and lo > 0 and hi / lo > 100:
                ax.hist(x, bins=np.geomspace(lo, hi, 41), color=ACCENT)
                ax.set_xscale("log")
                ax.set_title(f"{column} (log x{suffix})", fontsize=10)
            elif skew > 2 and p99 < hi:
                above = int((x > p99).sum())
                ax.hist(np.minimum(x, p99), bins=40, range=(lo, p99), color=ACCENT)
                ax.set_title(f"{column} (clipped at p99{suffix})", fontsize=10)
                ax.text(
                    0.98,
                    0.95,
                    f"{above:,} > {p99:,.3g}\nin last bin",
                    ha="right",
                    va="top",
                    fontsize=7,
                    transform=ax.transAxes,
                )
            else:
                ax.hist(x, bins=_bins(x, lo, hi), color=ACCENT)
                ax.set_title(f"{column}{suffix}", fontsize=10)
    if (
        not discrete
        and ax.get_xscale() == "linear"
        and not pd.api.types.is_datetime64_any_dtype(raw)
    ):
        _compact_x(ax)
    ax.set_xlabel(label, fontsize=8)
    if first_col:
        ax.set_ylabel(entity, fontsize=8)
    ax.tick_params(labelsize=7)
    thousands(ax)


def plot_numeric_distributions(
    sample: pd.DataFrame, entity: str, relation: str, total_rows: int
) -> tuple[Any, str]:
    """Small multiples: a histogram per numeric or date column of the sample."""
    columns = list(sample.columns)
    ncols = 5
    fig, axes = _grid(len(columns), ncols, (3.2, 2.5))
    for i, (ax, col) in enumerate(zip(axes, columns, strict=True)):
        _histogram(ax, sample[col], col, entity, first_col=i % ncols == 0)
    sampled = (
        f"sample of {len(sample):,} of {total_rows:,} rows"
        if len(sample) < total_rows
        else f"all {total_rows:,} rows"
    )
    title = f"{relation}: distribution of the numeric features ({sampled})"
    fig.suptitle(title, fontsize=13)
    return fig, title


def plot_categorical_distributions(
    cats: pd.DataFrame, entity: str, relation: str
) -> tuple[Any, str]:
    """Small multiples: a bar chart of value counts per categorical column."""
    columns = list(dict.fromkeys(cats["column"]))
    ncols = 3
    fig, axes = _grid(len(columns), ncols, (4.6, 3.2))
    for i, (ax, col) in enumerate(zip(axes, columns, strict=True)):
        part = cats[cats["column"] == col].set_index("value")["n"]
        if col in ORDERS:
            part = part.reindex(ordered(list(part.index), col))
        else:
            part = part.reindex(ordered(list(part.sort_values(ascending=False).index), col))
        labels = [str(v) for v in part.index]
        colors = ["#b0b0b0" if v in (MISSING_LABEL, OTHER_VALUES) else ACCENT for v in labels]
        ax.bar(range(len(part)), part.to_numpy(), color=colors)
        ax.set_xticks(range(len(part)), labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(col, fontsize=10)
        ax.set_xlabel(f"{col} (category)", fontsize=8)
        if i % ncols == 0:
            ax.set_ylabel(entity, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        thousands(ax)
    title = f"{relation}: distribution of the categorical features (all rows; grey = missing)"
    fig.suptitle(title, fontsize=13)
    return fig, title


def plot_null_shares(frames: dict[str, pd.DataFrame], title: str) -> tuple[Any, str]:
    """Horizontal bars of the NULL share per column, a panel per table."""
    n = len(frames)
    longest = max(len(f) for f in frames.values())
    fig, axes = new_figure(1, n, figsize=(4.6 * n, 0.22 * longest + 1.6), squeeze=False)
    for ax, (rel, df) in zip(axes[0], frames.items(), strict=True):
        share = df["null_share"].to_numpy() * 100
        y = np.arange(len(df))
        ax.barh(y, share, color=[ACCENT if s > 0 else ACCENT_LIGHT for s in share])
        ax.set_yticks(y, df["column"].tolist(), fontsize=8)
        ax.invert_yaxis()
        top = max(5.0, float(share.max()) * 1.3)
        ax.set_xlim(0, top)
        for yi, s in zip(y, share, strict=True):
            if s > 0:
                ax.text(s + top * 0.01, yi, f"{s:.1f} %", va="center", fontsize=7)
        rows = int(df["rows"].iloc[0]) if len(df) else 0
        ax.set_title(f"{rel} ({rows:,} rows)", fontsize=10)
        ax.set_xlabel("NULL share (% of rows)", fontsize=8)
        ax.set_ylabel("column", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title, fontsize=13)
    return fig, title


def plot_correlations(sample: pd.DataFrame, relation: str) -> tuple[Any, str]:
    """Spearman rank correlation heatmap of the numeric columns (robust to heavy tails)."""
    numeric = sample.select_dtypes("number")
    numeric = numeric.loc[:, numeric.nunique() > 1]
    corr = numeric.corr(method="spearman", min_periods=30)
    k = len(corr)
    size = max(6.0, 0.36 * k + 2.5)
    fig, axes = new_figure(figsize=(size + 1.2, size))
    ax = axes
    im = ax.imshow(corr.to_numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(k), corr.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), corr.index, fontsize=8)
    for i in range(k):
        for j in range(k):
            r = corr.iat[i, j]
            if i != j and not np.isnan(r) and abs(r) >= 0.3:
                cell_text(ax, i, j, f"{r:.1f}", 6, "white" if abs(r) > 0.65 else "black")
    fig.colorbar(im, ax=ax, shrink=0.7, label="Spearman rank correlation (-1 to 1, unitless)")
    ax.set_xlabel("feature", fontsize=9)
    ax.set_ylabel("feature", fontsize=9)
    return titled(
        fig,
        ax,
        f"{relation}: Spearman correlation of numeric columns (|r| >= 0.3 annotated)",
        fontsize=11,
    )


def _ci(sd: pd.Series, n: pd.Series) -> np.ndarray:
    """Half-width of the 95 % confidence interval of a mean, from stddev and count."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (CI_Z * sd.astype(float) / np.sqrt(n.astype(float))).fillna(0).to_numpy()


def plot_satisfaction_by(df: pd.DataFrame, column: str, what: str) -> tuple[Any, str]:
    """Mean satisfaction per bucket: 95 % CI of the mean (dark) and +-1 SD (light)."""
    df = df.set_index(column).reindex(ordered(list(df[column]), column)).reset_index()
    x = np.arange(len(df))
    mean = df["mean_satisfaction"].to_numpy(dtype=float)
    sd = df["stddev_satisfaction"].fillna(0).to_numpy(dtype=float)
    fig, ax = new_figure(figsize=(8, 4.4))
    ax.errorbar(
        x,
        mean,
        yerr=sd,
        fmt="none",
        ecolor=ACCENT_LIGHT,
        elinewidth=8,
        alpha=0.7,
        label="+-1 standard deviation",
    )
    ax.errorbar(
        x,
        mean,
        yerr=_ci(df["stddev_satisfaction"], df["surveyed_count"]),
        fmt="o",
        color=ACCENT,
        ecolor="black",
        capsize=5,
        label="mean, 95 % CI of the mean",
    )
    labels = [f"{v}\nn={int(n):,}" for v, n in zip(df[column], df["surveyed_count"], strict=True)]
    ax.set_xticks(x, labels, fontsize=8)
    label_axes(
        ax,
        f"{what} (n = surveyed customers)",
        "customer satisfaction (score 1-10)",
        legend="lower right",
        grid="y",
    )
    return titled(fig, ax, f"Mean satisfaction by {what}")


def plot_satisfaction_cross(df: pd.DataFrame, min_n: int = 20) -> tuple[Any, str]:
    """Heatmap of mean satisfaction per age group x income bracket (cells with n < min_n grey)."""
    rows = ordered(list(df["age_group"].unique()), "age_group")
    cols = ordered(list(df["income_bracket"].unique()), "income_bracket")
    mean = df.pivot(index="age_group", columns="income_bracket", values="mean_satisfaction")
    count = df.pivot(index="age_group", columns="income_bracket", values="surveyed_count")
    mean, count = mean.reindex(index=rows, columns=cols), count.reindex(index=rows, columns=cols)
    shown = mean.where(count.fillna(0) >= min_n)
    fig, ax = new_figure(figsize=(9, 6))
    ax.set_facecolor("#e6e6e6")
    im = ax.imshow(shown.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    finite = shown.to_numpy(dtype=float)
    mid = np.nanmean(finite) if np.isfinite(finite).any() else 0
    for i in range(len(rows)):
        for j in range(len(cols)):
            m, n = mean.iat[i, j], count.iat[i, j]
            if pd.isna(n) or n == 0:
                continue
            text = f"{m:.2f}\nn={int(n):,}" if n >= min_n else f"n={int(n)}\n(< {min_n})"
            color = "white" if n >= min_n and m < mid else "black"
            cell_text(ax, i, j, text, 7, color)
    ax.set_xticks(range(len(cols)), cols)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("income bracket ($ per year)")
    ax.set_ylabel("age group (years)")
    fig.colorbar(im, ax=ax, label="mean satisfaction (score 1-10)")
    return titled(
        fig, ax, "Mean satisfaction by age group and income bracket", " (n = surveyed customers)"
    )


def _rate_ci(rate: pd.Series, n: pd.Series) -> np.ndarray:
    p, m = rate.astype(float).to_numpy(), n.astype(float).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(CI_Z * np.sqrt(p * (1 - p) / m))


def plot_default_rate(df: pd.DataFrame, column: str) -> tuple[Any, str]:
    """Default rate per bucket with the 95 % CI of a proportion (normal approximation)."""
    if column in ORDERS:
        df = df.set_index(column).reindex(ordered(list(df[column]), column)).reset_index()
    else:
        df = df.sort_values("default_rate", ascending=True)
    rate = df["default_rate"].astype(float) * 100
    err = _rate_ci(df["default_rate"], df["loan_count"]) * 100
    labels = [f"{v} (n={int(n):,})" for v, n in zip(df[column], df["loan_count"], strict=True)]
    title = f"Default rate by {column}"
    if column in ORDERS:
        fig, ax = new_figure(figsize=(8, 4.4))
        x = np.arange(len(df))
        ax.bar(x, rate, yerr=err, capsize=4, color=ACCENT)
        ax.set_xticks(x, [lab.replace(" (", "\n(") for lab in labels], fontsize=8)
        ax.set_xlabel(f"{column} (n = loan applications)")
        ax.set_ylabel("default rate (% of loans)")
        for xi, r in zip(x, rate, strict=True):
            ax.text(xi, r / 2, f"{r:.1f} %", ha="center", color="white", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    else:
        fig, ax = new_figure(figsize=(8, 0.45 * len(df) + 1.5))
        y = np.arange(len(df))
        ax.barh(y, rate, xerr=err, capsize=4, color=ACCENT)
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylabel(f"{column} (n = loan applications)")
        ax.set_xlabel("default rate (% of loans)")
        for yi, r in zip(y, rate, strict=True):
            ax.text(r / 2, yi, f"{r:.1f} %", va="center", ha="center", color="white", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title} (error bars: 95 % CI)")
    return fig, title


def plot_satisfaction_label(bins: pd.DataFrame, totals: pd.DataFrame) -> tuple[Any, str]:
    n, surveyed, mean = (totals.iat[0, i] for i in range(3))
    fig, ax = new_figure(figsize=(8, 4))
    ax.bar(bins["bin"].astype(float) + 0.125, bins["n"], width=0.25, color=ACCENT)
    if surveyed:
        ax.axvline(float(mean), color="black", linestyle="--", label=f"mean {float(mean):.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("customer_satisfaction (score 1-10, bins of 0.25)")
    ax.set_ylabel("customers")
    thousands(ax)
    missing = (n - surveyed) / n if n else 0
    return titled(
        fig,
        ax,
        "Label balance: customer satisfaction",
        f" ({int(surveyed):,} surveyed, {missing:.1%} not surveyed)",
    )


def _count_bars(ax: Any, labels: list[str], counts: np.ndarray, total: int) -> None:
    colors = ["#b0b0b0" if lab == MISSING_LABEL else ACCENT for lab in labels]
    x = np.arange(len(labels))
    ax.bar(x, counts, color=colors)
    ax.set_xticks(x, labels, fontsize=9)
    for xi, c in zip(x, counts, strict=True):
        ax.text(xi, c, f"{int(c):,}\n{c / total:.1%}", ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max(counts.max(), 1) * 1.22)
    thousands(ax)


def plot_segment_label(df: pd.DataFrame) -> tuple[Any, str]:
    df = df.assign(value=df["value"].astype(object).where(df["value"].notna(), MISSING_LABEL))
    df = df.set_index("value").reindex(ordered(list(df["value"]), "segment")).reset_index()
    total = int(df["n"].sum())
    fig, ax = new_figure(figsize=(8, 4))
    _count_bars(ax, df["value"].tolist(), df["n"].to_numpy(), total)
    ax.set_xlabel("segment (CRM label; grey = missing)")
    ax.set_ylabel("customers")
    return titled(fig, ax, "Label balance: customer segments", f" ({total:,} customers)")


def plot_defaulted_label(df: pd.DataFrame) -> tuple[Any, str]:
    names = {0: "repaid (0)", 1: "defaulted (1)"}
    labels = [MISSING_LABEL if pd.isna(v) else names.get(int(v), str(v)) for v in df["value"]]
    total = int(df["n"].sum())
    counts = df["n"].to_numpy()
    positive = int(df.loc[df["value"] == 1, "n"].sum())
    fig, ax = new_figure(figsize=(6, 4))
    _count_bars(ax, labels, counts, total)
    ax.set_xlabel("defaulted (0 = repaid, 1 = defaulted)")
    ax.set_ylabel("loan applications")
    share = positive / total if total else 0
    return titled(fig, ax, "Label balance: loan defaults", f" ({share:.1%} of {total:,} defaulted)")


def plot_rejections(
    rejected: dict[str, pd.DataFrame], raw_rows: dict[str, int | None]
) -> tuple[Any, str]:
    n = len(rejected)
    longest = max(max(len(df) for df in rejected.values()), 1)
    fig, axes = new_figure(1, n, figsize=(5.2 * n, 0.45 * longest + 2.0), squeeze=False)
    for ax, (entity, df) in zip(axes[0], rejected.items(), strict=True):
        total = int(df["n"].sum())
        raw = raw_rows.get(entity)
        of_raw = f" of {raw:,} raw rows ({total / raw:.1%})" if raw else ""
        ax.set_title(f"stg_{entity}_rejected: {total:,}{of_raw}", fontsize=10)
        ax.set_xlabel("rejected rows", fontsize=8)
        ax.set_ylabel("rejection_reason", fontsize=8)
        if df.empty:
            ax.text(0.5, 0.5, "no rejected rows", ha="center", va="center", transform=ax.transAxes)
            ax.set_yticks([])
            continue
        y = np.arange(len(df))
        counts = df["n"].to_numpy()
        ax.barh(y, counts, color=ACCENT)
        ax.set_yticks(y, df["reason"].tolist(), fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, counts.max() * 1.3)
        for yi, c in zip(y, counts, strict=True):
            ax.text(c, yi, f" {int(c):,}", va="center", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
        thousands(ax, "x")
    title = "Rows rejected by staging, by reason"
    fig.suptitle(title, fontsize=13)
    return fig, title
