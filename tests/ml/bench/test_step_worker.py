"""ml.bench.step_worker and the Spark options: the steps that open a warehouse run in the bench
process on DuckDB only; the bench process never imports Spark."""

from __future__ import annotations

import ast
import subprocess
import sys
import time

import pytest

from ml.bench import step_worker
from ml.bench.options import parse_sizes
from ml.bench.process import base_env, descendants_peak_rss_mb
from ml.core.config import PROJECT_ROOT
from ml.core.errors import UserError


def test_duckdb_steps_run_in_this_process(tmp_path, monkeypatch) -> None:
    calls = []

    def fake(**kwargs):
        calls.append(kwargs)
        return {"seconds": 1.0}

    monkeypatch.setitem(step_worker.STEPS, "simulate", fake)
    results, process = step_worker.run_steps(
        "duckdb",
        [("simulate", {"customers": 3}), ("simulate", {"customers": 4})],
        {},
        tmp_path,
        "s",
    )
    assert results == [{"seconds": 1.0}] * 2 and process is None
    assert calls == [{"customers": 3}, {"customers": 4}]
    assert not list(tmp_path.iterdir())  # no worker, no spec


def test_a_failed_worker_names_the_step_and_the_log(tmp_path) -> None:
    """On Spark the steps run in `python -m ml.bench.step_worker`; its failure is one error with
    the log's tail (here: a step the worker does not know, before any Spark starts)."""
    env = base_env(tmp_path / "lakehouse", tmp_path / "artifacts", "spark")
    with pytest.raises(RuntimeError, match=r"nope failed on spark:[\s\S]*KeyError: 'nope'"):
        step_worker.run_steps("spark", [("nope", {})], env, tmp_path, "nope")
    assert (tmp_path / "nope.spec.json").exists() and (tmp_path / "nope.out").exists()


def test_base_env_names_the_engine(tmp_path) -> None:
    assert base_env(tmp_path / "w.duckdb", tmp_path)["WAREHOUSE_ENGINE"] == "duckdb"
    env = base_env(tmp_path / "lakehouse", tmp_path / "a", "spark")
    assert env["WAREHOUSE_ENGINE"] == "spark" and env["WAREHOUSE_PATH"].endswith("lakehouse")


def test_no_bench_module_imports_spark() -> None:
    """pyspark and the Spark warehouse load only in workers that open a lakehouse (through
    ml.core.warehouse.open_warehouse), never by importing ml.bench."""
    for path in (PROJECT_ROOT / "ml" / "bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not name.startswith(("pyspark", "ml.core.warehouse.spark")), (path, name)


def test_spark_sizes_may_be_empty_and_name_their_flag() -> None:
    assert parse_sizes("", "--spark-sizes", allow_empty=True) == []
    assert parse_sizes("1e5, 1000000", "--spark-sizes", allow_empty=True) == [100_000, 1_000_000]
    with pytest.raises(UserError, match="--spark-sizes: 'x' is not a number"):
        parse_sizes("x", "--spark-sizes", allow_empty=True)
    with pytest.raises(UserError, match="--sizes is empty"):
        parse_sizes("")


def test_descendants_peak_rss_counts_a_child() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; b = bytearray(50 * 2**20); time.sleep(30)"]
    )
    try:
        deadline = time.monotonic() + 20
        while (descendants_peak_rss_mb() or 0) < 50 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert descendants_peak_rss_mb() >= 50
    finally:
        child.kill()
        child.wait()
