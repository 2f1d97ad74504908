"""The Spark lakehouse the Spark tests of a test process share (pytest plugin: fixtures only).

A Spark session costs ~11 s to start and a process holds one, bound to one lakehouse (its Derby
metastore allows one process at a time). So every Spark test of a process uses the ONE lakehouse
of `spark_lakehouse`, under a temporary folder, opened once; a test that needs a lakehouse of its
own (a process to kill) runs it in a subprocess. Tests writing to the shared lakehouse use table
names of their own.

Register the plugin once (tests/conftest.py: `pytest_plugins = ("tests.spark_fixtures",)`), or
import the fixtures into a conftest.py, or call `lakehouse` / `features` from a fixture of your
own: the lakehouse is made once per process whichever way it is reached.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.core.warehouse import open_warehouse

#: The feature marts and the simulator's truth the model tests read (copied from DuckDB).
FEATURE_RELATIONS = (
    "marts.loan_features",
    "marts.customer_features",
    "sim.loan_truth",
    "sim.customer_truth",
)

_MADE: dict[str, Path] = {}  # fixture -> its value: once per process, however it is registered


def lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of this test process's Spark lakehouse, its session started (once)."""
    if "lakehouse" not in _MADE:
        path = tmp_path_factory.mktemp("spark") / "lakehouse"
        open_warehouse(path, engine="spark").close()
        _MADE["lakehouse"] = path
    return _MADE["lakehouse"]


def features(tmp_path_factory: pytest.TempPathFactory, built_warehouse: Path) -> Path:
    """`lakehouse`, holding FEATURE_RELATIONS of the tiny built DuckDB warehouse (copied through
    the warehouse interface, once)."""
    path = lakehouse(tmp_path_factory)
    if "features" not in _MADE:
        with open_warehouse(built_warehouse, engine="duckdb", read_only=True) as duck:
            tables = {relation: duck.read_arrow(relation) for relation in FEATURE_RELATIONS}
        with open_warehouse(path, engine="spark") as wh:
            wh.replace_tables(tables)
        _MADE["features"] = path
    return _MADE["features"]


@pytest.fixture(scope="session")
def spark_lakehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of this test process's Spark lakehouse, its session started."""
    return lakehouse(tmp_path_factory)


@pytest.fixture(scope="session")
def spark_features(tmp_path_factory: pytest.TempPathFactory, built_warehouse: Path) -> Path:
    """The shared lakehouse holding FEATURE_RELATIONS of the tiny built DuckDB warehouse. Do not
    modify those tables."""
    return features(tmp_path_factory, built_warehouse)
