"""Shared fixtures: every test builds its own tiny warehouse in a temporary folder.

Tests never touch the user's warehouse: each fixture sets WAREHOUSE_PATH for the subprocesses it
starts, and dbt writes its target/ and logs/ into the temporary folder too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# pytest-xdist runs tests in workers whose __main__ has no __file__; pyspark takes that for its
# own doctest runner and exits the process when Great Expectations imports pyspark.sql.connect
# (pyspark/sql/connect/utils.py). Commands (`python -m ...`) have a real __main__.
if not hasattr(sys.modules["__main__"], "__file__") and sys.modules["__main__"].__spec__ is None:
    sys.modules["__main__"].__file__ = __file__

# Every Spark JVM the tests start (in-process sessions, dbt, commands) runs short jobs on small
# data: without the optimising JIT compiler each starts and runs them ~10 % faster (profiles.yml).
os.environ.setdefault("SPARK_DRIVER_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1")

ROOT = Path(__file__).resolve().parents[1]
#: The longest test modules, longest first (seconds in a whole `make test` on 3 workers,
#: 2026-12-06, where the Spark flow, about 1,100, is the run's longest path), then a
#: short one: they start first, so that no worker begins one of them when the others are nearly
#: done (longest processing time first). `--no-loadscope-reorder` (pyproject.toml) keeps this
#: order: xdist otherwise sorts modules by their number of tests. xdist hands each worker a
#: second module at the start: the Spark flow's worker gets the short one.
LONGEST_FIRST = (
    "tests/integration/test_spark_flow.py",  # ~1,100
    "tests/integration/test_make_run_and_batch.py",  # ~500
    "tests/scripts/test_bench.py",  # ~240
    "tests/ml/core/test_files.py",  # a few seconds: the Spark flow's worker's second module
    "tests/integration/test_train_predict.py",  # ~230
    "tests/integration/test_governance.py",  # ~210
    "tests/integration/test_faults.py",  # ~160
    "tests/api/test_server.py",  # ~90
)
DBT = Path(sys.executable).with_name("dbt")
TINY_CUSTOMERS = 3000
#: `dbt build` before ml.train has run: everything but the marts over ml.* predictions.
DBT_BEFORE_TRAINING = ("--selector", "before_training")
#: `dbt build` after ml.train and ml.segment: the marts over their tables.
DBT_AFTER_TRAINING = ("--selector", "after_training")
TINY_SEED = 7


def run_cli(
    args: list[str],
    env_extra: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 1200,
) -> subprocess.CompletedProcess[str]:
    """Run a command from the repository root with the test's environment; capture its output."""
    env = {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        **(env_extra or {}),
    }
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
        )
    return proc


def run_python(
    module: str,
    *args: str,
    warehouse: Path,
    check: bool = True,
    env_extra: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`python -m module args...` against the given warehouse."""
    return run_cli(
        [sys.executable, "-m", module, *args],
        env_extra={"WAREHOUSE_PATH": str(warehouse), **(env_extra or {})},
        check=check,
    )


def run_dbt(
    command: str, *args: str, warehouse: Path, workdir: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`dbt <command>` on the project, with target/ and logs/ kept in `workdir`."""
    return run_cli(
        [
            str(DBT),
            command,
            "--project-dir",
            str(ROOT / "dbt_project"),
            "--profiles-dir",
            str(ROOT),
            "--target-path",
            str(workdir / "target"),
            "--log-path",
            str(workdir / "logs"),
            *args,
        ],
        env_extra={"WAREHOUSE_PATH": str(warehouse)},
        check=check,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the LONGEST_FIRST modules first; every other test keeps its order."""
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}

    def key(item: pytest.Item) -> int:
        path = Path(str(item.path)).resolve()
        return (
            rank.get(path.relative_to(ROOT).as_posix(), len(rank))
            if ROOT in path.parents
            else len(rank)
        )

    items.sort(key=key)


@pytest.fixture(scope="session")
def raw_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding only raw.* and sim.* from the simulator (3,000 customers, seed 7)."""
    path = tmp_path_factory.mktemp("raw") / "warehouse.duckdb"
    run_python(
        "scripts.simulate",
        "--customers",
        str(TINY_CUSTOMERS),
        "--seed",
        str(TINY_SEED),
        warehouse=path,
    )
    return path


@pytest.fixture(scope="session")
def built_warehouse(raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny warehouse after a full `dbt build` (staging, marts, tests). Do not modify it."""
    workdir = tmp_path_factory.mktemp("built")
    path = workdir / "warehouse.duckdb"
    shutil.copy(raw_warehouse, path)
    run_dbt("build", *DBT_BEFORE_TRAINING, warehouse=path, workdir=workdir)
    return path


@pytest.fixture()
def built_copy(built_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the built warehouse that a test may change."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse, path)
    return path
