"""The report commands (`scripts.eda`, `scripts.report_models`, `scripts.report_segments`,
`scripts.report`): their options, the lines they print and their exit codes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from ml.core.cli import run
from scripts import eda, report, report_models, report_segments
from tests.conftest import run_python
from tests.ml.reports import synthetic
from tests.ml.reports.pages import images

RAW = {"raw.customers": pd.DataFrame({"customer_id": [1, 2, 3], "age": [30, None, 50]})}


def _cli(
    main: Callable, prog: str, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str], list[str]]:
    """Run a command in-process through its error boundary: exit code, stdout and stderr lines."""
    with pytest.raises(SystemExit) as exit_info:
        run(main, prog, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out.splitlines(), captured.err.splitlines()


def _plots(page: Path) -> int:
    return len(images(page.read_text(encoding="utf-8")))


@pytest.fixture()
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small warehouse with a trained task `t`, a segmentation and raw.customers."""
    path = synthetic.write(
        tmp_path / "w.duckdb",
        {**RAW, **synthetic.trained("binary", "roc_auc"), **synthetic.segmented()},
    )
    monkeypatch.setenv("WAREHOUSE_PATH", str(path))
    return path


@pytest.fixture()
def raw_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A warehouse with raw.customers only: nothing trained, nothing segmented."""
    path = synthetic.write(tmp_path / "raw.duckdb", RAW)
    monkeypatch.setenv("WAREHOUSE_PATH", str(path))
    return path


def test_eda_prints_one_line(warehouse: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "eda"
    argv = ["--output", str(out), "--sample-rows", "2", "--seed", "1", "--png-files"]
    code, lines, err = _cli(eda.main, "scripts.eda", argv, capsys)
    assert code == 0 and err == []
    (line,) = lines
    match = re.fullmatch(r"(.+): (\d+) plots \(\d+\.\d s\)", line)
    assert match and match.group(1) == str(out / "index.html")
    assert int(match.group(2)) == _plots(out / "index.html") == len(list(out.glob("figures/*")))


def test_eda_without_a_warehouse_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("WAREHOUSE_PATH", str(tmp_path / "absent.duckdb"))
    out = tmp_path / "report"
    code, lines, err = _cli(eda.main, "scripts.eda", ["--output", str(out)], capsys)
    assert code == 2 and lines == []
    (line,) = err
    assert line.startswith("scripts.eda: error: warehouse ") and "does not exist" in line
    assert not out.exists()


def test_report_models_prints_a_line_per_page(warehouse: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "models"
    argv = ["--output", str(out), "--task", "t", "--shap-rows", "0", "--seed", "2"]
    code, lines, err = _cli(report_models.main, "scripts.report_models", argv, capsys)
    assert code == 0 and err == []
    page = out / "t.html"
    assert lines == [f"wrote {page} ({_plots(page)} plots)"]
    assert "SHAP summary" not in page.read_text(encoding="utf-8")  # --shap-rows 0


def test_report_models_errors_are_one_line_exit_2(warehouse: Path, tmp_path: Path, capsys) -> None:
    code, lines, err = _cli(report_models.main, "scripts.report_models", ["--task", "nope"], capsys)
    assert code == 2 and lines == []
    assert err == [
        "scripts.report_models: error: task 'nope' has no trained champion in ml.model_runs"
        " (trained: t)"
    ]
    code, _, err = _cli(report_models.main, "scripts.report_models", ["--shap-rows", "-1"], capsys)
    assert code == 2 and len(err) == 1 and "--shap-rows" in err[0]


def test_report_models_with_nothing_trained(raw_only: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "models"
    code, lines, err = _cli(
        report_models.main, "scripts.report_models", ["--output", str(out)], capsys
    )
    assert code == 2 and lines == []
    (line,) = err
    assert "ml.model_runs not found" in line
    assert not out.exists()


def test_report_segments_prints_one_line(warehouse: Path, tmp_path: Path, capsys) -> None:
    argv = ["--output", str(tmp_path), "--max-points", "50", "--seed", "1"]
    code, lines, err = _cli(report_segments.main, "scripts.report_segments", argv, capsys)
    page = tmp_path / "segments.html"
    assert code == 0 and err == []
    assert lines == [f"wrote {page} ({_plots(page)} plots)"]


def test_missing_segmentation_is_one_line_exit_2(raw_only: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "reports"
    code, lines, err = _cli(
        report_segments.main, "scripts.report_segments", ["--output", str(out)], capsys
    )
    assert code == 2 and lines == []
    assert err == [
        "scripts.report_segments: error: ml.segmentation_runs not found in the warehouse:"
        " run `python -m ml.segment` first"
    ]
    assert not out.exists()


def test_report_lists_pages_and_what_was_not_written(
    raw_only: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "reports"
    code, lines, err = _cli(report.main, "scripts.report", ["--output", str(out)], capsys)
    assert code == 0 and err == []
    eda_page = out / "eda" / "index.html"
    n = _plots(eda_page)
    assert lines[0] == f"{eda_page}: {n} plots"
    assert lines[1].startswith("not written: Model reports (ml.model_runs not found")
    assert lines[2].startswith("not written: Segment report (ml.segmentation_runs not found")
    assert lines[3].startswith("not written: Monitoring (marts.monitoring_drift does not exist")
    assert re.fullmatch(rf"{re.escape(str(out / 'index.html'))}: 1 pages, {n} plots \(.+ s\)",
                        lines[4])  # fmt: skip
    assert len(lines) == 5


@pytest.mark.slow
def test_python_m_report_writes_every_page(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = run_python("scripts.report", "--output", str(out), warehouse=warehouse)
    lines = proc.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == [
        str(out / "eda" / "index.html"),
        str(out / "models" / "t.html"),
        str(out / "segments.html"),
    ]
    assert lines[3].startswith("not written: Monitoring (")
    assert lines[4].startswith(f"{out / 'index.html'}: 3 pages, ")
    assert len(lines) == 5


@pytest.mark.slow
def test_python_m_eda_on_the_built_warehouse(built_warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = run_python("scripts.eda", "--output", str(out), warehouse=built_warehouse)
    (line,) = proc.stdout.strip().splitlines()
    assert line.startswith(f"{out / 'index.html'}: ")
    n = int(re.search(r"(\d+) plots", line).group(1))
    assert n == _plots(out / "index.html") >= 12
