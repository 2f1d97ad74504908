"""Every report, and the index page linking them: the EDA page, a page per trained task, the
segments page, the monitoring page, and `index.html` with each task's deployed model (its latest
champion on a warehouse without `ml.deployments`) and the chosen segmentation.

A part whose data is missing (no model trained yet, no segmentation) is listed on the index as
not available, with the reason; the other parts are still written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ml.core.config import PROJECT_ROOT
from ml.core.errors import UserError
from ml.core.tables import DEPLOYMENTS, MODEL_RUNS, SEGMENTATION_RUNS
from ml.core.warehouse import Warehouse
from ml.reports.eda_data import collect_eda
from ml.reports.eda_page import build_report as build_eda_report
from ml.reports.model_data import DEPLOYMENT_COLUMNS, latest_runs
from ml.reports.model_page import write_model_reports
from ml.reports.monitoring_page import write_monitoring_report
from ml.reports.page import Report, render
from ml.reports.reading import as_bool, missing_columns, open_read_only
from ml.reports.segments_page import write_segments_report

DEFAULT_OUTPUT = PROJECT_ROOT / "reports"
_METHODS = {
    "KMeans": "k-means",
    "MiniBatchKMeans": "k-means",
    "GaussianMixture": "A Gaussian mixture",
}
#: The columns of the index's table of models.
_COLUMNS = ["task", "problem", "model", "metric", "test", "oracle", "test / oracle", "run_id",
            "deployment", "latest champion"]  # fmt: skip
_SEGMENTATION_COLUMNS = ["k", "algorithm", "criterion", "silhouette", "adjusted_rand_index",
                         "ari_ceiling", "n_customers", "run_id"]  # fmt: skip


@dataclass
class Written:
    """What `write_reports` wrote: the index, the pages it links, the parts it could not write."""

    index: Path
    pages: list[tuple[str, str, str, int]] = field(default_factory=list)  # href, label, text, plots
    missing: list[tuple[str, str]] = field(default_factory=list)  # label, reason

    @property
    def plots(self) -> int:
        return sum(p[3] for p in self.pages)


def _model_row(runs: pd.DataFrame, task: str, run_id: str, model: str | None) -> pd.Series | None:
    """The `ml.model_runs` row of `model` of a run (None: the run's champion), if still there."""
    mine = runs[(runs["task"].astype(str) == task) & (runs["run_id"].astype(str) == run_id)]
    chosen = mine["model_name"].astype(str) == model if model else as_bool(mine["is_champion"])
    mine = mine[chosen]
    return mine.iloc[0] if len(mine) else None


def _scores(r: pd.Series | None) -> dict[str, object]:
    """The problem, primary metric, test score and oracle of a registry row (blank when None)."""
    if r is None:
        return {"problem": "", "metric": "", "test": math.nan, "oracle": math.nan,
                "test / oracle": math.nan}  # fmt: skip
    metric = r["primary_metric"]
    test, oracle = r.get(f"test_{metric}"), r.get(f"oracle_{metric}")
    has_oracle = oracle is not None and not pd.isna(oracle) and oracle != 0
    return {
        "problem": r["problem"],
        "metric": metric,
        "test": test,
        "oracle": oracle if has_oracle else math.nan,
        "test / oracle": test / oracle if has_oracle else math.nan,
    }


def _current_deployments(wh: Warehouse) -> tuple[pd.DataFrame | None, str]:
    """(each task's current deployment (its highest deployment_id), indexed by task, ""), or
    (None, why not) when ml.deployments is absent or lacks a needed column."""
    if not wh.exists(DEPLOYMENTS):
        return None, f"{DEPLOYMENTS} not found (the warehouse predates model governance)"
    absent = missing_columns(wh, DEPLOYMENTS, DEPLOYMENT_COLUMNS)
    if absent:
        return None, f"{DEPLOYMENTS} has no column {absent[0]!r}"
    rows = wh.read_frame(DEPLOYMENTS)
    rows = rows.assign(
        task=rows["task"].astype(str),
        deployment_id=pd.to_numeric(rows["deployment_id"], errors="coerce"),
    ).dropna(subset=["deployment_id"])
    rows = rows.sort_values(["task", "deployment_id"], kind="stable")
    return rows.groupby("task", sort=True).tail(1).set_index("task"), ""


def _task_entry(
    runs: pd.DataFrame, task: str, latest_run: str | None, deployed: pd.Series | None
) -> dict[str, object]:
    """A task's row of the index: its deployed model, else its latest champion."""
    newest = _model_row(runs, task, latest_run, None) if latest_run is not None else None
    if deployed is None:
        return {"task": task, **_scores(newest), "model": newest["model_name"],
                "run_id": latest_run, "deployment": "none recorded: the latest champion",
                "latest champion": ""}  # fmt: skip
    run_id, model = str(deployed["run_id"]), str(deployed["model_name"])
    status = ""
    if newest is not None:
        same = latest_run == run_id and str(newest["model_name"]) == model
        status = "deployed" if same else f"{newest['model_name']} of run {latest_run}: not deployed"
    when = pd.to_datetime(deployed["deployed_at"], errors="coerce")
    return {
        "task": task,
        **_scores(_model_row(runs, task, run_id, model)),
        "model": model,
        "run_id": run_id,
        "deployment": f"{int(deployed['deployment_id'])} by {deployed['command']}"
        + ("" if pd.isna(when) else f", {when:%Y-%m-%d %H:%M} UTC"),
        "latest champion": status,
    }


def champions(wh: Warehouse) -> tuple[pd.DataFrame, str]:
    """The model that serves each task, with its primary metric on its run's held-out test rows
    and the oracle's: its current deployment (`ml.deployments`), with whether the latest run's
    champion is that model; a task without a deployment shows its latest champion. When the
    table is absent, every task's latest champion, and a note saying so (else the note is "")."""
    if not wh.exists(MODEL_RUNS):
        return pd.DataFrame(), ""
    runs = wh.read_frame(MODEL_RUNS)
    latest = latest_runs(runs)
    current, reason = _current_deployments(wh)
    if current is None:
        rows = [_task_entry(runs, task, run_id, None) for task, run_id in latest.items()]
        note = (
            f"{reason}: each task's latest champion is shown, which may not be the model that "
            "serves it."
        )
        return pd.DataFrame(rows, columns=_COLUMNS).drop(columns=_COLUMNS[-2:]), note
    rows = [
        _task_entry(runs, task, latest.get(task),
                    current.loc[task] if task in current.index else None)
        for task in sorted(set(latest) | set(current.index))
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=_COLUMNS), ""


def segmentation(wh: Warehouse) -> pd.DataFrame:
    """The chosen clustering of the latest segmentation run (one row, or none); runs of older
    versions have no `algorithm` (k-means) or `criterion` (silhouette) and no `ari_ceiling`."""
    if not wh.exists(SEGMENTATION_RUNS):
        return pd.DataFrame()
    runs = wh.read_frame(SEGMENTATION_RUNS)
    chosen = runs[as_bool(runs["is_chosen"])].sort_values(["created_at", "run_id"], kind="stable")
    latest = chosen.tail(1).reset_index(drop=True)
    for column, old in (
        ("algorithm", "KMeans"),
        ("criterion", "silhouette"),
        ("ari_ceiling", None),
    ):
        if column not in latest:
            latest[column] = old
    return latest[_SEGMENTATION_COLUMNS]


def index_report(
    pages: list[tuple[str, str, str, int]],
    missing: list[tuple[str, str]],
    best: pd.DataFrame,
    segments: pd.DataFrame,
    best_note: str = "",
) -> Report:
    """The index page: links to `pages` (href, label, description, plots), what is missing, and
    the headline numbers; `best`, `best_note`: `champions`."""
    total = sum(p[3] for p in pages)
    report = Report(
        "Predictive analytics warehouse: reports",
        subtitle=f"{len(pages)} pages, {total} plots. Static pages: open them from disk.",
    )
    sec = report.section("Pages")
    sec.add_links([(href, label, f"{text} ({n} plots)") for href, label, text, n in pages])
    for label, reason in missing:
        sec.add_note(f"{label}: not available ({reason})")
    if not best.empty:
        scores = (
            "primary metric on the held-out test rows of its run and the same metric of the "
            "simulator's noise-free truth (the best any model could reach) where the task has one"
        )
        if best_note:
            sec = report.section("Champions")
            sec.add_note(best_note)
            sec.add_table(best, caption=f"The latest champion of every task: {scores}.")
        else:
            sec = report.section("Deployed models")
            sec.add_table(
                best,
                caption=f"The model that serves each task, its current deployment in "
                f"{DEPLOYMENTS} (by id, command and time), whether the latest run's champion is "
                f"that model, and its {scores}. A task with no deployment recorded shows its "
                "latest champion.",
            )
    if not segments.empty:
        s = segments.iloc[0]
        sec = report.section("Segments")
        ari, ceiling = s["adjusted_rand_index"], s["ari_ceiling"]
        ari_text = "" if pd.isna(ari) else (
            f"; adjusted Rand index against the simulator's personas {ari:.3f} "
            "(0 = chance agreement, 1 = the personas recovered exactly)"
        )  # fmt: skip
        if not pd.isna(ari) and not pd.isna(ceiling):
            ari_text += f", against {ceiling:.3f} for a classifier told the personas"
        method = _METHODS.get(str(s["algorithm"]), str(s["algorithm"]))
        sec.add_text(
            f"{method} with k = {int(s['k'])}, chosen by {s['criterion']}, for "
            f"{int(s['n_customers']):,} customers (silhouette {s['silhouette']:.3f}){ari_text}."
        )
    return report


def write_reports(
    out: str | Path = DEFAULT_OUTPUT,
    *,
    on_page: Callable[[Path, int], None] | None = None,
    path: str | Path | None = None,
) -> Written:
    """Write every page into `out` and `out/index.html` linking them; `on_page(page, plots)` is
    called as each page is written. Raises `UserError` when the warehouse cannot be read or the
    EDA page or the index cannot be written."""
    out = Path(out)
    pages: list[tuple[str, str, str, int]] = []
    missing: list[tuple[str, str]] = []

    def written(page: Path, n_plots: int, label: str, text: str) -> None:
        pages.append((page.relative_to(out).as_posix(), label, text, n_plots))
        if on_page is not None:
            on_page(page, n_plots)

    with open_read_only(path) as wh:
        data = collect_eda(wh)
        (best, best_note), segments = champions(wh), segmentation(wh)
    report = build_eda_report(data)
    written(
        render(report, out / "eda"),
        len(report.figures),
        "Exploratory data analysis",
        "distributions, missing values, correlations, satisfaction and default rates, "
        "rejected rows",
    )
    try:
        for page, n_plots in write_model_reports(out / "models", path=path):
            written(page, n_plots, f"Model report: {page.stem}", "leaderboard, evaluation "
                    "curves, calibration, SHAP explanations")  # fmt: skip
    except UserError as err:
        missing.append(("Model reports", str(err)))
    try:
        page, n_plots = write_segments_report(out, path=path)
        written(
            page,
            n_plots,
            "Customer segments",
            "method and k by stability, profiles, projection, rules",
        )
    except UserError as err:
        missing.append(("Segment report", str(err)))
    try:
        page, n_plots = write_monitoring_report(out, path=path)
        written(page, n_plots, "Monitoring", "drift (PSI) of features and scores and realised "
                "performance, per batch")  # fmt: skip
    except UserError as err:
        missing.append(("Monitoring", str(err)))
    index = render(index_report(pages, missing, best, segments, best_note), out)
    return Written(index=index, pages=pages, missing=missing)
