"""The fairness section's plot: a model's metrics by group of one sensitive attribute, from
`ml.fairness_metrics` rows (a pure function of the frame, returning (figure, title))."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.reports.figures import TAB10, label_axes, new_figure, reference_line, titled

#: The metrics drawn by group, by problem (the rates share one axis from 0 to 1).
GROUP_METRICS = {
    "binary": ("selection_rate", "true_positive_rate", "false_positive_rate"),
    "regression": ("mean_absolute_error",),
    "multiclass": ("accuracy", "macro_f1"),
}
#: Reference limits of the gaps shown beside them (demographic parity ratio: the four-fifths
#: rule; equalized odds difference: the issue's default for the loan decision).
GAP_LIMITS = {"demographic_parity_ratio": (">=", 0.8), "equalized_odds_difference": ("<=", 0.1)}


def plot_metrics_by_group(rows: pd.DataFrame, attribute: str, problem: str) -> tuple[Any, str]:
    """Grouped bars: each metric of GROUP_METRICS by group of `attribute` (its `count` under the
    group's name), the overall value of the first metric as a dashed line."""
    groups_rows = rows[(rows["attribute"] == attribute) & (rows["kind"] == "group")]
    metrics = [m for m in GROUP_METRICS[problem] if m in set(groups_rows["metric"])]
    wide = groups_rows.pivot_table(index="group_value", columns="metric", values="value")
    groups = list(wide.index)
    counts = wide["count"] if "count" in wide.columns else pd.Series(np.nan, index=wide.index)
    x = np.arange(len(groups))
    width = 0.8 / max(len(metrics), 1)
    fig, ax = new_figure(figsize=(max(6.4, 0.9 * len(groups) + 2), 4.2))
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
    ax.set_xticks(x)
    ax.set_xticklabels([f"{g}\n(n={c:,.0f})" for g, c in zip(groups, counts, strict=True)],
                       fontsize=8)  # fmt: skip
    label_axes(ax, attribute.replace("_", " "), "value", grid="y")
    return titled(fig, ax, f"Metrics by {attribute.replace('_', ' ')}", " (test split)")


def gap_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per attribute and gap: its value and, where one applies, the reference limit and
    whether the value is within it."""
    gaps = rows[rows["kind"] == "gap"]
    out = []
    for _, r in gaps.sort_values(["attribute", "metric"]).iterrows():
        limit = GAP_LIMITS.get(str(r["metric"]))
        value = float(r["value"])
        within = ""
        if limit is not None and np.isfinite(value):
            op, bound = limit
            within = "yes" if (value >= bound if op == ">=" else value <= bound) else "no"
        out.append({
            "attribute": r["attribute"],
            "gap": str(r["metric"]).replace("_", " "),
            "value": value,
            "reference": f"{limit[0]} {limit[1]:g}" if limit else "",
            "within": within,
        })  # fmt: skip
    return pd.DataFrame(out, columns=["attribute", "gap", "value", "reference", "within"])
