"""`python -m scripts.check_quality`: exit 0 when every suite passes, 1 on a failure, 2 with one
line on a user error (the error paths never import Great Expectations). The gate itself:
tests/ml/quality/. Tests on the built warehouse run dbt once: `slow`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml.quality.suites import load_suites
from scripts.check_quality import main
from tests.conftest import run_python

#: Every suite, in gate order (tests/ml/quality/test_gate.py pins the list).
SUITE_NAMES = list(load_suites())


@pytest.mark.slow
def test_twenty_percent_null_age_fails_and_names_age(
    built_copy: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with duckdb.connect(str(built_copy)) as con:
        con.execute("update raw.customers set age = null where customer_id % 5 = 0")
    monkeypatch.setenv("WAREHOUSE_PATH", str(built_copy))
    assert main(["--suite", "raw.customers"]) == 1
    out = capsys.readouterr().out.splitlines()
    n = len(load_suites()["raw.customers"].expectations)
    assert out[0].startswith("FAIL raw.customers")
    assert f" {n - 1}/{n} expectations" in out[0]
    (age_line,) = [line for line in out if line.startswith("  ")]
    assert age_line.startswith("  raw.customers.age expect_column_values_to_not_be_null: 2")
    assert age_line.endswith("% null (max 3.0 %)")


@pytest.mark.slow
def test_cli_passes_on_a_fresh_build(built_copy: Path) -> None:
    proc = run_python("scripts.check_quality", warehouse=built_copy)
    lines = proc.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["PASS", n] for n in SUITE_NAMES]
    assert lines[-1].startswith("all 5 suites passed; ")
    assert proc.stderr == ""  # no GX progress bars, no DuckDB progress bar, no warnings


def test_cli_missing_warehouse_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = run_python("scripts.check_quality", warehouse=tmp_path / "nope.duckdb", check=False)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "nope.duckdb").exists()


def test_cli_unknown_suite_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = run_python(
        "scripts.check_quality", "--suite", "raw.nope", warehouse=tmp_path / "w.db", check=False
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "scripts.check_quality: error: unknown suite 'raw.nope'; available: "
        + ", ".join(SUITE_NAMES)
    ]


@pytest.mark.slow
def test_cli_stores_every_result_of_a_run(built_copy: Path) -> None:
    proc = run_python("scripts.check_quality", "--suite", "raw.orders", warehouse=built_copy)
    run_id = proc.stdout.splitlines()[-1].rsplit("run_id ", 1)[1].rstrip(")")
    stored = int(proc.stdout.splitlines()[-1].split("; ")[1].split()[0])
    with duckdb.connect(str(built_copy), read_only=True) as con:
        rows = con.execute(
            "select count(*), count(distinct suite) from quality.check_results where run_id = ?",
            [run_id],
        ).fetchone()
    assert rows == (stored, 1) and stored == len(load_suites()["raw.orders"].expectations)
