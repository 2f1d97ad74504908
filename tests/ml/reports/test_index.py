"""Every report and the index page linking them, with what could not be written."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from ml.core.tables import MODEL_RUNS
from ml.reports import index
from ml.reports.reading import open_read_only
from tests.ml.reports import synthetic

RAW = {"raw.customers": pd.DataFrame({"customer_id": [1, 2, 3], "age": [30, None, 50]})}


def test_writes_every_page_and_links_them(tmp_path: Path) -> None:
    path = synthetic.write(
        tmp_path / "w.duckdb",
        {**RAW, **synthetic.trained("binary", "roc_auc"), **synthetic.segmented()},
    )
    seen: list[tuple[Path, int]] = []
    out = tmp_path / "reports"
    done = index.write_reports(out, path=path, on_page=lambda p, n: seen.append((p, n)))
    assert [p for p, _ in seen] == [out / "eda" / "index.html", out / "models" / "t.html",
                                    out / "segments.html"]  # fmt: skip
    assert [href for href, *_ in done.pages] == ["eda/index.html", "models/t.html", "segments.html"]
    # no monitoring marts in this warehouse (no batch was monitored): listed, not fatal
    assert [label for label, _ in done.missing] == ["Monitoring"]
    assert done.plots == sum(n for _, n in seen)
    page = done.index.read_text(encoding="utf-8")
    assert done.index == out / "index.html"
    for href, label, _, n in done.pages:
        assert f'<a href="{href}">{label}</a>' in page and f"({n} plots)" in page
    assert "k-means with k = 3, chosen by stability, for 300 customers (silhouette 0.350)" in page
    assert "<td>voting</td>" in page


def test_missing_parts_are_listed_not_fatal(tmp_path: Path) -> None:
    path = synthetic.write(tmp_path / "w.duckdb", RAW)
    done = index.write_reports(tmp_path / "reports", path=path)
    assert [href for href, *_ in done.pages] == ["eda/index.html"]
    assert [label for label, _ in done.missing] == ["Model reports", "Segment report", "Monitoring"]
    assert "ml.model_runs not found" in done.missing[0][1]
    page = done.index.read_text(encoding="utf-8")
    assert "Model reports: not available (ml.model_runs not found" in page
    assert "Segment report: not available (ml.segmentation_runs not found" in page


def test_champions_are_each_tasks_latest(tmp_path: Path) -> None:
    old = synthetic.model_runs("binary", "roc_auc", run_id="r1", champion="tree")
    new = synthetic.model_runs("binary", "roc_auc", run_id="r2")
    new["oracle_roc_auc"] = 0.0  # no usable oracle
    other = synthetic.model_runs("regression", "r2", task="u", run_id="r0")
    runs = pd.concat([old.assign(trained_at=pd.Timestamp("2025-01-01")), new, other])
    path = synthetic.write(tmp_path / "w.duckdb", {MODEL_RUNS: runs})
    with open_read_only(path) as wh:
        best, note = index.champions(wh)
        assert index.segmentation(wh).empty
    assert note.startswith("ml.deployments not found")  # an older warehouse: no governance yet
    assert best["task"].tolist() == ["t", "u"]
    assert best["run_id"].tolist() == ["r2", "r0"]
    assert best["model"].tolist() == ["voting", "voting"]
    t = best.iloc[0]
    assert t["test"] == pytest.approx(0.74) and math.isnan(t["oracle"])
    u = best.iloc[1]
    assert u["test / oracle"] == pytest.approx(1.0)
