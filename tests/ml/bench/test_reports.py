"""ml.bench.reports and markdown: bench.json, bench.md and bench.png from a result."""

from __future__ import annotations

import json

from ml.bench.markdown import fmt, path_text
from ml.bench.reports import write_reports
from tests.ml.bench.fakes import fake_result, fake_run


def _scoring_run(path: str, reason: str | None, trees: dict[str, str]) -> dict:
    stages = {"read": 0.5, "prepare": 1.0, "predict": 2.0, "write": 0.3}
    return {
        "model_name": "xgboost",
        "model_class": "Pipeline",
        "stand_in": True,
        "rows": 1_000_000,
        "seconds": 4.0,
        "rows_per_s": 250_000.0,
        "rows_per_cpu_s": 150_000.0,
        "peak_rss_mb": 700.0,
        "rss_after_load_mb": 200.0,
        "load_s": 1.5,
        "scoring_path": path,
        "fallback_reason": reason,
        "compiled_trees": trees,
        "stats": {
            "stage_s": stages,
            "stage_cpu_s": stages,
            "estimator_s": {"xgboost": 2.0},
            "writer_s": 1.0,
        },
    }


def _result() -> dict:
    runs = {1_000_000: fake_run(1_000_000, 10.0, 1.0), 10_000_000: fake_run(10_000_000, 80.0, 9.0)}
    for run in runs.values():
        fast = _scoring_run("fast", None, {"xgboost": "compiled"})
        fast["generic"] = _scoring_run("generic", "fast path not requested", {})
        run["scoring"]["models"] = {"xgboost": fast, "champion": fast}
        run["dbt_vs_duckdb_pairs"] = [{"dbt_build_s": 12.0, "duckdb_s": 6.0, "ratio": 2.0}]
        run["train"]["loan_repayment"]["command"] = "python -m ml.train --fast"
        run["train"]["loan_repayment"]["steps"] = [
            {"step": "loan_repayment: tuning xgboost", "seconds": 30.0}
        ]
    return fake_result(runs)


def test_write_reports_writes_json_md_and_png(tmp_path) -> None:
    result = _result()
    json_path, md_path, png = write_reports(result, tmp_path / "out")
    assert json.loads(json_path.read_text())["runs"].keys() == result["runs"].keys()
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    md = md_path.read_text()
    assert "# Benchmark" in md and "10,000,000 orders" in md
    assert "![time against rows, log-log](bench.png)" in md
    assert "| dbt_vs_duckdb_ratio | <= 1.3 | 2.00 | **no** |" in md
    # which path scored, per role: a row of the table and a line per scoring run
    assert "| scoring xgboost path | fast path | fast path |" in md
    assert "Scoring path: fast path; xgboost trees: xgboost compiled." in md
    assert "scoring path: generic path: fast path not requested." in md
    assert "loan_repayment: tuning xgboost 30 s" in md
    assert "--selector production_build" in md


def test_path_text_names_the_fallback_reason_and_the_trees() -> None:
    run = _scoring_run("generic", "a categorical column has unseen types", {})
    assert path_text(run) == "generic path: a categorical column has unseen types"
    fast = _scoring_run("fast", None, {"xgboost": "compiled", "voting.xgboost": "too deep"})
    assert path_text(fast) == "fast path; xgboost trees: xgboost compiled, voting.xgboost too deep"
    assert path_text(fast, trees=False) == "fast path"


def test_fmt() -> None:
    assert fmt(None) == "–" and fmt(True) == "yes" and fmt(1234567) == "1,234,567"
    assert fmt(1234.5) == "1,234" and fmt(1.234, 2) == "1.23" and fmt("x") == "x"
