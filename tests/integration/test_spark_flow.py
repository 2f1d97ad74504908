"""The whole flow on Spark, through the user's own commands: `make run ENGINE=spark` on a tiny
lakehouse (3,000 customers), then `scripts.query` and dbt's unit tests on it, and parity with the
DuckDB warehouse of the same seed and size (tests/conftest.py's `built_warehouse`). Then day two:
`make batch ENGINE=spark` (the next month, built incrementally with Parquet's append, scored and
monitored), and a `--full-refresh` of staging and the feature marts that must give the rows of the
incremental chain.

One lakehouse serves the module, and nothing else opens it while a command runs: the local
metastore (Derby) admits one process at a time.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import DBT, ROOT, TINY_CUSTOMERS, TINY_SEED, run_cli
from tests.dbt.batches import COMPARED

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


MARTS = {"marts.customer_features": "customer_id", "marts.loan_features": "loan_id"}
#: What `scripts.query --format csv "select * from MART order by KEY"` prints, for every mart, and
#: the deployment state (DEPLOYED) as CSV files, in one process (each Spark process costs a JVM
#: start-up): the same query_arrow and to_csv.
SNAPSHOT = """
import sys
from pathlib import Path
from ml.core.warehouse import open_warehouse
lake, folder, queries = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
folder.mkdir(parents=True)
with open_warehouse(lake, engine="spark", read_only=True) as wh:
    for name, sql in zip(queries[::2], queries[1::2]):
        wh.query_arrow(sql).to_pandas().to_csv(folder / f"{name}.csv", index=False)
"""
#: ml.deployments (with how many loan decisions name each deployment), and the loan predictions.
DEPLOYED = {
    "deployments": "select d.task, d.deployment_id, d.run_id, d.model_name, d.command, "
    "(select count(*) from marts.loan_decisions l where l.deployment_id = d.deployment_id) "
    "as decided, (select count(*) from marts.loan_decisions) as loans "
    "from ml.deployments d order by d.task, d.deployment_id",
    "predictions": "select * from ml.loan_repayment_predictions order by loan_id",
}


def snapshot(lakehouse: Path, folder: Path, queries: dict[str, str]) -> Path:
    """Each query's result as `folder/<name>.csv`, from one Spark process."""
    pairs = [item for pair in queries.items() for item in pair]
    run_cli([sys.executable, "-c", SNAPSHOT, str(lakehouse), str(folder), *pairs],
            env_extra={"WAREHOUSE_ENGINE": "spark", "WAREHOUSE_PATH": str(lakehouse)})  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def spark_marts_csv(spark_run) -> Path:
    """The feature marts and the deployment state that `make run` left."""
    lakehouse, workdir, _ = spark_run
    marts = {mart: f"select * from {mart} order by {key}" for mart, key in MARTS.items()}
    return snapshot(lakehouse, workdir / "marts_csv", {**marts, **DEPLOYED})


@pytest.mark.parametrize(("mart", "key"), list(MARTS.items()))
def test_feature_marts_hold_identical_rows_on_both_engines(
    spark_marts_csv, built_warehouse, mart, key
):
    on_spark = (spark_marts_csv / f"{mart}.csv").read_text()
    on_duckdb = query_csv(f"select * from {mart} order by {key}", built_warehouse, "duckdb")
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


@pytest.fixture(scope="module")
def spark_drill(spark_run, spark_marts_csv) -> dict:
    """`ml.promote --force` of another candidate of the loan run, then `ml.rollback`, on the
    state `make run` left (read before, by `spark_marts_csv`)."""
    lakehouse, workdir, _ = spark_run
    env = {"WAREHOUSE_ENGINE": "spark", "WAREHOUSE_PATH": str(lakehouse),
           "ARTIFACTS_PATH": str(workdir / "artifacts")}  # fmt: skip
    deployed = pd.read_csv(spark_marts_csv / "deployments.csv")
    loans = deployed.set_index("task").loc["loan_repayment"]
    other = "xgboost" if loans["model_name"] != "xgboost" else "linear"
    forced = run_cli(
        [sys.executable, "-m", "ml.promote", "--task", "loan_repayment", "--run", loans["run_id"],
         "--model", other, "--force", "--reason", "drill"],
        env_extra=env,
    )  # fmt: skip
    back = run_cli([sys.executable, "-m", "ml.rollback", "--task", "loan_repayment"], env_extra=env)
    return {"deployed": deployed, "loans": loans, "forced": forced.stdout, "back": back.stdout}


def test_deployments_and_a_promote_rollback_drill_on_spark(spark_drill) -> None:
    """make run deployed every task's champion, and loan_decisions names the deployment;
    `ml.promote --force` of another candidate then `ml.rollback` restore the deployed model
    (the predictions, value for value: test_the_drill_and_the_batch_kept_the_predictions)."""
    deployed, loans = spark_drill["deployed"], spark_drill["loans"]
    assert list(deployed["task"]) == sorted(TASK_ROWS)
    assert set(deployed["deployment_id"]) == {1} and set(deployed["command"]) == {"ml.train"}
    assert loans["decided"] == loans["loans"] > 0  # every loan decision names deployment 1
    assert "PROMOTED (force)" in spark_drill["forced"]
    assert "deployment 2 is" in spark_drill["forced"]
    back = spark_drill["back"]
    assert f"deployment 3 is {loans['run_id']}/{loans['model_name']}" in back
    assert " 0 scored" in back  # every prediction restored from the archive (Parquet)


# --------------------------------------------------------------------------- day two on Spark

#: The compared tables and their parents (14 models), rebuilt with --full-refresh.
FULL_REFRESH = ("--select", "+customer_features", "+loan_features",
                *(f"stg_{e}_rejected" for e in ENTITIES))  # fmt: skip
DUMP = """
import sys
from pathlib import Path
import pyarrow.parquet as pq
from ml.core.warehouse import open_warehouse
lake, folder = sys.argv[1], Path(sys.argv[2])
folder.mkdir(parents=True)
with open_warehouse(lake, engine="spark", read_only=True) as wh:
    for relation in sys.argv[3:]:
        pq.write_table(wh.read_arrow(relation), folder / f"{relation}.parquet")
"""


@pytest.fixture(scope="module")
def spark_batch(spark_run, spark_drill):
    """`make batch ENGINE=spark` on the module's lakehouse (after the tests above read it and the
    drill), the staging and feature tables it left, and the same tables after a --full-refresh."""
    lakehouse, workdir, _ = spark_run
    env = {
        "WAREHOUSE_PATH": str(lakehouse),
        "ARTIFACTS_PATH": str(workdir / "artifacts"),
        "DBT_TARGET_PATH": str(workdir / "target"),
        "DBT_LOG_PATH": str(workdir / "logs"),
    }
    proc = run_cli(
        ["make", "--no-print-directory", "batch", "ENGINE=spark", f"SEED={TINY_SEED}",
         f"REPORTS_DIR={workdir / 'reports'}"],
        env_extra=env, check=False, timeout=2400,
    )  # fmt: skip
    spark = {**env, "WAREHOUSE_ENGINE": "spark"}
    chain = (*COMPARED, "marts.monitoring_drift", "ml.deployments", "ml.loan_repayment_predictions")
    run_cli([sys.executable, "-c", DUMP, str(lakehouse), str(workdir / "chain"), *chain],
            env_extra=spark)  # fmt: skip
    refresh = run_cli(
        [str(DBT), "run", *FULL_REFRESH, "--full-refresh",
         "--project-dir", str(ROOT / "dbt_project"), "--profiles-dir", str(ROOT),
         "--target-path", str(workdir / "target"), "--log-path", str(workdir / "logs")],
        env_extra=spark,
    )  # fmt: skip
    assert "ERROR=0" in refresh.stdout, refresh.stdout[-3000:]
    run_cli([sys.executable, "-c", DUMP, str(lakehouse), str(workdir / "full"), *COMPARED],
            env_extra=spark)  # fmt: skip
    return lakehouse, workdir, proc


def test_make_batch_on_spark_runs_every_step(spark_batch) -> None:
    _, workdir, proc = spark_batch
    out = proc.stdout
    # ml.monitor is the last step: its verdict printed means every step before it passed (a
    # tiny batch may well read "watch" or "act"; on "act" the monitor exits 1 and make fails
    # with its own exit code, 2)
    assert "\nmonitor: " in out, out[-3000:]
    assert proc.returncode == (2 if "\nmonitor: act" in out else 0), out[-3000:]
    scored = {
        m[1]: int(m[2].replace(",", ""))
        for m in re.finditer(r"(?m)^(\w+): scored ([\d,]+) of", out)
    }
    chain = workdir / "chain"
    with duckdb.connect() as con:  # the tables the batch left, dumped by the fixture
        loans, drift_rows, tasks = con.execute(
            f"""select
                (select count(*) from read_parquet('{chain}/staging.stg_loans.parquet')
                 where batch_id = 1),
                (select count(*) from read_parquet('{chain}/marts.monitoring_drift.parquet')
                 where batch_id = 1),
                (select count(distinct task)
                 from read_parquet('{chain}/marts.monitoring_drift.parquet'))"""
        ).fetchone()
    counts = {"loans": loans, "drift_rows": drift_rows, "tasks": tasks}
    assert scored["loan_repayment"] == counts["loans"] > 0, (scored, counts)
    assert counts["drift_rows"] > 0 and counts["tasks"] == 3, counts


@pytest.mark.parametrize("table", COMPARED)
def test_full_refresh_on_spark_equals_the_incremental_chain(spark_batch, table) -> None:
    _, workdir, _ = spark_batch
    chain, full = (f"read_parquet('{workdir / d / table}.parquet')" for d in ("chain", "full"))
    with duckdb.connect() as con:
        assert con.execute(f"select count(*) from {chain}").fetchone()[0] > 0, table
        for left, right in ((chain, full), (full, chain)):
            extra = con.execute(
                f"select count(*) from (select * from {left} except all select * from {right})"
            ).fetchone()[0]
            assert extra == 0, table
        if table.endswith("_versions"):
            batches = con.execute(f"select distinct batch_id from {chain} order by 1").fetchall()
            assert batches == [(0,), (1,)], table


def test_the_drill_and_the_batch_kept_the_predictions(spark_marts_csv, spark_batch) -> None:
    """After `ml.promote --force` and `ml.rollback` (restored from the archive on Parquet) and a
    batch (which scores only new and changed rows), every loan of batch 0 has the prediction
    `make run` gave it, value for value, scored_at included."""
    _, workdir, _ = spark_batch
    chain = workdir / "chain"
    commands = pq.read_table(chain / "ml.deployments.parquet").to_pandas()
    loans = commands[commands["task"] == "loan_repayment"].sort_values("deployment_id")
    assert list(loans["command"]) == ["ml.train", "ml.promote", "ml.rollback"]
    before = pd.read_csv(spark_marts_csv / "predictions.csv")
    after = pq.read_table(chain / "ml.loan_repayment_predictions.parquet").to_pandas()
    after = pd.read_csv(io.StringIO(after.sort_values("loan_id").to_csv(index=False)))
    kept = after[after["loan_id"].isin(before["loan_id"])].reset_index(drop=True)
    assert len(after) > len(before) > 0  # the batch scored its new loans
    pd.testing.assert_frame_equal(kept, before)
