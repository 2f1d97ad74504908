"""The whole flow on Spark, through the user's own commands: `make run ENGINE=spark` on a tiny
lakehouse (3,000 customers), then `scripts.query` and dbt's unit tests on it, and parity with the
DuckDB warehouse of the same seed and size (tests/conftest.py's `built_warehouse`).

One lakehouse serves the module, and nothing else opens it while a command runs: the local
metastore (Derby) admits one process at a time.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import TINY_CUSTOMERS, TINY_SEED, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.spark]

TASK_ROWS = {  # every task's predictions cover its feature mart once
    "customer_satisfaction": ("marts.customer_features", "customer_id"),
    "customer_segment": ("marts.customer_features", "customer_id"),
    "loan_repayment": ("marts.loan_features", "loan_id"),
}
ENTITIES = ("customers", "orders", "loans")


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("spark_run")
    lakehouse = workdir / "lakehouse"
    proc = run_cli(
        [
            "make",
            "--no-print-directory",
            "run",
            "ENGINE=spark",
            f"CUSTOMERS={TINY_CUSTOMERS}",
            f"SEED={TINY_SEED}",
            "TRAIN_ARGS=--fast",
            f"REPORTS_DIR={workdir / 'reports'}",
        ],  # fmt: skip
        env_extra={
            "WAREHOUSE_PATH": str(lakehouse),
            "ARTIFACTS_PATH": str(workdir / "artifacts"),
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
        },
        timeout=2400,
    )
    return lakehouse, workdir, proc


def query_csv(sql: str, warehouse: Path, engine: str) -> str:
    """What `python -m scripts.query --format csv SQL` prints on the engine."""
    proc = run_cli(
        [sys.executable, "-m", "scripts.query", "--format", "csv", sql],
        env_extra={"WAREHOUSE_ENGINE": engine, "WAREHOUSE_PATH": str(warehouse)},
    )
    return proc.stdout


def query(sql: str, warehouse: Path, engine: str) -> pd.DataFrame:
    """The result of `scripts.query` on the engine, read back."""
    return pd.read_csv(io.StringIO(query_csv(sql, warehouse, engine)))


def test_make_run_on_spark_builds_everything(spark_run) -> None:
    lakehouse, workdir, proc = spark_run
    assert "done: warehouse at" in proc.stdout
    assert "Completed successfully" in proc.stdout and "FAIL" not in proc.stdout
    assert (workdir / "reports" / "index.html").exists()
    assert list((lakehouse / "tables").glob("raw.db/*/*.parquet"))  # raw landed as Parquet


def test_query_shows_raw_equals_staged_plus_rejected_and_one_prediction_per_row(spark_run):
    lakehouse, _, _ = spark_run
    parts = [
        f"select '{e}' as what, (select count(*) from raw.{e}) as a, "
        f"(select count(*) from staging.stg_{e}) + (select count(*) from staging.stg_{e}_rejected)"
        f" as b, (select count(*) from staging.stg_{e}_rejected) as extra"
        for e in ENTITIES
    ]
    parts += [
        f"select '{task}' as what, (select count(*) from {mart}) as a, "
        f"(select count(distinct p.{key}) from ml.{task}_predictions p "
        f"join {mart} f on f.{key} = p.{key}) as b, "
        f"(select count(*) from ml.{task}_predictions) as extra"
        for task, (mart, key) in TASK_ROWS.items()
    ]
    checks = query(" union all ".join(parts) + " order by what", lakehouse, "spark")
    assert len(checks) == 6
    for row in checks.itertuples():
        assert row.a == row.b > 0, row
        if row.what in TASK_ROWS:
            assert row.extra == row.a, row  # one prediction per feature row, no more
        else:
            assert row.extra > 0, f"the simulator's mess should reject some {row.what}"


@pytest.mark.parametrize(
    ("mart", "key"),
    [("marts.customer_features", "customer_id"), ("marts.loan_features", "loan_id")],
)
def test_feature_marts_hold_identical_rows_on_both_engines(spark_run, built_warehouse, mart, key):
    lakehouse, _, _ = spark_run
    sql = f"select * from {mart} order by {key}"
    on_spark = query_csv(sql, lakehouse, "spark")
    on_duckdb = query_csv(sql, built_warehouse, "duckdb")
    assert on_spark.count("\n") > 1000
    assert on_spark == on_duckdb  # the same text: every value to the last digit


def test_dbt_unit_tests_pass_on_spark(spark_run) -> None:
    lakehouse, workdir, _ = spark_run
    proc = run_cli(
        ["make", "--no-print-directory", "dbt-unit", "ENGINE=spark"],
        env_extra={
            "WAREHOUSE_PATH": str(lakehouse),
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
        },
    )
    assert "Completed successfully" in proc.stdout
    assert "ERROR=0" in proc.stdout and "PASS=0" not in proc.stdout
