"""Step 3 of a size: the SQL `dbt build` ran, replayed in DuckDB alone, for dbt's overhead.

The SAME compiled SQL (target/manifest.json, and run_results.json for unit tests), in dependency
order, on a copy of the same raw warehouse opened through the warehouse interface under dbt's
catalog name (the compiled SQL names it): models as `create or replace table|view ... as
<compiled_code>`, the seed loaded from its CSV, every data test as `select count(*) from
(<compiled_code>)`, and a unit test's SQL (its model over fixture CTEs) just before its model,
should a build run unit tests.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ml.bench.process import self_cpu
from ml.core.config import DBT_PROJECT_DIR
from ml.core.names import quote_ident
from ml.core.warehouse import Warehouse, open_warehouse

#: Statement kinds whose SQL counts failing rows.
COUNTING = ("test", "unit_test")


def dependency_order(ids: list[str], manifest: dict[str, Any]) -> list[str]:
    """`ids` in dependency order (dbt's execution order among nodes ready at the same time).

    Dependencies through nodes that are not in `ids` (ephemeral models, inlined as CTEs) count:
    a model reading an ephemeral model waits for what the ephemeral model reads.
    """
    position = {uid: i for i, uid in enumerate(ids)}
    wanted = set(ids)
    nodes = manifest["nodes"]

    def parents(uid: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for dep in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []):
            if dep in seen:
                continue
            seen.add(dep)
            found |= {dep} if dep in wanted else parents(dep, seen)
        return found

    deps = {uid: parents(uid, set()) for uid in ids}
    done: set[str] = set()
    order: list[str] = []
    pending = sorted(ids, key=position.get)
    while pending:
        ready = [uid for uid in pending if deps[uid] <= done]
        if not ready:  # a cycle cannot happen in dbt; keep dbt's order for what is left
            ready = pending
        for uid in ready:
            done.add(uid)
            order.append(uid)
        pending = [uid for uid in pending if uid not in done]
    return order


def _seed_sql(node: dict[str, Any]) -> str:
    csv = DBT_PROJECT_DIR / node["original_file_path"]
    types = node["config"].get("column_types") or {}
    options = ""
    if types:
        typed = ", ".join(f"'{c}': '{t}'" for c, t in types.items())
        options = f", types = {{{typed}}}"
    literal = "'" + str(csv).replace("'", "''") + "'"
    return (
        f"create or replace table {node['relation_name']} as "
        f"select * from read_csv({literal}, header = true{options})"
    )


def _node_sql(node: dict[str, Any]) -> str | None:
    """A built node's statement (None for an ephemeral model: it is inlined where used)."""
    kind = node["resource_type"]
    if kind == "seed":
        return _seed_sql(node)
    if kind == "model":
        materialized = node["config"]["materialized"]
        if materialized == "ephemeral":
            return None
        what = "view" if materialized == "view" else "table"
        return f"create or replace {what} {node['relation_name']} as (\n{node['compiled_code']}\n)"
    return f"select count(*) as failures from (\n{node['compiled_code']}\n) as dbt_test"


def replay_statements(target: Path) -> list[tuple[str, str, str]]:
    """(unique_id, kind, SQL) of every node `dbt build` ran, in dependency order.

    A unit test's SQL (its model's compiled code over fixture CTEs, as run_results.json records
    it) runs just before its model, as dbt runs it.
    """
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit_tests: dict[str, list[tuple[str, str, str]]] = {}
    for r in results:
        uid = r["unique_id"]
        if uid.startswith("unit_test.") and r.get("compiled_code"):
            sql = f"select count(*) as failures from (\n{r['compiled_code']}\n) as dbt_unit_test"
            model = manifest.get("unit_tests", {}).get(uid, {}).get("depends_on", {})
            parent = next(iter(model.get("nodes", [])), "")
            unit_tests.setdefault(parent, []).append((uid, "unit_test", sql))
    ids = [
        r["unique_id"]
        for r in results
        if r["unique_id"].split(".")[0] in {"model", "seed", "test"}
        and r["status"] in {"success", "pass", "warn", "fail"}
    ]
    statements = []
    order = dependency_order(ids, manifest)
    for parent in [p for p in unit_tests if p not in order]:  # model not built: run them first
        statements += unit_tests.pop(parent)
    for uid in order:
        statements += unit_tests.pop(uid, [])
        node = manifest["nodes"][uid]
        sql = _node_sql(node)
        if sql is not None:
            statements.append((uid, node["resource_type"], sql))
    return statements


def _catalog_and_schemas(target: Path) -> tuple[str, list[tuple[str, str]]]:
    """dbt's database (the catalog its compiled SQL names) and the (database, schema) pairs of
    the models and seeds."""
    nodes = json.loads((target / "manifest.json").read_text())["nodes"].values()
    database = next((n["database"] for n in nodes if n.get("database")), "warehouse")
    schemas = sorted(
        {
            (n["database"], n["schema"])
            for n in nodes
            if n["resource_type"] in {"model", "seed"} and n.get("database")
        }
    )
    return database, schemas


def _run_statement(wh: Warehouse, kind: str, sql: str) -> int:
    """Run one statement; a data or unit test's count of failing rows (0 for the rest)."""
    if kind in COUNTING:
        table = wh.query_arrow(sql)
        return int(table.column(0)[0].as_py() or 0) if table.num_rows else 0
    wh.execute(sql)
    return 0


def run_direct(raw_copy: Path, target: Path) -> dict[str, Any]:
    """Run dbt's compiled SQL directly in DuckDB on `raw_copy`; wall and CPU seconds, the
    seconds per statement, the tests that failed (their counts), the statements DuckDB refused
    (their first line)."""
    database, schemas = _catalog_and_schemas(target)
    statements = replay_statements(target)
    node_s: dict[str, float] = {}
    failures: dict[str, int] = {}
    errors: dict[str, str] = {}
    cpu0, wall0 = self_cpu(), time.perf_counter()
    with open_warehouse(raw_copy, catalog=database) as wh:
        for db, schema in schemas:
            wh.execute(f"create schema if not exists {quote_ident(db)}.{quote_ident(schema)}")
        for uid, kind, sql in statements:
            t0 = time.perf_counter()
            try:
                failing = _run_statement(wh, kind, sql)
                if kind == "test" and failing:
                    failures[uid] = failing
            except Exception as err:  # the engine's error, whichever engine: recorded, not fatal
                errors[uid] = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            node_s[uid] = time.perf_counter() - t0
        wh.execute("checkpoint")
    counts: dict[str, int] = {}
    for _, kind, _ in statements:
        counts[kind] = counts.get(kind, 0) + 1
    return {
        "seconds": time.perf_counter() - wall0,
        "cpu_s": self_cpu() - cpu0,
        "statements": counts,
        "node_s": node_s,
        "failing_tests": failures,
        "errors": errors,
        "unit_tests_included": counts.get("unit_test", 0) > 0,
    }
