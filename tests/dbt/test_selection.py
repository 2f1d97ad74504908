"""dbt's selections: the named selectors build what the old command-line selections built, and a
partial build (`--select +<model>`) on a fresh warehouse runs only the tests it can run.

Each test runs dbt (a parse at least), so the module is marked slow.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import DBT_AFTER_TRAINING, DBT_BEFORE_TRAINING, run_dbt

pytestmark = pytest.mark.slow

#: The selections the Makefile and the tests spelled out before selectors.yml, with dbt's default
#: indirect selection (`eager`): the project now sets `buildable`, which must not lose a test here.
OLD_BEFORE_TRAINING = ("--exclude", "source:ml+", "source:ml_segmentation+")
OLD_AFTER_TRAINING = ("--select", "source:ml+", "source:ml_segmentation+")
EAGER = ("--indirect-selection", "eager")


def listed(*selection: str, workdir: Path) -> set[str]:
    """unique_ids of the nodes `dbt ls` selects (models, tests, unit tests, seeds, ...)."""
    proc = run_dbt(
        "ls",
        *selection,
        "--resource-type",
        "all",
        "--output",
        "json",
        "--output-keys",
        "unique_id",
        "--quiet",
        warehouse=workdir / "warehouse.duckdb",
        workdir=workdir,
    )
    ids = {json.loads(line)["unique_id"] for line in proc.stdout.splitlines() if line.strip()}
    assert ids, proc.stdout[-2000:]
    return ids


@pytest.mark.parametrize(
    ("selector", "old"),
    [(DBT_BEFORE_TRAINING, OLD_BEFORE_TRAINING), (DBT_AFTER_TRAINING, OLD_AFTER_TRAINING)],
    ids=["before_training", "after_training"],
)
def test_selectors_select_what_the_old_flags_selected(selector, old, tmp_path):
    new = listed(*selector, workdir=tmp_path)
    assert new == listed(*old, *EAGER, workdir=tmp_path)
    assert any(uid.startswith("test.") for uid in new)


def test_the_two_selectors_split_the_project(tmp_path):
    before = listed(*DBT_BEFORE_TRAINING, workdir=tmp_path)
    after = listed(*DBT_AFTER_TRAINING, workdir=tmp_path)
    assert not before & after
    models = {uid.split(".")[-1] for uid in before | after if uid.startswith("model.")}
    assert {
        "stg_orders_classified",
        "loan_features",
        "loan_decisions",
        "segment_profiles",
    } <= models


def test_a_partial_build_on_a_fresh_warehouse_succeeds(raw_warehouse, tmp_path):
    """`+loan_features` builds the staging it needs, not customer_features: the tests that read a
    model outside the selection (loan_features -> customer_features, raw = staged + rejected)
    are left out instead of failing on a missing table."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(raw_warehouse, warehouse)
    run_dbt("build", "--select", "+loan_features", warehouse=warehouse, workdir=tmp_path)
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    built = {uid.split(".")[-1] for uid in statuses if uid.startswith("model.")}
    assert "loan_features" in built and "customer_features" not in built
    assert sum(uid.startswith("test.") for uid in statuses) > 20  # its own tests still run
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select count(*) from marts.loan_features").fetchone()[0]
    assert rows > 0
