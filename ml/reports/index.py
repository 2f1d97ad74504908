"""Every report, and the index page linking them: the EDA page, a page per trained task, the
segments page, the monitoring page, and `index.html` with the champions and the chosen segmentation.

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
from ml.core.tables import MODEL_RUNS, SEGMENTATION_RUNS
from ml.core.warehouse import Warehouse
from ml.reports.eda_data import collect_eda
from ml.reports.eda_page import build_report as build_eda_report
from ml.reports.model_data import latest_runs
from ml.reports.model_page import write_model_reports
from ml.reports.monitoring_page import write_monitoring_report
from ml.reports.page import Report, render
from ml.reports.reading import as_bool, open_read_only
from ml.reports.segments_page import write_segments_report

DEFAULT_OUTPUT = PROJECT_ROOT / "reports"
_METHODS = {
    "KMeans": "k-means",
    "MiniBatchKMeans": "k-means",
    "GaussianMixture": "A Gaussian mixture",
}
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


def champions(wh: Warehouse) -> pd.DataFrame:
    """The latest champion of every task with its primary metric on test data and the oracle's."""
    if not wh.exists(MODEL_RUNS):
        return pd.DataFrame()
    runs = wh.read_frame(MODEL_RUNS)
    latest = latest_runs(runs)
    rows = []
    for task, run_id in latest.items():
        mine = runs[(runs["task"] == task) & (runs["run_id"] == run_id)]
        r = mine[as_bool(mine["is_champion"])].iloc[0]
        metric = r["primary_metric"]
        test, oracle = r.get(f"test_{metric}"), r.get(f"oracle_{metric}")
        has_oracle = oracle is not None and not pd.isna(oracle) and oracle != 0
        rows.append(
            {
                "task": r["task"],
                "problem": r["problem"],
                "champion": r["model_name"],
                "metric": metric,
                "test": test,
                "oracle": oracle if has_oracle else math.nan,
                "test / oracle": test / oracle if has_oracle else math.nan,
                "run_id": r["run_id"],
            }
        )
    return pd.DataFrame(rows)


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
) -> Report:
    """The index page: links to `pages` (href, label, description, plots), what is missing, and
    the headline numbers."""
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
        sec = report.section("Champions")
        sec.add_table(
            best,
            caption="The latest champion of every task: primary metric on the held-out test rows "
            "and the same metric of the simulator's noise-free truth (the best any model "
            "could reach) where the task has one.",
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
        best, segments = champions(wh), segmentation(wh)
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
    index = render(index_report(pages, missing, best, segments), out)
    return Written(index=index, pages=pages, missing=missing)
