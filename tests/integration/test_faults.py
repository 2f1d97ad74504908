"""Fault injection: killed writers, a held warehouse and a failing `dbt build` lose nothing.

- `ml.train` and `ml.segment` read the warehouse read-only, compute with it closed and write every
  `ml.*` table in ONE transaction at the end (`Warehouse.replace_tables`). A SIGKILL at any
  moment must leave each table as it was (or, after the commit, fully replaced), no temporary
  table, a champion that `ml.predict` still loads, and a next run that succeeds. The hardest
  moment, inside the open transaction after the old tables are dropped and the new ones renamed,
  is hit deterministically with the test hook `ML_TEST_PAUSE_BEFORE_COMMIT` (ml/core/warehouse/duckdb.py).
- A second process waits `WAREHOUSE_LOCK_TIMEOUT` seconds for a held warehouse, then fails with
  one line naming the holder's PID (exit code 2), and gets in when the holder lets go in time.
- A `dbt build` that fails half-way leaves the previously published tables as they were.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml.core.warehouse.duckdb import TEST_PAUSE_BEFORE_COMMIT
from tests.conftest import DBT_BEFORE_TRAINING, ROOT, run_dbt, run_python

pytestmark = pytest.mark.slow  # whole flows: kills and locks around dbt builds and training runs

TASK = "loan_repayment"
TRAIN_ARGS = ("--fast", "--task", TASK, "--seed", "3")
SEGMENT_ARGS = ("--k-min", "2", "--k-max", "3", "--sample", "500")
#: The tables a loan_repayment run writes; all of them must be untouched by a killed run.
TRAIN_TABLES = (
    "ml.model_runs",
    f"ml.{TASK}_predictions",
    "ml.prediction_explanations",
    "ml.feature_importance",
    "ml.evaluation_predictions",
    "ml.shap_sample",
    "ml.score_log",
    "ml.deployments",
    "ml.promotion_decisions",
    f"ml.{TASK}_prediction_archive",
)
SEGMENT_TABLES = ("ml.segmentation_runs", "ml.customer_segments", "ml.segment_projection")
#: One thread per library: several runs share the cores here, and oversubscribed thread pools
#: (xgboost's OpenMP, TensorFlow) spin instead of working. Results do not depend on it.
ONE_THREAD = {"ML_THREADS": "1", "ML_TF_THREADS": "1", "OMP_NUM_THREADS": "1"}
#: Names of the staging tables of Warehouse.replace_tables and of dbt-duckdb's swaps.
LEFTOVER = re.compile(r"^__tmp_|^__write_|__dbt_tmp|__dbt_backup")


# --------------------------------------------------------------------------------------- helpers


def _env(warehouse: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "WAREHOUSE_PATH": str(warehouse),
        **ONE_THREAD,
        **(extra or {}),
    }


def _start(
    module: str, *args: str, warehouse: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """`python -m module args` in the background, stdout and stderr into `log`."""
    with open(log, "wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=_env(warehouse, env),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


def _wait_for(condition, proc: subprocess.Popen, log: Path, what: str, timeout: float = 400):
    """Poll `condition()` until true; fail if `proc` ends first or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"the process exited {proc.returncode} before {what}:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def _kill(proc: subprocess.Popen) -> None:
    assert proc.poll() is None, "the process must still be running when it is killed"
    proc.kill()  # SIGKILL: no handler, no rollback, no cleanup
    proc.wait(timeout=60)
    assert proc.returncode == -9


def _open(warehouse: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """The warehouse (a plain DuckDB connection, for the checks), waiting like every entry point
    while a run running alongside has it."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return duckdb.connect(str(warehouse), read_only=read_only)
        except duckdb.IOException as err:
            if "lock" not in str(err).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def snapshot(warehouse: Path) -> dict[str, str]:
    """Every ml.* table's columns, types and rows (sorted) as one digest per table.

    Opened read-write, the way the next run opens it: DuckDB replays the committed part of the
    write-ahead log, and a transaction that never committed is simply not there.
    """
    con = _open(warehouse)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where database_name = current_database() and schema_name = 'ml' "
            "order by all"
        ).fetchall()
        digests = {}
        for schema, table in tables:
            relation = f'"{schema}"."{table}"'
            columns = con.execute(f"describe {relation}").fetchall()
            digest, rows = con.execute(
                f"select md5(coalesce(string_agg(r, chr(10) order by r), '')), count(*) "
                f"from (select t::varchar as r from {relation} as t)"
            ).fetchone()
            digests[f"{schema}.{table}"] = f"{[c[:2] for c in columns]} {rows} rows {digest}"
        return digests
    finally:
        con.close()


def leftovers(warehouse: Path) -> list[str]:
    """Relations named like a staging table (ours or dbt's) anywhere in the warehouse."""
    con = _open(warehouse, read_only=True)
    try:
        names = con.execute(
            "select schema_name || '.' || table_name from duckdb_tables() "
            "union all select schema_name || '.' || view_name from duckdb_views() "
            "where not internal"
        ).fetchall()
    finally:
        con.close()
    return [n for (n,) in names if LEFTOVER.search(n.split(".", 1)[1])]


def champion(warehouse: Path) -> tuple[str, str]:
    con = _open(warehouse, read_only=True)
    try:
        return con.execute(
            "select run_id, model_name from ml.model_runs where task = ? and is_champion "
            "order by trained_at desc limit 1",
            [TASK],
        ).fetchone()
    finally:
        con.close()


def assert_unchanged(warehouse: Path, before: dict[str, str], when: str) -> None:
    after = snapshot(warehouse)
    changed = sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))
    assert not changed, f"{when}: {changed} changed"
    assert not leftovers(warehouse), f"{when}: temporary tables left: {leftovers(warehouse)}"


@pytest.fixture(scope="module")
def trained_loans(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny warehouse after `ml.train --fast --task loan_repayment` and `ml.segment`."""
    workdir = tmp_path_factory.mktemp("faults")
    warehouse = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts"), **ONE_THREAD}
    run_python("ml.train", *TRAIN_ARGS, warehouse=warehouse, env_extra=env)
    run_python("ml.segment", *SEGMENT_ARGS, warehouse=warehouse, env_extra=ONE_THREAD)
    return {"warehouse": warehouse, "env": env, "artifacts": workdir / "artifacts"}


# ------------------------------------------------------------------------------- killed writers


def test_a_killed_training_run_changes_nothing_and_the_next_one_succeeds(
    trained_loans: dict, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(trained_loans["warehouse"], warehouse)
    env = trained_loans["env"]
    before = snapshot(warehouse)
    assert set(TRAIN_TABLES) <= set(before)
    old_champion = champion(warehouse)

    # The run killed inside its write transaction starts first: it trains (with the warehouse
    # closed) while the early and mid-training kills below happen; every process here waits for
    # the lock (WAREHOUSE_LOCK_TIMEOUT, 30 s) if another one holds it for a moment.
    paused_log = tmp_path / "paused.log"
    paused = _start(
        "ml.train",
        *TRAIN_ARGS,
        warehouse=warehouse,
        log=paused_log,
        env={**env, TEST_PAUSE_BEFORE_COMMIT: "600"},
    )
    try:
        # 1. early: during the imports / the read-only read of the features
        log = tmp_path / "early.log"
        proc = _start("ml.train", *TRAIN_ARGS, warehouse=warehouse, log=log, env=env)
        time.sleep(2)
        _kill(proc)
        assert_unchanged(warehouse, before, "killed after 2 s")

        # 2. mid-training: once KerasTuner has made its trial folder (in the run's own TMPDIR)
        tmp = tmp_path / "mid-tmp"
        tmp.mkdir()
        log = tmp_path / "mid.log"
        proc = _start(
            "ml.train", *TRAIN_ARGS, warehouse=warehouse, log=log, env={**env, "TMPDIR": str(tmp)}
        )
        _wait_for(lambda: any(tmp.glob("kerastuner-*")), proc, log, "the Keras search")
        _kill(proc)
        assert_unchanged(warehouse, before, "killed during the Keras search")

        # 3. inside the write transaction: every table staged and swapped, nothing committed
        _wait_for(
            lambda: TEST_PAUSE_BEFORE_COMMIT in paused_log.read_text(errors="replace"),
            paused,
            paused_log,
            "the write transaction",
        )
        _kill(paused)
    finally:
        if paused.poll() is None:
            paused.kill()
            paused.wait()
    assert_unchanged(warehouse, before, "killed before the commit")
    # the killed run saved its models before the commit: an orphan folder nothing points to
    run_folders = {p.name for p in (trained_loans["artifacts"] / TASK).iterdir()}
    assert old_champion[0] in run_folders and len(run_folders) >= 2

    # the old champion still scores
    scored = tmp_path / "scored.csv"
    run_python(
        "ml.predict", "--task", TASK, "--table", "marts.loan_features", "--output", str(scored),
        warehouse=warehouse, env_extra=env,
    )  # fmt: skip
    assert set(pd.read_csv(scored)["run_id"]) == {old_champion[0]}

    # and a normal run succeeds and replaces every table it owns (deployed: on unchanged data a
    # challenger would not be promoted, and the predictions and deployments would stay)
    run_python("ml.train", *TRAIN_ARGS, "--promote", "force", warehouse=warehouse, env_extra=env)
    after = snapshot(warehouse)
    assert all(after[t] != before[t] for t in TRAIN_TABLES), "a successful run changes them"
    assert {t: after[t] for t in SEGMENT_TABLES} == {t: before[t] for t in SEGMENT_TABLES}
    assert champion(warehouse)[0] != old_champion[0]
    assert not leftovers(warehouse)


def test_a_killed_segmentation_changes_nothing_and_the_next_one_succeeds(
    trained_loans: dict, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(trained_loans["warehouse"], warehouse)
    before = snapshot(warehouse)
    log = tmp_path / "segment.log"
    proc = _start(
        "ml.segment", *SEGMENT_ARGS, "--seed", "5",
        warehouse=warehouse, log=log, env={TEST_PAUSE_BEFORE_COMMIT: "600"},
    )  # fmt: skip
    try:
        _wait_for(
            lambda: TEST_PAUSE_BEFORE_COMMIT in log.read_text(errors="replace"),
            proc,
            log,
            "the write transaction",
        )
        _kill(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_unchanged(warehouse, before, "ml.segment killed before the commit")

    run_python(
        "ml.segment", *SEGMENT_ARGS, "--seed", "5", warehouse=warehouse, env_extra=ONE_THREAD
    )
    after = snapshot(warehouse)
    assert all(after[t] != before[t] for t in SEGMENT_TABLES)
    assert {t: after[t] for t in TRAIN_TABLES} == {t: before[t] for t in TRAIN_TABLES}
    assert not leftovers(warehouse)


# ----------------------------------------------------------------------------- a held warehouse


@contextlib.contextmanager
def held(warehouse: Path, seconds: float = 600) -> Iterator[subprocess.Popen]:
    """Another process holding the warehouse open for writing for `seconds`."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            import duckdb
            con = duckdb.connect(sys.argv[1])
            print("held", flush=True)
            time.sleep(float(sys.argv[2]))
            con.close()
            print("released", time.time(), flush=True)
        """), str(warehouse), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


def test_every_entry_point_gives_one_clean_line_when_the_warehouse_is_held(
    built_copy: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    commands = {
        "ml.predict": ["--task", TASK, "--table", "marts.loan_features",
                       "--output", str(tmp_path / "out.csv")],
        "ml.train": ["--fast", "--task", TASK],
        "scripts.load_csv": [str(csv), "--table", "raw.held"],
        "scripts.check_quality": [],
        "scripts.report": ["--output", str(tmp_path / "reports")],
        "ml.segment": [],
    }  # fmt: skip
    with held(built_copy) as holder:
        # all at once: each waits its 1 s on its own, and the imports overlap
        procs = {}
        for module, args in commands.items():
            procs[module] = (
                time.monotonic(),
                subprocess.Popen(
                    [sys.executable, "-m", module, *args],
                    cwd=ROOT,
                    env=_env(built_copy, {"WAREHOUSE_LOCK_TIMEOUT": "1"}),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        results = {}
        try:
            for module, (start, proc) in procs.items():
                out, err = proc.communicate(timeout=300)
                results[module] = (proc.returncode, out, err, time.monotonic() - start)
        finally:
            for _, proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    for module, (code, _out, err, elapsed) in results.items():
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2, f"{module} exited {code}:\n{err[-3000:]}"
        assert len(lines) == 1, f"{module} printed more than one line:\n{err[-3000:]}"
        assert "locked" in lines[0] and f"(PID {holder.pid})" in lines[0], (module, lines[0])
        assert lines[0].startswith(f"{module}: error: warehouse "), (module, lines[0])
        # it waited the timeout and no longer (the rest of the wall time is imports, which take
        # tens of seconds on busy cores: the message's own count is the exact measure)
        waited = float(re.search(r"waited (\d+)s", lines[0])[1])
        assert 1 <= waited < 15, (module, lines[0])
        assert elapsed >= 1, (module, elapsed)


def test_a_waiting_writer_gets_in_when_the_holder_lets_go(built_copy: Path, tmp_path: Path) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    # held for 10 s: longer than the loader's imports even on busy cores, so it does find the
    # warehouse locked, waits (timeout 60 s) and writes once the holder has let go
    with held(built_copy, seconds=10) as holder:
        proc = run_python(
            "scripts.load_csv", str(csv), "--table", "raw.waited",
            warehouse=built_copy, env_extra={"WAREHOUSE_LOCK_TIMEOUT": "60"},
        )  # fmt: skip
        finished_at = time.time()
        released = holder.stdout.readline().split()
        assert holder.wait(timeout=30) == 0
    assert "created raw.waited" in proc.stdout, proc.stdout
    assert released[0] == "released" and finished_at > float(released[1])
    con = duckdb.connect(str(built_copy), read_only=True)
    try:
        assert con.execute("select count(*) from raw.waited").fetchone()[0] == 2
    finally:
        con.close()


# --------------------------------------------------------------------------- a failed dbt build


def _table_digests(warehouse: Path, schemas: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """(rows, digest of the sorted rows) of every table in `schemas`."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() "
            "where list_contains(?, schema_name) order by all",
            [list(schemas)],
        ).fetchall()
        return {
            f"{s}.{t}": con.execute(
                f"select count(*), md5(coalesce(string_agg(r, chr(10) order by r), '')) "
                f'from (select x::varchar as r from "{s}"."{t}" as x)'
            ).fetchone()
            for s, t in tables
        }
    finally:
        con.close()


def test_a_failed_dbt_build_keeps_the_published_tables(built_copy: Path, tmp_path: Path) -> None:
    """dbt-duckdb's table materialization builds `<model>__dbt_tmp`, then, in one transaction,
    renames the published table to `<model>__dbt_backup`, the new one to `<model>` and drops the
    backup; an incremental model inserts its new rows in one transaction. A model whose SQL
    fails never reaches the renames or the insert, so its old table stays, and dbt
    skips everything downstream of it, which keeps its old tables too. (A failing *test* is
    different: the model it tests was already published; the quality gate's stored verdict,
    checked by ml.train, is what guards against that.)"""
    before = _table_digests(built_copy, ("staging", "marts"))
    con = duckdb.connect(str(built_copy))
    try:
        # the orders arrive without their discount column: stg_orders_classified fails at run
        # time, after the customer and loan staging models have been rebuilt
        con.execute("create table raw.orders_backup as select * from raw.orders")
        con.execute("alter table raw.orders drop column discount_pct")
    finally:
        con.close()

    proc = run_dbt(
        "build", *DBT_BEFORE_TRAINING, warehouse=built_copy, workdir=tmp_path, check=False
    )
    assert proc.returncode != 0, proc.stdout[-3000:]
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())
    status = {r["unique_id"].split(".")[-1]: r["status"] for r in results["results"]}
    # a unit test of stg_orders_classified runs first and errors (its mocked input no longer
    # matches raw.orders), so stg_orders_classified and everything downstream of it are skipped
    errored = {r["unique_id"] for r in results["results"] if r["status"] == "error"}
    assert errored and all(
        e.startswith("unit_test.predictive_warehouse.stg_orders_classified.") for e in errored
    ), errored
    assert status["stg_orders_classified"] == "skipped"
    assert status["stg_customers"] == "success", "the build failed half-way, not at the start"
    assert status["customer_feature_versions"] == status["loan_feature_versions"] == "skipped"

    after = _table_digests(built_copy, ("staging", "marts"))
    assert set(after) == set(before), "no table appeared or disappeared"
    rebuilt = {name for name, s in status.items() if s == "success"}
    for relation, digest in before.items():
        if relation.split(".")[1] not in rebuilt:  # failed or skipped: exactly as published
            assert after[relation] == digest, f"{relation} changed in a failed build"
    assert after["staging.stg_orders_classified"] == before["staging.stg_orders_classified"]
    assert after["marts.customer_feature_versions"] == before["marts.customer_feature_versions"]
    assert after["marts.loan_feature_versions"] == before["marts.loan_feature_versions"]
    assert not leftovers(built_copy)

    # the model itself failing at run time (no unit test in the way) keeps its old table too
    proc = run_dbt(
        "run",
        "--select",
        "stg_orders_classified",
        warehouse=built_copy,
        workdir=tmp_path,
        check=False,
    )
    assert proc.returncode != 0 and "discount_pct" in proc.stdout, proc.stdout[-3000:]
    still = _table_digests(built_copy, ("staging",))
    assert still["staging.stg_orders_classified"] == before["staging.stg_orders_classified"]
    assert not leftovers(built_copy)

    con = duckdb.connect(str(built_copy))
    try:
        con.execute("create or replace table raw.orders as select * from raw.orders_backup")
        con.execute("drop table raw.orders_backup")
    finally:
        con.close()
    run_dbt("build", *DBT_BEFORE_TRAINING, warehouse=built_copy, workdir=tmp_path)
    repaired = _table_digests(built_copy, ("staging", "marts"))
    assert {t: rows for t, (rows, _) in repaired.items()} == {
        t: rows for t, (rows, _) in before.items()
    }
    assert not leftovers(built_copy)
