"""`python -m scripts.simulate`: a summary on success, one line and exit code 2 on a user error
(the simulator itself: tests/ml/ingestion/test_simulator.py)."""

from __future__ import annotations

import pytest

from ml.core.warehouse import open_warehouse
from tests.conftest import run_python


def test_cli_prints_a_summary(tmp_path) -> None:
    proc = run_python(
        "scripts.simulate", "--customers", "300", "--seed", "2", warehouse=tmp_path / "w.duckdb"
    )
    lines = proc.stdout.splitlines()
    assert (
        lines[0] == f"simulated 300 customers with seed 2 into {(tmp_path / 'w.duckdb').resolve()}"
    )
    assert [line.split()[0] for line in lines[1:-1]] == [
        "raw.customers",
        "raw.orders",
        "raw.loans",
        "sim.customer_truth",
        "sim.loan_truth",
    ]
    assert "raw rows/s" in lines[-1] and "default rate" in lines[-1]
    assert proc.stderr == ""
    with open_warehouse(tmp_path / "w.duckdb", read_only=True) as wh:
        assert wh.row_count("sim.customer_truth") == 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "0"], "--customers"),
        (["--customers", "many"], "--customers"),
        (["--seed", "x"], "--seed"),
        (["--seed", "-1"], "--seed"),
        (["--bogus"], "unrecognized"),
    ],
)
def test_cli_bad_arguments_are_one_line(tmp_path, args: list[str], message: str) -> None:
    proc = run_python("scripts.simulate", *args, warehouse=tmp_path / "w.duckdb", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_unwritable_path_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_python(
        "scripts.simulate", "--customers", "50", warehouse=blocker / "sub" / "w.duckdb", check=False
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_appends_a_batch(tmp_path) -> None:
    warehouse = tmp_path / "w.duckdb"
    run_python("scripts.simulate", "--customers", "400", "--seed", "3", warehouse=warehouse)
    proc = run_python(
        "scripts.simulate", "--append", "--months", "2", "--drift", "income=1.5",
        warehouse=warehouse,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("appended batch 1 (2026-01-01 .. 2026-03-01, 2 months")
    assert "drift income=1.5" in lines[0] and "seed 3" in lines[0]
    assert [line.split()[0] for line in lines[1:-1]] == [
        "raw.customers",
        "raw.orders",
        "raw.loans",
        "sim.customer_truth",
        "sim.loan_truth",
    ]
    with open_warehouse(warehouse, read_only=True) as wh:
        runs = wh.read_frame("sim.simulation_runs", order_by="batch_id")
        assert list(runs["batch_id"]) == [0, 1] and list(runs["drift"]) == ["", "income=1.5"]
        assert wh.sql_types("raw.orders")["batch_id"] == "INTEGER"
        assert wh.sql_types("raw.orders")["loaded_at"] == "TIMESTAMP"
        assert list(wh.describe("raw.loans").names[-2:]) == ["batch_id", "loaded_at"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--append"], "simulation_runs"),
        (["--append", "--customers", "10"], "--customers"),
        (["--append", "--drift", "bogus=1"], "bogus"),
        (["--append", "--months", "0"], "--months"),
        (["--drift", "income=2"], "--append"),
    ],
)
def test_cli_bad_append_is_one_line(tmp_path, args: list[str], message: str) -> None:
    proc = run_python("scripts.simulate", *args, warehouse=tmp_path / "w.duckdb", check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
