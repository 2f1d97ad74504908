"""Incremental dbt: staging and the feature marts build batch by batch, and a `--full-refresh`
gives exactly the rows of the chain of incremental builds.

The chain: the tiny simulated warehouse (batch 0) built, then three fabricated monthly batches
(tests/dbt/batches.py) each followed by an incremental `dbt build`: messy rows, ids an earlier
batch staged (with other content, and sent again unchanged), orders and loans whose customer
arrives in the next batch, a rejected customer sent again valid, a late order dated before an
earlier application, and a loan purpose never seen before (batch 2). A copy of the chain is then
rebuilt with `--full-refresh` and every staging, rejected, versions and feature table compared
row for row. On Spark: tests/integration/test_spark_flow.py (`make batch ENGINE=spark`, then a
full refresh compared with it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_dbt
from tests.dbt.batches import (
    COMPARED,
    ENTITIES,
    ID_RANGE,
    BatchSize,
    add_batch,
    ensure_batch_columns,
)

pytestmark = pytest.mark.slow

BUILD = ("--selector", "production_build")
BATCHES = 3
NEW_PURPOSE = "space_travel"


def new_purpose(batch: int) -> str | None:
    return NEW_PURPOSE if batch == 2 else None


def run_results(workdir: Path) -> dict[str, str]:
    results = json.loads((workdir / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"]: r["status"] for r in results}


def assert_clean(workdir: Path) -> None:
    statuses = run_results(workdir)
    bad = {k: v for k, v in statuses.items() if v not in ("success", "pass", "warn")}
    assert not bad, bad


@pytest.fixture(scope="module")
def chain(raw_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Batch 0 built, then three batches each built incrementally; the probe of the last build."""
    workdir = tmp_path_factory.mktemp("incremental")
    path = workdir / "chain.duckdb"
    shutil.copy(raw_warehouse, path)
    with duckdb.connect(str(path)) as con:
        ensure_batch_columns(con)
    run_dbt("build", *BUILD, warehouse=path, workdir=workdir)
    probe: dict = {}
    for batch in range(1, BATCHES + 1):
        with duckdb.connect(str(path)) as con:
            add_batch(con, batch, BatchSize(), new_purpose=new_purpose(batch))
            if batch == BATCHES:
                probe = plant_sentinel(con)
        run_dbt("build", *BUILD, warehouse=path, workdir=workdir)
        assert_clean(workdir)
        if batch == BATCHES:
            with duckdb.connect(str(path)) as con:
                probe["after"] = probe_state(con, probe)
                restore_sentinel(con, probe)
    full = workdir / "full.duckdb"
    shutil.copy(path, full)
    full_workdir = workdir / "full"
    full_workdir.mkdir()
    run_dbt("build", *BUILD, "--full-refresh", warehouse=full, workdir=full_workdir)
    assert_clean(full_workdir)
    return {"chain": path, "full": full, "workdir": workdir, "probe": probe}


def plant_sentinel(con: duckdb.DuckDBPyConnection) -> dict:
    """Before the last build: counts per batch, and a changed rejected row of batch 0 that a
    build reprocessing batch 0 would put back."""
    order_id = con.execute(
        "select min(order_id) from staging.stg_orders_rejected "
        "where batch_id = 0 and rejection_reason = 'unknown_customer'"
    ).fetchone()[0]
    con.execute(
        "update staging.stg_orders_rejected set rejection_reason = 'missing_amount' "
        "where order_id = ? and batch_id = 0",
        [order_id],
    )
    return {"order_id": order_id, "before": probe_state(con, {"order_id": order_id})}


def probe_state(con: duckdb.DuckDBPyConnection, probe: dict) -> dict:
    counts = {
        table: dict(con.execute(f"select batch_id, count(*) from {table} group by 1").fetchall())
        for table in COMPARED
        if not table.startswith("marts.customer_features") and table != "marts.loan_features"
    }
    reason = con.execute(
        "select rejection_reason from staging.stg_orders_rejected where order_id = ?",
        [probe["order_id"]],
    ).fetchall()
    return {"counts": counts, "reason": reason}


def restore_sentinel(con: duckdb.DuckDBPyConnection, probe: dict) -> None:
    con.execute(
        "update staging.stg_orders_rejected set rejection_reason = 'unknown_customer' "
        "where order_id = ? and batch_id = 0",
        [probe["order_id"]],
    )


@pytest.fixture(scope="module")
def con(chain: dict):
    connection = duckdb.connect(str(chain["chain"]), read_only=True)
    connection.execute(f"attach '{chain['full']}' as full_refresh (read_only)")
    yield connection
    connection.close()


# --------------------------------------------------------------------------- (a) full = chain


@pytest.mark.parametrize("table", COMPARED)
def test_full_refresh_equals_the_incremental_chain(con, table):
    rows = con.execute(f"select count(*) from {table}").fetchone()[0]
    assert rows > 0
    for left, right in ((table, f"full_refresh.{table}"), (f"full_refresh.{table}", table)):
        extra = con.execute(
            f"select count(*) from (select * from {left} except all select * from {right})"
        ).fetchone()[0]
        assert extra == 0, f"{left} has {extra} rows that {right} lacks"
    batches = {r[0] for r in con.execute(f"select distinct batch_id from {table}").fetchall()}
    if table.startswith("staging.") and not table.endswith("_rejected"):
        assert batches == set(range(BATCHES + 1))  # every batch reached every staged table


def test_the_chain_held_the_cross_batch_cases(con):
    reasons = dict(
        con.execute("""
            select rejection_reason, count(*) from (
                select rejection_reason from staging.stg_customers_rejected where batch_id > 0
                union all
                select rejection_reason from staging.stg_orders_rejected where batch_id > 0
                union all
                select rejection_reason from staging.stg_loans_rejected where batch_id > 0)
            group by 1""").fetchall()
    )
    for reason in (
        "duplicate_row",
        "duplicate_customer_id",
        "duplicate_order_id",
        "duplicate_loan_id",
        "unknown_customer",
        "ordered_in_future",
        "signup_in_future",
        "applied_in_future",
        "missing_order_id",
        "negative_amount",
    ):
        assert reasons.get(reason, 0) > 0, reason
    # an order of batch 1 whose customer arrives in batch 2: rejected, the customer staged later
    early = 2 * ID_RANGE + 1
    assert con.execute(
        "select rejection_reason, batch_id from staging.stg_orders_rejected where customer_id = ?",
        [early],
    ).fetchall() == [("unknown_customer", 1)]
    assert con.execute(
        "select batch_id from staging.stg_customers where customer_id = ?", [early]
    ).fetchall() == [(2,)]
    # an id batch 0 staged keeps batch 0's row
    assert (
        con.execute("""
            select count(*) from staging.stg_orders_rejected r
            inner join staging.stg_orders s using (order_id)
            where r.batch_id > 0 and r.rejection_reason = 'duplicate_order_id'
                and s.batch_id = 0""").fetchone()[0]
        >= BATCHES
    )
    # the new purpose is kept in its normalised form, every spelling folded into one
    purposes = dict(
        con.execute(
            "select purpose, count(*) from marts.loan_features where batch_id = 2 group by 1"
        ).fetchall()
    )
    assert purposes.get(NEW_PURPOSE, 0) >= 3
    assert not {p for p in purposes if "space" in p} - {NEW_PURPOSE}


def test_customer_versions_follow_their_batches(con):
    """One version per customer and touching batch; the features table holds the latest."""
    touched = con.execute("""
        select count(*) from (
            select customer_id, batch_id from staging.stg_customers
            union
            select customer_id, batch_id from staging.stg_orders)""").fetchone()[0]
    assert con.execute("select count(*) from marts.customer_feature_versions").fetchone()[0] == (
        touched
    )
    assert (
        con.execute("""
            select count(*) from marts.customer_features f
            inner join (select customer_id, max(batch_id) as batch_id
                        from marts.customer_feature_versions group by 1) v using (customer_id)
            where f.batch_id != v.batch_id""").fetchone()[0]
        == 0
    )
    # a version of a later batch is computed as of that batch's load: recency from Feb 1 etc.
    tenure = con.execute("""
        select v1.tenure_days - v0.tenure_days
        from marts.customer_feature_versions v0
        inner join marts.customer_feature_versions v1 using (customer_id)
        where v0.batch_id = 0 and v1.batch_id = 1
        limit 1""").fetchone()[0]
    assert tenure == 31  # 2026-01-01 -> 2026-02-01


def test_loans_see_only_orders_known_by_their_batch(con):
    """A late order (a later batch, dated before a batch-0 application) changes nothing."""
    changed = con.execute("""
        select count(*) from marts.loan_features f
        inner join staging.stg_orders o
            on o.customer_id = f.customer_id and o.ordered_at < f.applied_at
            and o.batch_id > f.batch_id""").fetchone()[0]
    assert changed > 0  # the late orders are there ...
    assert (
        con.execute("select count(*) from marts.loan_feature_versions").fetchone()[0]
        == con.execute("select count(*) from staging.stg_loans").fetchone()[0]
    )  # ... and no loan got a second version


# --------------------------------------------------------------------------- (b) per batch


@pytest.mark.parametrize("entity", ENTITIES)
def test_raw_equals_staged_plus_rejected_per_batch(con, chain, entity):
    counts = con.execute(f"""
        select r.batch_id, r.n, coalesce(s.n, 0), coalesce(j.n, 0)
        from (select batch_id, count(*) as n from raw.{entity} group by 1) r
        left join (select batch_id, count(*) as n from staging.stg_{entity} group by 1) s
            using (batch_id)
        left join (select batch_id, count(*) as n from staging.stg_{entity}_rejected group by 1) j
            using (batch_id)
        order by 1""").fetchall()
    assert [c[0] for c in counts] == list(range(BATCHES + 1))
    for batch, raw, staged, rejected in counts:
        assert raw == staged + rejected, (entity, batch)
        assert rejected > 0, (entity, batch)  # every batch brings some mess
    tested = [
        uid
        for uid, status in run_results(chain["workdir"]).items()
        if f"{entity}_raw_equals_staged_plus_rejected" in uid
    ]
    assert tested and all(run_results(chain["workdir"])[uid] == "pass" for uid in tested)


# --------------------------------------------------------------------------- (c) one batch


def test_an_incremental_build_processes_only_its_batch(chain):
    before, after = chain["probe"]["before"], chain["probe"]["after"]
    for table, counts in before["counts"].items():
        assert BATCHES not in counts, table
        new = after["counts"][table]
        # the rows of earlier batches are the same count (appended to, never rebuilt) ...
        assert {b: n for b, n in new.items() if b != BATCHES} == counts, table
    # ... and not rewritten: the changed batch-0 row survived the build (a rebuild restores it)
    assert before["reason"] == after["reason"] == [("missing_amount",)]
    # the last batch touched a few hundred customers, not every one of them
    versions = after["counts"]["marts.customer_feature_versions"]
    assert 0 < versions[BATCHES] < 0.5 * versions[0]
