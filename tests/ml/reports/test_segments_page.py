"""The segmentation report: titled plots of the latest ml.segment run, notes for missing parts."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml import segment, warehouse
from ml.cli import run
from ml.errors import UserError
from scripts import report_segments as rs
from scripts.report_html import render
from tests.conftest import run_dbt, run_python

_IMG = re.compile(r"<img\b[^>]*>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def _images(page: str) -> list[dict[str, str]]:
    return [dict(_ATTR.findall(tag)) for tag in _IMG.findall(page)]


@pytest.fixture(scope="module")
def segmented(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the built warehouse after ml.segment (k 2..4), its dbt mart and the report CLI."""
    workdir = tmp_path_factory.mktemp("report_segments")
    path = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    # in-process, like tests/ml/test_segment.py: a `python -m ml.segment` subprocess would add
    # seconds of imports, and that CLI is tested there
    segment.run_segmentation(k_min=2, k_max=4, path=path)
    run_dbt("build", "--select", "source:ml_segmentation+", warehouse=path, workdir=workdir)
    out = workdir / "reports"
    proc = run_python("scripts.report_segments", "--output", str(out), warehouse=path)
    with warehouse.session(path, read_only=True) as con:
        chosen = con.execute(
            "select k, adjusted_rand_index, explanation_rules, explanation_accuracy"
            " from ml.segmentation_runs where is_chosen"
        ).df()
    page = out / "segments.html"
    return {"warehouse": path, "proc": proc, "page": page, "chosen": chosen.iloc[0]}


def _page(segmented: dict) -> str:
    return segmented["page"].read_text(encoding="utf-8")


def test_cli_writes_the_page_and_prints_one_line(segmented) -> None:
    page = segmented["page"]
    assert page.is_file()
    lines = segmented["proc"].stdout.strip().splitlines()
    assert len(lines) == 1
    n = len(_images(_page(segmented)))
    assert lines[0] == f"wrote {page} ({n} plots)"


def test_page_has_distinct_titled_embedded_plots(segmented) -> None:
    page = _page(segmented)
    images = _images(page)
    assert len(images) >= 6
    assert len({img["src"] for img in images}) == len(images), "some plots are identical"
    assert all(img["src"].startswith("data:image/png;base64,") for img in images)
    assert all(img.get("alt", "").strip() for img in images), "a plot without a title"
    captions = re.findall(r"<figcaption><b>([^<]+)</b>", page)
    assert [img["alt"] for img in images] == captions
    alts = {html.unescape(img["alt"]) for img in images}
    for title in (
        "Silhouette by k",
        "Inertia by k (elbow)",
        "Adjusted Rand index vs. true personas by k",
        "Segment sizes",
        "Standardised mean behaviour per segment",
        "PCA projection coloured by segment",
        "PCA projection coloured by true persona",
        "Segments vs. true personas",
    ):
        assert title in alts


def test_headline_names_the_chosen_k_and_the_adjusted_rand_index(segmented) -> None:
    page = html.unescape(_page(segmented))
    chosen = segmented["chosen"]
    assert f"Chosen k = {int(chosen['k'])} (candidates 2..4)" in page
    assert f"personas: {chosen['adjusted_rand_index']:.3f}" in page
    assert "0 = chance agreement, 1 = perfect recovery" in page
    assert f"{chosen['explanation_accuracy']:.1%}" in page
    assert "Skipped" not in page  # the warehouse holds every table the report reads


def test_rules_are_preformatted_and_escaped(segmented) -> None:
    page = _page(segmented)
    rules = str(segmented["chosen"]["explanation_rules"]).rstrip()
    assert "<=" in rules
    blocks = re.findall(r"<pre\b[^>]*>(.*?)</pre>", page, flags=re.S)
    assert blocks == [html.escape(rules)]


def test_profiles_table_and_candidates_table(segmented) -> None:
    page = _page(segmented)
    assert "marts.segment_profiles: size and mean" in page
    assert "<th class=num>mean_income</th>" in page
    assert "no orders yet" in page
    candidates = page.split("Candidates of run", 1)[1].split("</table>", 1)[0]
    assert candidates.count("<tr>") == 1 + 3  # header + k = 2, 3, 4


def test_page_is_static_and_offline(segmented) -> None:
    page = _page(segmented).lower()
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<link" not in page


def test_missing_segmentation_is_one_line_exit_2(
    built_warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """In-process through the CLI's error boundary (a subprocess costs seconds of imports)."""
    monkeypatch.setenv("WAREHOUSE_PATH", str(built_warehouse))
    out = tmp_path / "reports"
    with pytest.raises(SystemExit) as exit_info:
        run(rs.main, "scripts.report_segments", ["--output", str(out)])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (
        "scripts.report_segments: error: ml.segmentation_runs not found in the warehouse:"
        " run `python -m ml.segment` first"
    )
    assert not out.exists()


def test_without_truth_or_profiles_the_parts_are_skipped(segmented, tmp_path: Path) -> None:
    path = tmp_path / "byo.duckdb"
    shutil.copy(segmented["warehouse"], path)
    with warehouse.session(path) as con:
        con.execute("drop table sim.customer_truth")
        con.execute("drop table marts.segment_profiles")
    with warehouse.session(path, read_only=True) as con:
        report = rs.build_segments_report(con, max_points=300, seed=3)
        again = rs.collect_segments(con, max_points=300, seed=3)
    page = render(report, tmp_path / "out", filename="segments.html").read_text(encoding="utf-8")
    assert "Skipped the profile table: marts.segment_profiles not found" in page
    assert "Skipped the comparison with true personas: sim.customer_truth not found" in page
    alts = {html.unescape(img["alt"]) for img in _images(page)}
    assert "PCA projection coloured by segment" in alts
    assert "PCA projection coloured by true persona" not in alts
    assert "Segments vs. true personas" not in alts
    assert len(alts) >= 5
    points = report.data["projection"]
    assert len(points) == 300  # a bounded sample of the clustered customers ...
    assert (points["segment"] != rs.NO_ORDERS_SEGMENT).all()  # ... without the no-orders ones
    repeat = rs.project(again.behaviour, again.features, 300, 3).points
    pd.testing.assert_frame_equal(points, repeat)  # seeded

    with warehouse.session(path) as con:
        con.execute("update ml.customer_segments set run_id = 'older-run'")
    with (
        warehouse.session(path, read_only=True) as con,
        pytest.raises(UserError, match="holds run older-run, not the latest run"),
    ):
        rs.collect_segments(con)


# --------------------------------------------------------------------------------------------
# pure helpers


def _runs(run_id: str, created: str, chosen_k: int, ari: list[float | None]) -> pd.DataFrame:
    ks = [2, 3, 4]
    return pd.DataFrame(
        {
            "run_id": run_id,
            "k": ks,
            "silhouette": [0.30, 0.25, 0.20],
            "inertia": [300.0, 200.0, 150.0],
            "is_chosen": [k == chosen_k for k in ks],
            "adjusted_rand_index": pd.Series(ari, dtype="float64"),
            "explanation_accuracy": [np.nan if k != chosen_k else 0.9 for k in ks],
            "created_at": pd.Timestamp(created),
        }
    )


def test_latest_run_is_the_newest_by_created_at() -> None:
    old = _runs("z-old", "2024-01-01", 3, [0.1, 0.2, 0.3])
    new = _runs("a-new", "2024-06-01", 2, [0.1, 0.2, 0.3])
    rows = rs.latest_run(pd.concat([new.iloc[::-1], old], ignore_index=True))
    assert set(rows["run_id"]) == {"a-new"}
    assert rows["k"].tolist() == [2, 3, 4]
    assert rows.loc[rows["is_chosen"], "k"].tolist() == [2]
    with pytest.raises(UserError, match="empty"):
        rs.latest_run(new.iloc[0:0])
    with pytest.raises(UserError, match="no single chosen k"):
        rs.latest_run(new.assign(is_chosen=False))


def test_headline_explains_the_adjusted_rand_index() -> None:
    text = rs.headline(_runs("r", "2024-01-01", 2, [0.02, 0.6, 0.3]))
    assert text.startswith("Chosen k = 2 (candidates 2..4): the best silhouette (0.300")
    assert "personas: 0.020 (no better than chance; 0 = chance agreement, 1 = perfect" in text
    assert "recovered best at k = 3 (adjusted Rand 0.600)" in text
    assert "90.0% of customers" in text
    byo = rs.headline(_runs("r", "2024-01-01", 2, [None, None, None]))
    assert "Adjusted Rand index: not available" in byo
    assert "recovered best" not in byo
    assert [rs.ari_meaning(v) for v in (None, -0.1, 0.1, 0.3, 0.7, 0.95)] == [
        "not available",
        "no better than chance",
        "weak agreement",
        "moderate agreement",
        "strong agreement",
        "near-perfect recovery",
    ]


def test_sample_rows_is_bounded_sorted_and_seeded() -> None:
    assert rs.sample_rows(5, 10, 0).tolist() == [0, 1, 2, 3, 4]
    a = rs.sample_rows(1000, 50, 1)
    assert len(a) == 50 and len(set(a)) == 50 and (np.diff(a) > 0).all()
    assert (a == rs.sample_rows(1000, 50, 1)).all()
    assert not (a == rs.sample_rows(1000, 50, 2)).all()


def test_contingency_counts_segments_by_persona() -> None:
    segments = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5, 6],
            "segment": ["big", "big", "small", "no orders yet", "big", "small"],
            "cluster_id": [0, 0, 1, 2, 0, 1],
        }
    )
    truth = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5], "persona": ["a", "b", "a", "a", "a"]})
    table = rs.contingency(segments, truth)
    assert table.index.tolist() == ["big", "small", "no orders yet"]  # by cluster_id
    assert table.columns.tolist() == ["a", "b", rs.UNKNOWN_PERSONA]  # by size, unknown last
    assert table.loc["big"].tolist() == [2, 1, 0]
    assert table.loc["small"].tolist() == [1, 0, 1]
    assert int(table.to_numpy().sum()) == len(segments)
