"""The dbt project: staging keeps or rejects every raw row, feature tables honour the data contract,
the project is documented and tested, nothing reads sim.*, and prior-order features do not leak.

Most tests read the tiny warehouse built once by the `built_warehouse` fixture (and the dbt
artifacts it left in its target/); the mutation test rebuilds a private copy with crafted rows.
Every test here needs that dbt build, so the module is marked slow.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from tests.conftest import DBT_BEFORE_TRAINING, ROOT, run_dbt

pytestmark = pytest.mark.slow

ENTITIES = {"customers": "customer_id", "orders": "order_id", "loans": "loan_id"}
AS_OF = pd.Timestamp("2026-01-01")
#: The batch columns of a raw row the simulator lands: batch 0, loaded on the as-of date.
BATCH_0 = "0, timestamp '2026-01-01 00:00:00'"

#: Rejection reasons per entity, in the order the contract gives them, then the id conflict.
REASONS = {
    "customers": [
        "missing_customer_id",
        "duplicate_row",
        "age_out_of_range",
        "signup_in_future",
        "duplicate_customer_id",
    ],
    "orders": [
        "missing_order_id",
        "duplicate_row",
        "unknown_customer",
        "missing_amount",
        "negative_amount",
        "ordered_in_future",
        "duplicate_order_id",
    ],
    "loans": [
        "missing_loan_id",
        "duplicate_row",
        "unknown_customer",
        "non_positive_amount",
        "credit_score_out_of_range",
        "applied_in_future",
        "duplicate_loan_id",
    ],
}


def contract_columns(table: str) -> list[tuple[str, str]]:
    """(column, TYPE) pairs of a `## marts.<table>` section of docs/data_contract.md, in order."""
    text = (ROOT / "docs" / "data_contract.md").read_text()
    section = re.search(rf"^## marts\.{table}\b.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert section, f"marts.{table} is missing from the data contract"
    columns: list[tuple[str, str]] = []
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or cells[0] in ("column", "") or set(cells[0]) <= {"-", " "}:
            continue
        for name in cells[0].split(","):
            columns.append((name.strip().strip("`"), cells[1].upper()))
    return columns


@pytest.fixture(scope="module")
def con(built_warehouse: Path):
    connection = duckdb.connect(str(built_warehouse), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def target_dir(built_warehouse: Path) -> Path:
    """The target/ the built_warehouse fixture's `dbt build` wrote (next to the warehouse)."""
    target = built_warehouse.parent / "target"
    assert (target / "manifest.json").exists(), f"no dbt manifest in {target}"
    return target


@pytest.fixture(scope="module")
def manifest(target_dir: Path) -> dict[str, Any]:
    return json.loads((target_dir / "manifest.json").read_text())


def project_models(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["package_name"] == "predictive_warehouse"
    }


def count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchone()[0])


# --------------------------------------------------------------------------- staging


@pytest.mark.parametrize("entity", ENTITIES)
def test_raw_rows_equal_staged_plus_rejected(con, entity):
    raw = count(con, f"select count(*) from raw.{entity}")
    staged = count(con, f"select count(*) from staging.stg_{entity}")
    rejected = count(con, f"select count(*) from staging.stg_{entity}_rejected")
    assert raw == staged + rejected
    assert staged > 0.9 * raw  # the mess is a few percent, not most of the data
    assert rejected > 0  # the simulator always lands some mess


@pytest.mark.parametrize("entity", ENTITIES)
def test_rejected_rows_are_raw_rows_unchanged_with_a_reason(con, entity):
    raw_cols = con.execute(f"describe raw.{entity}").fetchall()
    rejected_cols = con.execute(f"describe staging.stg_{entity}_rejected").fetchall()
    assert [(c[0], c[1]) for c in rejected_cols] == [(c[0], c[1]) for c in raw_cols] + [
        ("rejection_reason", "VARCHAR")
    ]
    # every rejected row is a raw row (as a multiset: a duplicate's copies are all raw rows)
    assert (
        count(
            con,
            f"""
        select count(*) from (
            select * exclude (rejection_reason) from staging.stg_{entity}_rejected
            except all
            select * from raw.{entity}
        )""",
        )
        == 0
    )
    reasons = {
        r[0]
        for r in con.execute(
            f"select distinct rejection_reason from staging.stg_{entity}_rejected"
        ).fetchall()
    }
    assert reasons <= set(REASONS[entity])
    assert "duplicate_row" in reasons  # the simulator lands exact duplicates of every entity


@pytest.mark.parametrize("entity", ENTITIES)
def test_staged_entities_have_one_row_per_id(con, entity):
    key = ENTITIES[entity]
    rows, ids, nulls = con.execute(
        f"select count(*), count(distinct {key}), count(*) - count({key}) from staging.stg_{entity}"
    ).fetchone()
    assert nulls == 0
    assert rows == ids


def test_staged_orders_and_loans_belong_to_staged_customers(con):
    for entity in ("orders", "loans"):
        assert (
            count(
                con,
                f"""
            select count(*) from staging.stg_{entity}
            anti join staging.stg_customers using (customer_id)""",
            )
            == 0
        )
    # orders of a customer rejected in staging are rejected too, as unknown_customer
    assert (
        count(
            con,
            """
        select count(*) from staging.stg_orders_rejected o
        semi join staging.stg_customers_rejected c using (customer_id)
        anti join staging.stg_customers s using (customer_id)
        where o.rejection_reason not in ('missing_order_id', 'duplicate_row', 'unknown_customer')
        """,
        )
        == 0
    )


def test_categories_are_canonical(con):
    allowed = {
        ("stg_customers", "gender"): {"female", "male", "other"},
        ("stg_customers", "region"): {"north", "south", "east", "west", "central"},
        ("stg_customers", "segment"): {"bargain_hunter", "loyal", "premium", "occasional"},
        ("stg_orders", "category"): {
            "electronics",
            "fashion",
            "grocery",
            "home",
            "beauty",
            "sports",
        },
        ("stg_orders", "channel"): {"web", "mobile_app", "store"},
        ("stg_loans", "grade"): set("ABCDEFG"),
        ("stg_loans", "home_ownership"): {"rent", "own", "mortgage", "other"},
    }
    for (table, column), values in allowed.items():
        seen = {
            r[0]
            for r in con.execute(
                f"select distinct {column} from staging.{table} where {column} is not null"
            ).fetchall()
        }
        assert seen == values, (table, column)  # all spellings found, nothing else
    assert {
        r[0] for r in con.execute("select distinct term_months from staging.stg_loans").fetchall()
    } == {36, 60}


# --------------------------------------------------------------------------- feature tables


@pytest.mark.parametrize("table", ["customer_features", "loan_features"])
def test_feature_tables_match_the_data_contract(con, manifest, table):
    expected = contract_columns(table)
    assert len(expected) > 20
    node = project_models(manifest)[table]
    assert node["config"]["contract"]["enforced"] is True
    # contracts say `string`, the type both engines accept; DuckDB calls it VARCHAR
    declared = [
        (c["name"], (c.get("data_type") or "").upper().replace("STRING", "VARCHAR"))
        for c in node["columns"].values()
    ]
    assert declared == expected
    actual = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' and table_name = ? order by ordinal_position",
        [table],
    ).fetchall()
    assert [(name, dtype.upper()) for name, dtype in actual] == expected


def test_feature_tables_cover_every_staged_entity_once(con):
    assert count(con, "select count(*) from marts.customer_features") == count(
        con, "select count(*) from staging.stg_customers"
    )
    assert count(con, "select count(*) from marts.loan_features") == count(
        con, "select count(*) from staging.stg_loans"
    )


def test_customer_order_features_match_an_independent_computation(con):
    features = (
        con.execute("""
        select customer_id, order_count, total_spend, orders_last_90d, recency_days
        from marts.customer_features""")
        .df()
        .set_index("customer_id")
    )
    orders = con.execute("select customer_id, ordered_at, amount from staging.stg_orders").df()
    grouped = orders.groupby("customer_id")
    last_90d = orders[orders["ordered_at"] >= AS_OF - pd.Timedelta(days=90)]
    expected = pd.DataFrame(
        {
            "order_count": grouped.size(),
            "total_spend": grouped["amount"].sum(),
            "orders_last_90d": last_90d.groupby("customer_id").size(),
            "recency_days": (AS_OF - grouped["ordered_at"].max().dt.normalize()).dt.days,
        }
    ).reindex(features.index)
    expected[["order_count", "total_spend", "orders_last_90d"]] = expected[
        ["order_count", "total_spend", "orders_last_90d"]
    ].fillna(0)
    assert (features["order_count"] == expected["order_count"]).all()
    assert (features["orders_last_90d"] == expected["orders_last_90d"]).all()
    assert ((features["total_spend"] - expected["total_spend"]).abs() < 1e-6).all()
    has_orders = features["order_count"] > 0
    assert (
        features.loc[has_orders, "recency_days"] == expected.loc[has_orders, "recency_days"]
    ).all()
    assert features.loc[~has_orders, "recency_days"].isna().all()


def test_prior_order_features_use_only_orders_strictly_before_the_application(con):
    loans = con.execute("""
        select loan_id, customer_id, applied_at, prior_order_count, prior_total_spend,
            days_since_last_order
        from marts.loan_features""").df()
    orders = con.execute("select customer_id, ordered_at, amount from staging.stg_orders").df()
    pairs = loans.merge(orders, on="customer_id", how="left")
    prior = pairs[pairs["ordered_at"] < pairs["applied_at"]]
    expected = prior.groupby("loan_id").agg(
        n=("ordered_at", "size"), spend=("amount", "sum"), last=("ordered_at", "max")
    )
    merged = loans.set_index("loan_id").join(expected)
    assert (merged["prior_order_count"] == merged["n"].fillna(0)).all()
    assert ((merged["prior_total_spend"] - merged["spend"].fillna(0)).abs() < 1e-6).all()
    days = (merged["applied_at"].dt.normalize() - merged["last"].dt.normalize()).dt.days
    assert merged["days_since_last_order"].astype("Float64").equals(days.astype("Float64"))
    # the check has teeth: most applicants also have orders after applying
    later = pairs[pairs["ordered_at"] >= pairs["applied_at"]]
    assert later["loan_id"].nunique() > 0.2 * len(loans)


# --------------------------------------------------------------------------- project hygiene


def test_build_was_clean(target_dir):
    results = json.loads((target_dir / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses
    assert {s for s in statuses.values()} <= {"success", "pass"}, {
        k: v for k, v in statuses.items() if v not in ("success", "pass")
    }


def test_project_has_enough_data_tests_and_unit_tests(manifest):
    data_tests = [n for n in manifest["nodes"].values() if n["resource_type"] == "test"]
    unit_tests = list(manifest.get("unit_tests", {}).values())
    assert len(data_tests) >= 40
    assert len(unit_tests) >= 3
    tested_models = {u["model"] for u in unit_tests}
    # bucket logic and staging logic have unit tests
    assert "int_customers_bucketed" in tested_models
    assert {f"stg_{e}_classified" for e in ENTITIES} <= tested_models
    # raw = staged + rejected: one generic test, applied to each staged entity
    reconciled = {
        n["attached_node"].split(".")[-1]
        for n in data_tests
        if n.get("test_metadata", {}).get("name") == "raw_equals_staged_plus_rejected"
    }
    assert reconciled == {f"stg_{e}" for e in ENTITIES}


def test_every_model_column_source_and_macro_is_described(con, manifest):
    models = project_models(manifest)
    assert len(models) >= 16
    for name, node in models.items():
        assert node["description"].strip(), f"model {name} has no description"
        if "ml_scores" in node["tags"]:
            continue  # built after ml.train: tests/integration/test_train_predict.py checks them
        if node["config"]["materialized"] == "ephemeral":
            built = [r[0] for r in con.execute(f"describe ({node['compiled_code']})").fetchall()]
        else:
            built = [
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns where table_name = ? "
                    "order by ordinal_position",
                    [name],
                ).fetchall()
            ]
        assert built, f"model {name} has no columns"
        documented = {c: v["description"].strip() for c, v in node["columns"].items()}
        undocumented = [c for c in built if not documented.get(c)]
        assert not undocumented, f"{name}: columns without a description: {undocumented}"
        assert set(documented) <= set(built), f"{name}: documented columns that do not exist"
    for source in manifest["sources"].values():
        assert source["description"].strip()
        if source["schema"] == "ml":
            continue  # written by ml.train: tests/integration/test_train_predict.py checks them
        built = [
            r[0] for r in con.execute(f"describe {source['schema']}.{source['name']}").fetchall()
        ]
        assert [c for c in built if not source["columns"].get(c, {}).get("description")] == []
    for macro in manifest["macros"].values():
        engine_implementation = "__" in macro["name"]  # duckdb__x: described with x
        if macro["package_name"] == "predictive_warehouse" and not engine_implementation:
            assert macro["description"].strip(), f"macro {macro['name']} has no description"


def test_no_model_reads_sim(manifest):
    assert all(s["schema"] != "sim" for s in manifest["sources"].values())
    sim_ref = re.compile(r"""(^|[\s".])sim"?\s*\.""", re.I)
    nodes = [n for n in manifest["nodes"].values() if n["package_name"] == "predictive_warehouse"]
    for node in nodes:
        for parent in node["depends_on"].get("nodes", []):
            if parent.startswith("source."):
                # raw.* feeds the features; ml.* (predictions) feeds only the marts over them
                assert manifest["sources"][parent]["schema"] in {"raw", "ml"}, (
                    node["name"],
                    parent,
                )
        assert not sim_ref.search(node["raw_code"]), f"{node['name']} mentions sim.*"
    # the feature tables reach raw.* only, through staging
    models = project_models(manifest)

    def upstream_sources(unique_id: str) -> set[str]:
        node = manifest["nodes"].get(unique_id)
        if node is None:
            return {unique_id} if unique_id.startswith("source.") else set()
        return set().union(
            *(upstream_sources(p) for p in node["depends_on"].get("nodes", [])), set()
        )

    for table in ("customer_features", "loan_features"):
        sources = upstream_sources(models[table]["unique_id"])
        assert sources and {manifest["sources"][s]["schema"] for s in sources} == {"raw"}


def test_schemas_are_raw_staging_marts(con):
    schemas = {
        r[0]
        for r in con.execute(
            "select distinct table_schema from information_schema.tables"
        ).fetchall()
    }
    assert {"raw", "staging", "marts"} <= schemas
    assert not {s for s in schemas if s.startswith("main_") or s.endswith("_staging")}
    assert (
        count(con, "select count(*) from information_schema.tables where table_schema = 'main'")
        == 0
    )


# --------------------------------------------------------------------------- messy input


def test_crafted_mess_is_rejected_and_features_do_not_leak(built_copy, tmp_path):
    """Add conflicting ids, unknown spellings and orders at/just before an application; rebuild."""
    with duckdb.connect(str(built_copy)) as db:
        loan_id, customer_id, applied_at, prior = db.execute("""
            select loan_id, customer_id, applied_at, prior_order_count
            from marts.loan_features
            inner join staging.stg_customers using (customer_id)
            where signup_date < date '2025-12-01'
            order by loan_id
            limit 1""").fetchone()
        next_order = count(db, "select max(order_id) + 1 from raw.orders")
        first_customer = db.execute(
            "select * from raw.customers where customer_id = ?", [customer_id]
        ).fetchone()
        # rows of batch 0 (the batch the simulator landed), rebuilt with --full-refresh below
        db.execute(
            f"""
            insert into raw.orders values
                (?, ?, ?, 10.0, 0.1, 1, 'Home', 'Mobile App', false, {BATCH_0}),
                (?, ?, ? - interval 1 second, 20.0, 0.1, 1, '  GROCERY ', 'web', false, {BATCH_0}),
                (?, ?, ? + interval 1 day, 30.0, 0.1, 1, 'knitting', 'carrier pigeon', false,
                 {BATCH_0})
            """,
            [
                next_order,
                customer_id,
                applied_at,
                next_order + 1,
                customer_id,
                applied_at,
                next_order + 2,
                customer_id,
                applied_at,
            ],
        )
        # the same customer id again with different content and a later signup: must lose
        conflicting = list(first_customer)
        conflicting[1] = 42 if first_customer[1] != 42 else 43  # age
        conflicting[3] = "Nonbinary"  # gender
        conflicting[7] = first_customer[7] + timedelta(days=1)  # signup_date
        db.execute(
            f"insert into raw.customers values ({', '.join('?' * len(conflicting))})", conflicting
        )
    # every data test still holds (a full refresh: the rows joined a batch already staged)
    run_dbt("build", *DBT_BEFORE_TRAINING, "--full-refresh", warehouse=built_copy, workdir=tmp_path)
    with duckdb.connect(str(built_copy), read_only=True) as db:
        new_prior = db.execute(
            "select prior_order_count from marts.loan_features where loan_id = ?", [loan_id]
        ).fetchone()[0]
        assert new_prior == prior + 1  # the order 1 s before counts; at and after do not
        reason = db.execute(
            """select rejection_reason from staging.stg_customers_rejected
            where customer_id = ? and age = ?""",
            [customer_id, conflicting[1]],
        ).fetchall()
        assert reason == [("duplicate_customer_id",)]
        assert (
            count(
                db,
                f"select count(*) from staging.stg_customers where customer_id = {customer_id}"
                f" and signup_date = '{first_customer[7]}'",
            )
            == 1
        )
        categories = db.execute(
            """select category, channel from staging.stg_orders
            where order_id >= ? order by order_id""",
            [next_order],
        ).fetchall()
        assert categories == [("home", "mobile_app"), ("grocery", "web"), (None, None)]
        for entity in ENTITIES:
            raw = count(db, f"select count(*) from raw.{entity}")
            assert raw == count(db, f"select count(*) from staging.stg_{entity}") + count(
                db, f"select count(*) from staging.stg_{entity}_rejected"
            )


def test_ml_tasks_are_exposures_over_features_and_predictions(manifest):
    exposures = [e for e in manifest["exposures"].values() if e["type"] == "ml"]
    assert len(exposures) >= 3
    for exposure in exposures:
        parents = exposure["depends_on"]["nodes"]
        assert any(p.endswith(("customer_features", "loan_features")) for p in parents)
        assert any(p.startswith("source.") and ".ml." in p for p in parents), exposure["name"]
        assert exposure["description"].strip()
