"""The monitoring page, `reports/monitoring.html`: per task, the PSI of every feature and of the
score over the batches (with the watch and act thresholds), the missing shares, and the realised
primary metric per batch beside the one measured at training. Drawn from the marts dbt built
(`ml.monitoring.status`); nothing is recomputed here."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml.core.config import PROJECT_ROOT, dbt_vars
from ml.core.errors import UserError
from ml.monitoring.status import Monitoring, read_monitoring
from ml.reports.figures import label_axes, new_figure, reference_line, titled
from ml.reports.page import Report, render
from ml.reports.reading import open_read_only

DEFAULT_OUTPUT = PROJECT_ROOT / "reports"
FILENAME = "monitoring.html"
#: Features drawn by name in the PSI plot; the others are drawn in grey.
NAMED_FEATURES = 6


def dbt_var(name: str) -> float:
    """A monitoring threshold of dbt_project.yml."""
    return float(dbt_vars()[name])


def _thresholds() -> tuple[float, float]:
    return dbt_var("psi_watch_at"), dbt_var("psi_act_at")


def plot_psi(task: str, drift: pd.DataFrame):
    """PSI of every feature (the most drifted named) and of the score, by batch."""
    fig, ax = new_figure(figsize=(7.2, 4.2))
    features = drift[drift["subject"] == "feature"]
    worst = features.groupby("feature")["psi"].max().sort_values(ascending=False)
    for name in worst.index[NAMED_FEATURES:]:
        rows = features[features["feature"] == name].sort_values("batch_id")
        ax.plot(rows["batch_id"], rows["psi"], color="#bbbbbb", lw=0.8)
    for name in worst.index[:NAMED_FEATURES]:
        rows = features[features["feature"] == name].sort_values("batch_id")
        ax.plot(rows["batch_id"], rows["psi"], marker="o", lw=1.5, label=name)
    score = drift[drift["subject"] == "score"].sort_values("batch_id")
    ax.plot(score["batch_id"], score["psi"], color="black", marker="s", lw=2, label="(score)")
    watch, act = _thresholds()
    reference_line(ax, watch, f"watch ({watch:g})", color="#d9a400")
    reference_line(ax, act, f"act ({act:g})", color="#c0392b")
    ax.set_xticks(sorted(drift["batch_id"].unique()))
    ax.set_ylim(bottom=0)
    label_axes(ax, "batch", "population stability index", legend="upper left")
    return titled(fig, ax, f"{task}: drift of the features and the score by batch")


def plot_performance(task: str, performance: pd.DataFrame):
    """The realised primary metric per batch, with the metric measured at training."""
    fig, ax = new_figure(figsize=(7.2, 3.6))
    rows = performance.sort_values("batch_id")
    measured = rows[rows["realised_metric"].notna()]
    metric = str(rows["metric"].iloc[0])
    ax.plot(measured["batch_id"], measured["realised_metric"], marker="o", lw=2, label="realised")
    training = float(rows["training_metric"].iloc[0])
    reference_line(ax, training, f"at training ({training:.3f})")
    act = training - dbt_var("realised_metric_act_drop")
    reference_line(ax, act, f"act below {act:.3f}", color="#c0392b")
    ax.set_xticks(sorted(rows["batch_id"].unique()))
    label_axes(ax, "batch", metric, legend="lower left")
    return titled(fig, ax, f"{task}: realised {metric} of the new rows of each batch")


def monitoring_report(monitoring: Monitoring) -> Report:
    """The page: a summary table, then per task its plots and its latest batch's table."""
    drift, performance = monitoring.drift, monitoring.performance
    batches = ", ".join(map(str, monitoring.batches))
    report = Report(
        "Monitoring: drift and realised performance",
        subtitle=f"batches {batches}; PSI against each deployed model's training rows",
    )
    summary = (
        drift.groupby(["task", "batch_id"])["status"]
        .agg(lambda s: max(s, key=["stable", "watch", "act"].index))
        .unstack("batch_id")
    )
    sec = report.section("Status by task and batch")
    sec.add_table(
        summary.reset_index(),
        caption="The worst status of any feature or the score. PSI < watch: stable; watch <= "
        "PSI < act: watch; PSI >= act (or a missing share moved by the act threshold): act.",
    )
    for task in sorted(drift["task"].unique()):
        sec = report.section(task)
        mine = drift[drift["task"] == task]
        sec.add_figure(*plot_psi(task, mine))
        perf = performance[performance["task"] == task]
        if perf["realised_metric"].notna().any():
            sec.add_figure(*plot_performance(task, perf))
        latest = mine[mine["batch_id"] == mine["batch_id"].max()]
        sec.add_table(
            latest[
                [
                    "feature",
                    "batch_id",
                    "row_count",
                    "psi",
                    "missing_share",
                    "reference_missing_share",
                    "status",
                ]
            ]  # fmt: skip
            .sort_values("psi", ascending=False)
            .reset_index(drop=True),
            caption="The latest batch, most drifted first.",
        )
        if not perf.empty:
            sec.add_table(
                perf[
                    [
                        "batch_id",
                        "metric",
                        "row_count",
                        "realised_metric",
                        "training_metric",
                        "metric_drop",
                        "status",
                    ]
                ].reset_index(drop=True),  # fmt: skip
                caption="Realised metric on the rows that arrived after training, per batch.",
            )
    return report


def write_monitoring_report(
    out: str | Path = DEFAULT_OUTPUT, *, path: str | Path | None = None
) -> tuple[Path, int]:
    """Write `out/monitoring.html`; return (page, plots). Raises `UserError` when the monitoring
    marts are missing or empty."""
    with open_read_only(path) as wh:
        monitoring = read_monitoring(wh, every=True)
    if monitoring.drift["psi"].isna().all():
        raise UserError("the monitoring marts hold no PSI yet")
    report = monitoring_report(monitoring)
    page = render(report, Path(out), filename=FILENAME)
    return page, len(report.figures)
