"""The one module that talks to DuckDB: open the warehouse, read a relation, write a table atomically.

DuckDB allows one writing process at a time, and a second process cannot even open the file while
another writes. `connect` therefore waits a bounded time for the lock and then raises
`WarehouseLockedError` with the holder DuckDB names, instead of a DuckDB traceback.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from ml import config
from ml.errors import RelationNotFoundError, UserError, WarehouseLockedError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier for DuckDB (double quotes, embedded quotes doubled)."""
    if not isinstance(name, str) or name == "" or "\x00" in name:
        raise UserError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def parse_relation(relation: str, default_schema: str = "main") -> tuple[str, str]:
    """Split `schema.table` (or `table`) into validated parts; refuse anything else.

    Relation names given on the command line must be plain identifiers (letters, digits, `_`):
    they name tables, and user text never reaches SQL unquoted.
    """
    parts = relation.strip().split(".") if isinstance(relation, str) else []
    if len(parts) == 1:
        parts = [default_schema, parts[0]]
    if len(parts) != 2 or not all(_IDENT.fullmatch(p) for p in parts):
        raise UserError(
            f"invalid table name {relation!r}: use schema.table with letters, digits and _ only"
        )
    return parts[0], parts[1]


def qualified(relation: str, default_schema: str = "main") -> str:
    """`schema.table` as a quoted SQL reference, validated by `parse_relation`."""
    schema, table = parse_relation(relation, default_schema)
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def _lock_message(path: Path, err: Exception, waited: float) -> str:
    match = _LOCK_HOLDER.search(str(err))
    holder = f" by {match['exe']} (PID {match['pid']})" if match else ""
    return (
        f"warehouse {path} is locked{holder}; waited {waited:.0f}s "
        "(DuckDB allows one writing process at a time: wait for it to finish, "
        "or raise WAREHOUSE_LOCK_TIMEOUT)"
    )


#: The catalog name the warehouse file is attached under. DuckDB otherwise names the catalog after
#: the file, and a file called sim.duckdb or raw.duckdb would clash with the schema of that name.
CATALOG = "warehouse_db"


def _attach(db: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    try:
        literal = "'" + str(db).replace("'", "''") + "'"
        con.execute(f"attach {literal} as {CATALOG}{' (read_only)' if read_only else ''}")
        con.execute(f"use {CATALOG}")
    except BaseException:
        con.close()
        raise
    return con


def connect(
    path: str | Path | None = None,
    *,
    read_only: bool = False,
    timeout_s: float | None = None,
    create: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, waiting up to `timeout_s` (default `WAREHOUSE_LOCK_TIMEOUT`) for a lock."""
    db = Path(path).expanduser().resolve() if path else config.warehouse_path()
    timeout = config.lock_timeout_s() if timeout_s is None else timeout_s
    if read_only and not db.exists():
        raise UserError(f"warehouse {db} does not exist: run `make run` (or the simulator) first")
    if not read_only and create:
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create folder {db.parent}: {err.strerror}") from None
    start = time.monotonic()
    delay = 0.05
    while True:
        try:
            return _attach(db, read_only)
        except duckdb.IOException as err:
            text = str(err)
            waited = time.monotonic() - start
            if "lock" not in text.lower():
                raise UserError(f"cannot open warehouse {db}: {text.splitlines()[0]}") from None
            if waited >= timeout:
                raise WarehouseLockedError(_lock_message(db, err, waited)) from None
            time.sleep(min(delay, max(0.0, timeout - waited)))
            delay = min(delay * 2, 1.0)


@contextlib.contextmanager
def session(path: str | Path | None = None, **kwargs: Any) -> Iterator[duckdb.DuckDBPyConnection]:
    """`connect` as a context manager that always closes the connection."""
    con = connect(path, **kwargs)
    try:
        yield con
    finally:
        con.close()


def relation_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """True when `schema.table` is a table or view in the warehouse."""
    schema, table = parse_relation(relation)
    row = con.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = current_database() and table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return bool(row and row[0][0])


def read_relation(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    columns: list[str] | None = None,
    order_by: str | None = None,
) -> pd.DataFrame:
    """Read a whole table or view into pandas, ordered by `order_by` when given.

    Order matters for reproducibility: a table built by a parallel query (a dbt model) has no
    stable row order, so positional splits must not depend on it.
    """
    if not relation_exists(con, relation):
        raise RelationNotFoundError(f"table {relation} does not exist in the warehouse")
    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    order = f" order by {quote_ident(order_by)}" if order_by else ""
    return con.execute(f"select {cols} from {qualified(relation)}{order}").df()


def write_table(con: duckdb.DuckDBPyConnection, data: Any, relation: str) -> int:
    """Replace `schema.table` with `data` (a DataFrame or Arrow table) atomically.

    The data is built under a temporary name and swapped in within one transaction, so readers
    see the old table or the new one, never half of either, and a killed process leaves the old
    table and no temporary one (the uncommitted transaction is rolled back on the next open).
    Returns the number of rows written.
    """
    return next(iter(write_tables(con, {relation: data}).values()))


#: Fault-injection hook for the tests (tests/integration/test_faults.py), inert unless set: the
#: seconds `write_tables` sleeps INSIDE its open transaction, after every table is staged and
#: swapped and before the commit, announced by one stderr line starting with the variable's name.
#: It lets a test kill a writer at the one moment that matters (old tables dropped, new ones
#: renamed, nothing committed) deterministically. Never set it outside tests.
TEST_PAUSE_BEFORE_COMMIT = "ML_TEST_PAUSE_BEFORE_COMMIT"


def _test_pause_before_commit(relations: list[str]) -> None:
    value = os.environ.get(TEST_PAUSE_BEFORE_COMMIT, "").strip()
    try:
        seconds = float(value) if value else 0.0
    except ValueError:
        seconds = 0.0
    if seconds > 0:
        print(
            f"{TEST_PAUSE_BEFORE_COMMIT}: {', '.join(relations)} staged in the open transaction; "
            f"sleeping {seconds:g}s before the commit",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(seconds)


def write_tables(con: duckdb.DuckDBPyConnection, tables: dict[str, Any]) -> dict[str, int]:
    """Replace several tables in ONE transaction: all of them change, or none does.

    Same swap as `write_table` (build under a temporary name, drop, rename), for every table,
    then a single commit. Returns the rows written per table.
    """
    plan = []
    for relation, data in tables.items():
        schema, table = parse_relation(relation)
        view = f"__write_{uuid.uuid4().hex[:8]}"
        con.register(view, data)
        plan.append((schema, table, view))
    try:
        con.execute("begin transaction")
        try:
            for schema, table, view in plan:
                tmp = f"__tmp_{table}_{uuid.uuid4().hex[:8]}"
                target = f"{quote_ident(schema)}.{quote_ident(table)}"
                staged = f"{quote_ident(schema)}.{quote_ident(tmp)}"
                con.execute(f"create schema if not exists {quote_ident(schema)}")
                con.execute(f"create table {staged} as select * from {quote_ident(view)}")
                con.execute(f"drop table if exists {target}")
                con.execute(f"alter table {staged} rename to {quote_ident(table)}")
            _test_pause_before_commit([f"{schema}.{table}" for schema, table, _ in plan])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        for _, _, view in plan:
            con.unregister(view)
    return {
        f"{schema}.{table}": int(
            con.execute(
                f"select count(*) from {quote_ident(schema)}.{quote_ident(table)}"
            ).fetchall()[0][0]
        )
        for schema, table, _ in plan
    }


def appended(con: duckdb.DuckDBPyConnection, relation: str, new_rows: pd.DataFrame) -> pd.DataFrame:
    """`relation`'s rows with `new_rows` appended (columns united by name), to write back whole.

    History tables (ml.model_runs, ml.segmentation_runs) are rewritten with `write_tables` in the
    same transaction as the tables they describe, so history and data never disagree.
    """
    if relation_exists(con, relation):
        return pd.concat([read_relation(con, relation), new_rows], ignore_index=True, sort=False)
    return new_rows


def replaced_where(
    con: duckdb.DuckDBPyConnection, relation: str, new_rows: pd.DataFrame, column: str
) -> pd.DataFrame:
    """`relation`'s rows whose `column` value is not among `new_rows`' values, plus `new_rows`.

    For tables shared by tasks (ml.prediction_explanations, ml.evaluation_predictions): a run
    replaces its tasks' rows and keeps the others. Written back whole with `write_tables`.
    """
    if not relation_exists(con, relation):
        return new_rows
    if new_rows.empty:
        return read_relation(con, relation)
    values = sorted(map(str, new_rows[column].dropna().unique()))
    kept = con.execute(
        f"select * from {qualified(relation)} "
        f"where not list_contains(?::varchar[], {quote_ident(column)}::varchar)",
        [values],
    ).df()
    return pd.concat([kept, new_rows], ignore_index=True, sort=False)


GATE_RESULTS = "quality.check_results"


def require_passing_gate(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Refuse to use a relation whose latest quality-gate run failed.

    dbt publishes a model before its tests run, so a failed `dbt build` or gate can leave bad data
    in a feature table; the gate's stored verdict is what tells. Relations the gate does not
    check (your own tables) pass.
    """
    if not relation_exists(con, GATE_RESULTS):
        return
    rows = con.execute(
        f"""
        with latest as (
            select max(checked_at) as checked_at from {GATE_RESULTS} where table_name = ?
        )
        select count(*) filter (where not success), count(*), any_value(run_id)
        from {GATE_RESULTS} join latest using (checked_at)
        where table_name = ?
        """,
        [relation, relation],
    ).fetchall()
    failed, total, run_id = rows[0]
    if total and failed:
        raise UserError(
            f"the quality gate failed {failed} expectation(s) on {relation} in its last run "
            f"({run_id}): fix the data and rerun `python -m scripts.check_quality`, "
            "or go ahead anyway with --skip-gate"
        )
