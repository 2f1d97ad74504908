"""The model page's fairness section, its plot and its table: the champion's metrics by group of
each sensitive attribute and the gaps between the groups, from `ml.fairness_metrics` rows, against
the limits of the promotion's fairness gate (`ml.fairness.gate`). The plot and the table are pure
functions of the frame (the plot returns (figure, title))."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba

from ml.fairness.gate import FairnessLimits, default_limits, gaps_of_large_groups
from ml.reports.figures import TAB10, label_axes, new_figure, reference_line, titled
from ml.reports.model_data import ModelData
from ml.reports.page import Report

#: The metrics drawn by group, by problem (the rates share one axis from 0 to 1).
GROUP_METRICS = {
    "binary": ("selection_rate", "true_positive_rate", "false_positive_rate"),
    "regression": ("mean_absolute_error",),
    "multiclass": ("accuracy", "macro_f1"),
}
#: The rates whose largest between-group difference is the equalized odds difference.
ODDS_RATES = ("true_positive_rate", "false_positive_rate")
GATED = "gated"
REPORTED_ONLY = "reported only"


def gate_role(attribute: str, limits: FairnessLimits) -> str:
    """Whether the fairness gate checks `attribute` ("gated") or only reports it."""
    return GATED if attribute in limits.attributes else REPORTED_ONLY


def _large_groups(wide: pd.DataFrame, limits: FairnessLimits) -> pd.DataFrame:
    """The groups (rows of `wide`) the gate compares: those of at least `min_group_size` rows."""
    if "count" not in wide.columns:
        return wide
    return wide[wide["count"] >= limits.min_group_size]


def _draw_limits(ax: Any, wide: pd.DataFrame, metrics: list[str], limits: FairnessLimits) -> bool:
    """The gate's limits over the groups it compares: a dashed line at `min_parity_ratio` x the
    highest selection rate (a group below it fails the parity ratio), and for the true and false
    positive rates the allowed band, from the highest group's value minus `max_odds_difference`
    to the highest. False (nothing drawn) when fewer than two groups are large enough."""
    large = _large_groups(wide, limits)
    if len(large) < 2:
        return False
    colour = {m: TAB10[i] for i, m in enumerate(metrics)}
    if "selection_rate" in metrics and large["selection_rate"].notna().any():
        top = float(large["selection_rate"].max())
        ax.axhline(
            limits.min_parity_ratio * top, color=colour["selection_rate"], linestyle="--", lw=1.4,
            label=f"selection rate floor: {limits.min_parity_ratio:g} x the highest group's "
            "(demographic parity ratio)",
        )  # fmt: skip
    for metric in ODDS_RATES:
        if metric not in metrics or not large[metric].notna().any():
            continue
        top = float(large[metric].max())
        ax.axhspan(
            max(top - limits.max_odds_difference, 0.0), top,
            facecolor=to_rgba(colour[metric], 0.10), edgecolor=colour[metric], linestyle="--",
            lw=1.0,
            label=f"{metric.replace('_', ' ')}: allowed band, the highest group's minus "
            f"{limits.max_odds_difference:g} (equalized odds)",
        )  # fmt: skip
    return True


def _tick_label(group: Any, n: float, min_size: int | None) -> str:
    """`group (n=123)`, marked `< 50` when the gate leaves the group out (`min_size` 50)."""
    small = min_size is not None and n < min_size
    return f"{group}\n(n={n:,.0f}{f' < {min_size}' if small else ''})"


def plot_metrics_by_group(
    rows: pd.DataFrame, attribute: str, problem: str, limits: FairnessLimits | None = None
) -> tuple[Any, str]:
    """Grouped bars: each metric of GROUP_METRICS by group of `attribute` (its `count` under the
    group's name), the overall value of the first metric as a dashed line; for a binary task
    with `limits` (`ml.fairness.gate.default_limits(task)`), the gate's limits (`_draw_limits`)
    computed over the groups of at least `limits.min_group_size` rows, the smaller groups
    marked under their names."""
    groups_rows = rows[(rows["attribute"] == attribute) & (rows["kind"] == "group")]
    metrics = [m for m in GROUP_METRICS[problem] if m in set(groups_rows["metric"])]
    wide = groups_rows.pivot_table(index="group_value", columns="metric", values="value")
    groups = list(wide.index)
    counts = wide["count"] if "count" in wide.columns else pd.Series(np.nan, index=wide.index)
    gate = problem == "binary" and limits is not None
    x = np.arange(len(groups))
    width = 0.8 / max(len(metrics), 1)
    fig, ax = new_figure(figsize=(max(6.4, 0.9 * len(groups) + 2) + (3.2 if gate else 0), 4.2))
    for i, metric in enumerate(metrics):
        values = wide[metric].to_numpy(dtype=float)
        ax.bar(x + (i - (len(metrics) - 1) / 2) * width, values, width, color=TAB10[i],
               label=metric.replace("_", " "))  # fmt: skip
    overall = rows[
        (rows["attribute"] == attribute) & (rows["kind"] == "overall")
        & (rows["metric"] == metrics[0])
    ]["value"]  # fmt: skip
    if len(overall):
        reference_line(ax, float(overall.iloc[0]), f"{metrics[0].replace('_', ' ')}, all rows")
    drawn = gate and _draw_limits(ax, wide, metrics, limits)
    ax.set_xticks(x)
    min_size = limits.min_group_size if drawn else None
    ax.set_xticklabels(
        [_tick_label(g, c, min_size) for g, c in zip(groups, counts, strict=True)], fontsize=8
    )
    label_axes(ax, attribute.replace("_", " "), "value", grid="y", legend=None if gate else "best")
    if gate:  # the bars first, then the lines and bands, beside the plot
        handles, names = ax.get_legend_handles_labels()
        bars = {m.replace("_", " ") for m in metrics}
        order = sorted(range(len(names)), key=lambda i: names[i] not in bars)
        ax.legend([handles[i] for i in order], [names[i] for i in order], fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    particulars = " (test split)"
    if gate:
        role = gate_role(attribute, limits)
        particulars = f" (test split, {role})" if drawn else (
            f" (test split, {role}; no limits: fewer than two groups of "
            f"{limits.min_group_size}+ rows)"
        )  # fmt: skip
    return titled(fig, ax, f"Metrics by {attribute.replace('_', ' ')}", particulars)


def _within(value: float, limit: tuple[str, float]) -> str:
    op, bound = limit
    return "yes" if (value >= bound if op == ">=" else value <= bound) else "no"


def gap_table(rows: pd.DataFrame, limits: FairnessLimits) -> pd.DataFrame:
    """One row per attribute and gap of one model's `ml.fairness_metrics` rows (one split):
    whether the fairness gate `limits` checks the attribute or only reports it, the gap over
    every group and, for the gaps the gate limits, its value over the groups of at least
    `limits.min_group_size` rows (what the gate compares), the limit and whether that value is
    within it."""
    gaps = rows[rows["kind"] == "gap"]
    out = []
    for attribute in sorted(set(gaps["attribute"].astype(str))):
        part = rows[rows["attribute"].astype(str) == attribute]
        large, _ = gaps_of_large_groups(part, limits.min_group_size)
        mine = gaps[gaps["attribute"].astype(str) == attribute].sort_values("metric")
        for _, r in mine.iterrows():
            metric = str(r["metric"])
            limit = limits.limits.get(metric)
            value = large.get(metric, math.nan) if limit else math.nan
            within = ""
            if limit is not None:
                within = (
                    _within(value, limit)
                    if math.isfinite(value)
                    else f"not measured: fewer than two groups of {limits.min_group_size}+ rows"
                )
            out.append({
                "attribute": attribute,
                "gate": gate_role(attribute, limits),
                "gap": metric.replace("_", " "),
                "value": float(r["value"]),
                "value (large groups)": value,
                "limit": f"{limit[0]} {limit[1]:g}" if limit else "",
                "within": within,
            })  # fmt: skip
    columns = ["attribute", "gate", "gap", "value", "value (large groups)", "limit", "within"]
    return pd.DataFrame(out, columns=columns)


def limits_text(limits: FairnessLimits) -> str:
    """e.g. `demographic parity ratio >= 0.8; equalized odds difference <= 0.1`."""
    return "; ".join(f"{m.replace('_', ' ')} {op} {v:g}" for m, (op, v) in limits.limits.items())


# ---------------------------------------------------------------------------------------------
# the section


def add_fairness_section(report: Report, data: ModelData) -> None:
    """The model page's fairness section: the champion's metrics by group of each attribute,
    with the gate's limits, and the gaps between the groups."""
    sec = report.section("Fairness by group", anchor="fairness")
    if data.fairness.empty:
        reason = data.skipped.get("fairness", "no fairness metrics were read")
        sec.add_note(f"Skipped the fairness section: {reason}.")
        return
    rows = data.fairness
    sec.add_text(
        f"The champion on the {_count(rows):,.0f} test rows, by group of each sensitive "
        "attribute (fairlearn's MetricFrame; ml.fairness_metrics holds every candidate and split). "
        "Small groups give noisy rates: read them with their n."
    )
    limits = default_limits(data.task)
    for attribute in sorted(set(rows["attribute"])):
        fig, t = plot_metrics_by_group(rows, attribute, data.problem, limits)
        sec.add_figure(fig, t, _fairness_caption(data.problem, limits))
    gated = (
        f"Gated attributes of {data.task}: {', '.join(limits.attributes)}; the others are "
        "reported only."
        if limits.attributes
        else f"{data.task} gates no attribute: every gap is reported only."
    )
    sec.add_table(
        gap_table(rows, limits),
        caption=(
            f"Gaps between the groups: value over every group; value (large groups) over the "
            f"groups of at least {limits.min_group_size} test rows, what the promotion's fairness "
            f"gate compares (ml.fairness.gate, binary tasks: {limits_text(limits)}). {gated} "
            "These are the gate's default limits: ml.train and ml.promote accept others, and "
            "each promotion decision records the checks it made (Deployments)."
        ),
    )


def _fairness_caption(problem: str, limits: FairnessLimits) -> str:
    text = "Dashed black line: the first metric over every test row."
    if problem == "binary":
        text += (
            " The fairness gate's limits, from the groups large enough to count (one marked "
            f"< {limits.min_group_size} under its name is left out): a group whose "
            "selection rate is under the dashed blue line fails the demographic parity ratio; "
            "one whose true or false positive rate is outside its shaded band (from the highest "
            "group's rate down by the allowed equalized odds difference) fails equalized odds."
        )
    return text


def _count(rows) -> float:
    overall = rows[(rows["kind"] == "overall") & (rows["metric"] == "count")]["value"]
    return float(overall.iloc[0]) if len(overall) else 0.0
