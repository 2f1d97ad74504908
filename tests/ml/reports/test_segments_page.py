"""The segments page: titled plots of the latest ml.segment run, drawn from the tables it
writes, with notes for the missing parts."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.core.errors import UserError
from ml.core.tables import (
    CUSTOMER_SEGMENTS,
    NO_ORDERS_SEGMENT,
    SEGMENT_PROJECTION,
    SEGMENTATION_RUNS,
)
from ml.reports import segments_page
from ml.reports.page import render
from ml.reports.reading import open_read_only
from ml.reports.segments_data import (
    UNKNOWN_PERSONA,
    collect_segments,
    contingency,
    latest_run,
    zscores_frame,
)
from tests.conftest import run_dbt, run_python
from tests.ml.reports import synthetic
from tests.ml.reports.pages import alts, images

TITLES = (
    "Stability by k",
    "Silhouette by k",
    "Inertia by k (elbow)",
    "Adjusted Rand index vs. true personas by k",
    "Segment sizes",
    "Standardised mean behaviour per segment",
    "PCA projection coloured by segment",
    "PCA projection coloured by true persona",
    "Segments vs. true personas",
)


# --------------------------------------------------------------------------------------------
# pure helpers


def _runs(run_id: str, created: str, chosen_k: int, ari: list[float | None]) -> pd.DataFrame:
    return synthetic.segmentation_runs(run_id, created, chosen_k, ari).assign(
        silhouette=[0.30, 0.25, 0.20]
    )


def test_latest_run_is_the_newest_by_created_at() -> None:
    old = _runs("z-old", "2024-01-01", 3, [0.1, 0.2, 0.3])
    new = _runs("a-new", "2024-06-01", 2, [0.1, 0.2, 0.3])
    rows = latest_run(pd.concat([new.iloc[::-1], old], ignore_index=True))
    assert set(rows["run_id"]) == {"a-new"}
    assert rows["k"].tolist() == [2, 3, 4]
    assert rows.loc[rows["is_chosen"], "k"].tolist() == [2]
    with pytest.raises(UserError, match="empty"):
        latest_run(new.iloc[0:0])
    with pytest.raises(UserError, match="no single chosen k"):
        latest_run(new.assign(is_chosen=False))


def test_headline_explains_the_choice_and_the_adjusted_rand_index() -> None:
    runs = _runs("r", "2024-01-01", 2, [0.02, 0.6, 0.3])
    runs["explanation_accuracy"] = [0.9, np.nan, np.nan]
    text = segments_page.headline(runs)
    assert text.startswith(
        "Chosen KMeans, k = 2 (candidates: KMeans with k 2..4): the most stable segmentation"
        " (stability 0.950"
    )
    assert "no truth is used" in text
    assert "personas: 0.020 (no better than chance; 0 = chance agreement, 1 = perfect" in text
    assert "perfect recovery of the personas, negative = worse than chance), 2% of the" in text
    assert "supervised ceiling 0.800 (a classifier told the personas" in text
    assert "recovered best by KMeans at k = 3 (adjusted Rand 0.600)" in text
    assert "90.0% of customers" in text
    byo = segments_page.headline(_runs("r", "2024-01-01", 2, [None, None, None]))
    assert "Adjusted Rand index: not available" in byo
    assert "recovered best" not in byo and "ceiling" not in byo
    older = synthetic.segmentation_runs("r", "2024-01-01", 2, [0.1, 0.2, 0.3], stability=False)
    old_text = segments_page.headline(latest_run(older))
    assert old_text.startswith("Chosen KMeans, k = 2 (candidates: KMeans with k 2..4): the best")
    assert "silhouette (0.300" in old_text and "ceiling" not in old_text
    assert [segments_page.ari_meaning(v) for v in (None, -0.1, 0.1, 0.3, 0.7, 0.95)] == [
        "not available",
        "no better than chance",
        "weak agreement",
        "moderate agreement",
        "strong agreement",
        "near-perfect recovery",
    ]


def test_contingency_counts_segments_by_persona() -> None:
    segments = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "segment": ["big", "big", "small", "no orders yet", "big", "small"],
            "cluster_id": [0, 0, 1, 2, 0, 1],
        }
    )
    truth = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "persona": ["a", "b", "a", "a", "a"]})
    table = contingency(segments, truth)
    assert table.index.tolist() == ["big", "small", "no orders yet"]  # by cluster_id
    assert table.columns.tolist() == ["a", "b", UNKNOWN_PERSONA]  # by size, unknown last
    assert table.loc["big"].tolist() == [2, 1, 0]
    assert table.loc["small"].tolist() == [1, 0, 1]
    assert int(table.to_numpy().sum()) == len(segments)


def test_zscores_frame_keeps_the_cluster_and_feature_order() -> None:
    stored = [
        {"segment": "b", "zscores": {"y": 1.0, "x": -1.0}},
        {"segment": "a", "zscores": {"y": 0.5, "x": 2.0}},
    ]
    frame = zscores_frame(stored)
    assert frame.index.tolist() == ["b", "a"] and frame.columns.tolist() == ["y", "x"]
    assert frame.loc["a", "x"] == 2.0
    assert zscores_frame(None) is None and zscores_frame([{"segment": "a"}]) is None


# --------------------------------------------------------------------------------------------
# the stored tables (synthetic warehouse)


def _stored(tmp_path: Path, **changes: pd.DataFrame | None) -> Path:
    tables = {**synthetic.segmented(), **changes}
    return synthetic.write(
        tmp_path / "w.duckdb", {k: v for k, v in tables.items() if v is not None}
    )


def test_page_of_a_full_run(tmp_path: Path) -> None:
    path = _stored(tmp_path)
    page, n_plots = segments_page.write_segments_report(tmp_path / "out", path=path)
    assert page == tmp_path / "out" / "segments.html"
    text = page.read_text(encoding="utf-8")
    titles = alts(text)
    assert n_plots == len(titles) == len(set(titles)) == len(TITLES)
    assert set(titles) == set(TITLES)
    assert len({img["src"] for img in images(text)}) == n_plots, "some plots are identical"
    assert "Skipped" not in text
    assert "Chosen KMeans, k = 3 (candidates: KMeans with k 2..4)" in html.unescape(text)
    assert "of the supervised ceiling 0.800" in html.unescape(text)
    rules = str(synthetic.segmentation_runs().loc[1, "explanation_rules"])
    assert re.findall(r"<pre\b[^>]*>(.*?)</pre>", text, flags=re.S) == [html.escape(rules)]
    candidates = text.split("Candidates of run", 1)[1].split("</table>", 1)[0]
    assert candidates.count("<tr>") == 1 + 3  # header + k = 2, 3, 4
    assert "<th class=num>mean_income</th>" in text
    assert "on the 270 clustered customers" in text


def test_max_points_draws_a_seeded_subsample_of_the_stored_points(tmp_path: Path) -> None:
    path = _stored(tmp_path)
    with open_read_only(path) as wh:
        a = collect_segments(wh, max_points=100, seed=3)
        b = collect_segments(wh, max_points=100, seed=3)
        c = collect_segments(wh, max_points=100, seed=4)
    points = a.projection.points
    assert len(points) == 100 and a.projection.n_clustered == 270
    assert list(points.columns) == ["customer_id", "cluster_id", "segment", "pc1", "pc2"]
    assert (points["segment"] != NO_ORDERS_SEGMENT).all()
    assert points["customer_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(points, b.projection.points)  # seeded
    assert not points["customer_id"].equals(c.projection.points["customer_id"])
    assert a.projection.explained == (0.6, 0.3)
    assert a.zscores.index.tolist() == list(synthetic.SEGMENTS)
    report = segments_page.build_report(a)
    pd.testing.assert_frame_equal(report.data["projection"], points)


def test_a_run_of_an_older_version_skips_the_projection_with_notes(tmp_path: Path) -> None:
    path = _stored(
        tmp_path,
        **{SEGMENTATION_RUNS: synthetic.segmentation_runs(stored=False), SEGMENT_PROJECTION: None},
    )
    with open_read_only(path) as wh:
        report = segments_page.build_report(collect_segments(wh))
    titles = {f.title for f in report.figures}
    assert "Standardised mean behaviour per segment" not in titles
    assert "PCA projection coloured by segment" not in titles
    assert {"Segment sizes", "Segments vs. true personas", "Silhouette by k"} <= titles
    assert "Stability by k" in titles
    notes = " ".join(report.notes)
    assert "Skipped the standardised behaviour: run s1 was segmented by an older version" in notes
    assert "Skipped the projection: run s1 was segmented by an older version" in notes


def test_a_missing_projection_table_is_skipped_with_a_note(tmp_path: Path) -> None:
    path = _stored(tmp_path, **{SEGMENT_PROJECTION: None})
    with open_read_only(path) as wh:
        report = segments_page.build_report(collect_segments(wh))
    titles = {f.title for f in report.figures}
    assert "Standardised mean behaviour per segment" in titles  # from ml.segmentation_runs
    assert "PCA projection coloured by segment" not in titles
    assert "Skipped the projection: ml.segment_projection not found in the warehouse" in (
        " ".join(report.notes)
    )


def test_without_truth_or_profiles_the_parts_are_skipped(tmp_path: Path) -> None:
    path = _stored(tmp_path, **{"sim.customer_truth": None, "marts.segment_profiles": None})
    with open_read_only(path) as wh:
        report = segments_page.build_report(collect_segments(wh, max_points=300, seed=3))
    page = render(report, tmp_path / "out", filename="segments.html").read_text(encoding="utf-8")
    assert "Skipped the profile table: marts.segment_profiles not found" in page
    assert "Skipped the comparison with true personas: sim.customer_truth not found" in page
    titles = set(alts(page))
    assert "PCA projection coloured by segment" in titles
    assert "PCA projection coloured by true persona" not in titles
    assert "Segments vs. true personas" not in titles
    assert len(titles) == 7


def test_segments_of_another_run_and_no_segmentation_are_user_errors(tmp_path: Path) -> None:
    path = _stored(tmp_path, **{CUSTOMER_SEGMENTS: synthetic.customer_segments("older-run")})
    with (
        open_read_only(path) as wh,
        pytest.raises(UserError, match="holds run older-run, not the latest run s1"),
    ):
        collect_segments(wh)
    empty = synthetic.write(tmp_path / "e.duckdb", {"main.x": pd.DataFrame({"a": [1]})})
    with pytest.raises(UserError, match="ml.segmentation_runs not found in the warehouse"):
        segments_page.write_segments_report(tmp_path / "out", path=empty)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# after a real ml.segment on the tiny warehouse


@pytest.fixture(scope="module")
def segmented(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the built warehouse after ml.segment (k 2..4), its dbt mart and the page."""
    workdir = tmp_path_factory.mktemp("report_segments")
    path = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    run_python("ml.segment", "--k-min", "2", "--k-max", "4", warehouse=path)
    run_dbt("build", "--select", "source:ml_segmentation+", warehouse=path, workdir=workdir)
    page, n_plots = segments_page.write_segments_report(workdir / "reports", path=path)
    with open_read_only(path) as wh:
        chosen = wh.query(
            "select algorithm, k, adjusted_rand_index, ari_ceiling, explanation_rules,"
            " explanation_accuracy"
            " from ml.segmentation_runs where is_chosen"
        ).iloc[0]
    return {"page": page.read_text(encoding="utf-8"), "plots": n_plots, "chosen": chosen}


@pytest.mark.slow
def test_real_run_page_has_every_titled_plot(segmented) -> None:
    page = segmented["page"]
    imgs = images(page)
    assert len(imgs) == segmented["plots"]
    assert len({img["src"] for img in imgs}) == len(imgs), "some plots are identical"
    assert all(img["src"].startswith("data:image/png;base64,") for img in imgs)
    captions = re.findall(r"<figcaption><b>([^<]+)</b>", page)
    assert [img["alt"] for img in imgs] == captions
    assert set(alts(page)) == set(TITLES)
    assert not re.search(r"https?://", page.lower())
    assert "<script" not in page.lower() and "<link" not in page.lower()


@pytest.mark.slow
def test_real_run_headline_rules_and_tables(segmented) -> None:
    page, chosen = segmented["page"], segmented["chosen"]
    text = html.unescape(page)
    assert f"{chosen['algorithm']}, k = {int(chosen['k'])} (candidates:" in text
    assert "with k 2..4): the most stable segmentation" in text
    assert f"personas: {chosen['adjusted_rand_index']:.3f}" in text
    assert f"of the supervised ceiling {chosen['ari_ceiling']:.3f}" in text
    assert "0 = chance agreement, 1 = perfect recovery" in text
    assert f"{chosen['explanation_accuracy']:.1%}" in text
    assert "Skipped" not in page  # the warehouse holds every table the page reads
    rules = str(chosen["explanation_rules"]).rstrip()
    assert "<=" in rules
    assert re.findall(r"<pre\b[^>]*>(.*?)</pre>", page, flags=re.S) == [html.escape(rules)]
    assert "marts.segment_profiles: size and mean" in page
    assert "<th class=num>mean_income</th>" in page
    assert "no orders yet" in page
    candidates = page.split("Candidates of run", 1)[1].split("</table>", 1)[0]
    assert candidates.count("<tr>") == 1 + 2 * 3  # header + (KMeans, GaussianMixture) x k 2..4
