"""Every report, and `reports/index.html` linking them: `python -m scripts.report`.

    python -m scripts.report                    # reports/ in the repository
    python -m scripts.report --output /tmp/r    # somewhere else

Writes `eda/index.html` (scripts.eda), `models/<task>.html` for every trained task
(scripts.report_models), `segments.html` (scripts.report_segments) and `index.html`, a page that
links them and summarises the champions and the segmentation. A part whose data is missing (no
model trained yet, no segmentation) is listed on the index as not available, with the command
that produces it; the other parts are still written. Static HTML, plots embedded: open
index.html in a browser, no server needed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pandas as pd

from ml import warehouse
from ml.cli import ArgumentParser, run
from ml.errors import UserError
from scripts import eda, report_models, report_segments
from scripts.report_html import Report, render

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "reports"


def champions(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The latest champion of every task with its primary metric on test data and the oracle's."""
    if not warehouse.relation_exists(con, "ml.model_runs"):
        return pd.DataFrame()
    runs = con.execute(
        """
        select *
        from ml.model_runs
        where is_champion
        qualify row_number() over (partition by task order by trained_at desc, run_id desc) = 1
        order by task
        """
    ).df()
    rows = []
    for _, r in runs.iterrows():
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


def segmentation(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The chosen clustering of the latest segmentation run."""
    if not warehouse.relation_exists(con, "ml.segmentation_runs"):
        return pd.DataFrame()
    return con.execute(
        """
        select k, silhouette, adjusted_rand_index, n_customers, run_id
        from ml.segmentation_runs
        where is_chosen
        order by created_at desc, run_id desc
        limit 1
        """
    ).df()


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
        ari = s["adjusted_rand_index"]
        ari_text = "" if pd.isna(ari) else (
            f"; adjusted Rand index against the simulator's personas {ari:.3f} "
            "(0 = chance agreement, 1 = the personas recovered exactly)"
        )  # fmt: skip
        sec.add_text(
            f"k-means chose k = {int(s['k'])} segments for {int(s['n_customers']):,} customers "
            f"(silhouette {s['silhouette']:.3f}){ari_text}."
        )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write every report and the index; print one line per page."""
    parser = ArgumentParser(prog="python -m scripts.report", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="DIR",
        help="folder of the reports (default: reports/ in the repository)",
    )
    args = parser.parse_args(argv)
    out: Path = args.output
    start = time.monotonic()
    pages: list[tuple[str, str, str, int]] = []
    missing: list[tuple[str, str]] = []

    def written(path: Path, n_plots: int, label: str, text: str) -> None:
        pages.append((path.relative_to(out).as_posix(), label, text, n_plots))
        print(f"{path}: {n_plots} plots")

    try:
        with warehouse.session(read_only=True) as con:
            data = eda.collect_eda(con)
            best, segments = champions(con), segmentation(con)
        report = eda.build_report(data)
        written(
            render(report, out / "eda"),
            len(report.figures),
            "Exploratory data analysis",
            "distributions, missing values, correlations, satisfaction and default rates, "
            "rejected rows",
        )
        try:
            for path, n_plots in report_models.write_model_reports(out / "models"):
                written(path, n_plots, f"Model report: {path.stem}", "leaderboard, evaluation "
                        "curves, calibration, SHAP explanations")  # fmt: skip
        except UserError as err:
            missing.append(("Model reports", str(err)))
        try:
            path, n_plots = report_segments.write_segments_report(out)
            written(path, n_plots, "Customer segments", "k by silhouette, profiles, projection, "
                    "rules")  # fmt: skip
        except UserError as err:
            missing.append(("Segment report", str(err)))
        index = render(index_report(pages, missing, best, segments), out)
    except OSError as err:
        raise UserError(f"cannot write the reports to {out}: {err.strerror or err}") from None
    for label, reason in missing:
        print(f"not written: {label} ({reason})")
    total = sum(p[3] for p in pages)
    print(f"{index}: {len(pages)} pages, {total} plots ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    run(main, "scripts.report")
