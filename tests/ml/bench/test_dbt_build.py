"""ml.bench.dbt_build: the production selection, and dbt's own timings from run_results.json."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest
import yaml

from ml.bench.dbt_build import DBT_SELECTOR, dbt_command, read_run_results
from ml.core.config import DBT_PROJECT_DIR, PROJECT_ROOT


def _timing(compile_at: tuple[str, str], execute_at: tuple[str, str]) -> list[dict]:
    day = "2026-12-04T16:49:"
    return [
        {"name": "compile", "started_at": day + compile_at[0], "completed_at": day + compile_at[1]},
        {"name": "execute", "started_at": day + execute_at[0], "completed_at": day + execute_at[1]},
    ]


def test_read_run_results_takes_dbt_own_timings(tmp_path) -> None:
    run_results = {
        "metadata": {"invocation_started_at": "2026-12-04T16:49:00.000000Z"},
        "elapsed_time": 3.5,
        "args": {"selector": DBT_SELECTOR},
        "results": [
            {
                "unique_id": "model.p.a",
                "status": "success",
                "execution_time": 1.25,
                "thread_id": "Thread-1 (worker)",
                "timing": _timing(("01.500000Z", "01.750000Z"), ("01.750000Z", "02.500000Z")),
            },
            {
                "unique_id": "test.p.t",
                "status": "fail",
                "execution_time": 0.5,
                "thread_id": "Thread-2 (worker)",
                "timing": _timing(("02.000000Z", "02.100000Z"), ("02.100000Z", "02.400000Z")),
            },
            {"unique_id": "unit_test.p.a.u", "status": "success", "execution_time": 0.25},
        ],
    }
    (tmp_path / "run_results.json").write_text(json.dumps(run_results))
    got = read_run_results(tmp_path)
    assert got["nodes"] == {"model": 1, "seed": 0, "test": 1, "unit_test": 1}
    assert got["node_s"] == {"model.p.a": 1.25, "test.p.t": 0.5, "unit_test.p.a.u": 0.25}
    assert got["node_s_sum"] == pytest.approx(2.0) and got["unit_test_s"] == pytest.approx(0.25)
    assert got["compile_s_sum"] == pytest.approx(0.35)
    assert got["execute_s_sum"] == pytest.approx(1.05)
    assert got["execute_s"] == 3.5
    assert got["before_first_node_s"] == pytest.approx(1.5)  # invocation -> first node
    assert got["threads"] == 2 and got["selector"] == DBT_SELECTOR
    assert got["failed"] == ["test.p.t"]


def test_dbt_command_keeps_target_and_logs_in_the_workdir(tmp_path) -> None:
    args = dbt_command("build", tmp_path, "--selector", DBT_SELECTOR)
    assert args[1] == "build" and args[-2:] == ["--selector", DBT_SELECTOR]
    assert args[args.index("--target-path") + 1] == str(tmp_path / "target")
    assert args[args.index("--log-path") + 1] == str(tmp_path / "logs")


def test_the_bench_builds_what_make_dbt_build_builds() -> None:
    """One definition of the production build: dbt's selectors.yml, named by the Makefile's
    dbt-build recipe and by the benchmark alike, so the ratio is the production build's."""
    selectors = yaml.safe_load((DBT_PROJECT_DIR / "selectors.yml").read_text())["selectors"]
    assert DBT_SELECTOR in {s["name"] for s in selectors}
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "dbt-build"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    build = next(line for line in dry.stdout.splitlines() if " build --project-dir " in line)
    args = shlex.split(build)
    assert args[args.index("--selector") + 1] == DBT_SELECTOR
