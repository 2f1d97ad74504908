"""Spark without Delta: a table is replaced by writing it whole aside, then switching the metastore
to it; a writer killed at any moment leaves the previous table whole and readable after reopening.

The kill itself (SIGKILL of a scoring process, its JVM and Python workers, between the two renames
of the switch) runs in subprocesses on a lakehouse of their own: a Derby metastore allows one
process at a time. Every moment of the switch is also checked in this process, on the shared
lakehouse, by stopping the switch there with an exception.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from ml.core.config import PROJECT_ROOT
from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import open_warehouse
from ml.core.warehouse import spark as spark_engine
from ml.serving.bundle import save_bundle
from ml.training.data import prepare_task
from ml.training.records import make_bundle
from ml.training.zoo import base_estimator, make_pipeline
from tests import spark_fixtures

pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared lakehouse of this test process (tests/spark_fixtures.py)."""
    return spark_fixtures.lakehouse(tmp_path_factory)


class _Killed(BaseException):
    """Stands for a kill at a moment of the switch."""


def _stray_tables(wh) -> list[str]:
    names = wh.query("show tables in ml")["tableName"]
    return sorted(n for n in names if n.endswith(("__new", "__old")))


def _folders(root: Path, table: str) -> list[str]:
    return sorted(p.name for p in (root / "tables" / "ml.db").glob(f"{table}__*"))


@pytest.mark.parametrize(
    ("stage", "kept"), [("written", "old"), ("renamed", "old"), ("switched", "new")]
)
def test_a_switch_stopped_at_any_moment_is_repaired_on_open(
    lakehouse, monkeypatch, stage, kept
) -> None:
    table = f"switch_{stage}"
    relation = f"ml.{table}"
    frames = {"old": pd.DataFrame({"x": [1, 2, 3]}), "new": pd.DataFrame({"x": [7, 8]})}

    def stop(at: str, _relation: str) -> None:
        if at == stage:
            raise _Killed(at)

    with open_warehouse(lakehouse, engine="spark") as wh:
        wh.replace_table(relation, frames["old"])
        monkeypatch.setattr(spark_engine, "_test_pause", stop)
        with pytest.raises(_Killed):
            wh.replace_table(relation, frames["new"])
        monkeypatch.undo()
        assert wh.exists(relation) is (stage != "renamed")
        assert _stray_tables(wh)
    with open_warehouse(lakehouse, engine="spark", read_only=True) as wh:
        assert wh.read_frame(relation)["x"].tolist() == frames[kept]["x"].tolist()
        assert _stray_tables(wh) == []
        assert wh.sql_types(relation) == {"x": "BIGINT"}
    assert len(_folders(lakehouse, table)) == 1  # the dropped table's folder is gone


#: The scoring process: lands the rows, scores them once (the previous predictions), then scores
#: again with the switch paused at STAGE (where the test kills it).
KILLED = textwrap.dedent(
    """
    import os, sys
    import pyarrow.parquet as pq
    from ml.core.warehouse import open_warehouse
    from ml.core.warehouse.spark import TEST_PAUSE_SWITCH
    from ml.serving.batch import score_table
    from ml.serving.bundle import load_bundle
    from ml.serving.model import TrainedModel

    rows, bundle, sha256, previous, stage = sys.argv[1:6]
    model = TrainedModel.of(load_bundle(bundle, sha256))
    with open_warehouse() as wh:
        wh.replace_table("marts.loan_features", pq.read_table(rows))
        score_table(wh, model, "marts.loan_features", "ml.loan_scores")
        pq.write_table(wh.read_arrow("ml.loan_scores"), previous)
        os.environ[TEST_PAUSE_SWITCH] = stage + ":300"
        score_table(wh, model, "marts.loan_features", "ml.loan_scores")
    print("not killed")
    """
)
#: The process reopening the lakehouse after the kill.
REOPENED = textwrap.dedent(
    """
    import sys
    import pyarrow.parquet as pq
    from ml.core.warehouse import open_warehouse

    with open_warehouse(read_only=True) as wh:
        pq.write_table(wh.read_arrow("ml.loan_scores"), sys.argv[1])
        names = wh.query("show tables in ml")["tableName"].tolist()
    print(" ".join(sorted(names)))
    """
)


def _env(lake: Path, artifacts: Path) -> dict[str, str]:
    return {
        **os.environ,
        "WAREHOUSE_ENGINE": "spark",
        "WAREHOUSE_PATH": str(lake),
        "ARTIFACTS_PATH": str(artifacts),
        "PYTHONPATH": str(PROJECT_ROOT),
    }


def _kill_when_paused(proc: subprocess.Popen, marker: str, timeout: float = 300) -> list[str]:
    """Read the process's stderr until the pause line, then SIGKILL its whole process group
    (after `timeout` seconds in any case)."""
    seen = []
    kill = functools.partial(os.killpg, proc.pid, signal.SIGKILL)
    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        for line in proc.stderr:
            seen.append(line)
            if line.startswith(marker):
                kill()
                break
    finally:
        timer.cancel()
    proc.wait(timeout=60)
    return seen


@pytest.mark.slow  # two Spark processes (~15 s each to start)
def test_a_killed_scoring_job_leaves_the_previous_table(built_warehouse, tmp_path) -> None:
    with open_warehouse(built_warehouse, engine="duckdb", read_only=True) as wh:
        data = prepare_task(wh, BUILTIN_TASKS["loan_repayment"])
        pq.write_table(wh.read_arrow("marts.loan_features"), tmp_path / "rows.parquet")
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    estimator = base_estimator("xgboost", "binary", data.y, 0).set_params(n_estimators=10)
    pipeline = make_pipeline(data.features, estimator).fit(X, data.y)
    bundle = make_bundle(data, "run-kill", "xgboost", pipeline, 0.4, seed=0)
    path, digest = save_bundle(bundle, tmp_path / "model")
    env = _env(tmp_path / "lake", tmp_path / "artifacts")
    args = [str(tmp_path / "rows.parquet"), str(path), digest, str(tmp_path / "previous.parquet")]
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, *args, "renamed"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the JVM and Python workers die with it
    )
    seen = _kill_when_paused(proc, f"{spark_engine.TEST_PAUSE_SWITCH}: ml.loan_scores renamed")
    assert proc.returncode == -signal.SIGKILL, "".join(seen[-40:])
    assert "not killed" not in proc.stdout.read()
    reopened = subprocess.run(
        [sys.executable, "-c", REOPENED, str(tmp_path / "after.parquet")],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert reopened.returncode == 0, reopened.stderr[-4000:]
    assert reopened.stdout.split() == ["loan_scores"]  # no table left under a temporary name
    previous = pq.read_table(tmp_path / "previous.parquet")
    after = pq.read_table(tmp_path / "after.parquet")
    assert after.num_rows == previous.num_rows == data.frame.shape[0]
    assert after.sort_by("loan_id").equals(previous.sort_by("loan_id"))
    assert len(_folders(tmp_path / "lake", "loan_scores")) == 1
