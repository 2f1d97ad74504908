"""The DuckDB warehouse: one file, one writing process at a time.

DuckDB allows one writing process at a time, and a second process cannot even open the file while
another writes. Opening therefore waits a bounded time for the lock and then raises
`WarehouseLockedError` naming the holder DuckDB reports, instead of a DuckDB traceback.

The file is attached under the catalog name `warehouse_db` (DuckDB would otherwise name the
catalog after the file, and a file called sim.duckdb would clash with the schema `sim`).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from ml.core import config
from ml.core.errors import RelationNotFoundError, UserError, WarehouseLockedError
from ml.core.names import parse_relation, quote_ident
from ml.core.warehouse.base import (
    BATCH_ROWS,
    Columns,
    Data,
    RelationInfo,
    TableWriter,
    Warehouse,
)

T = TypeVar("T")
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")
CATALOG = "warehouse_db"
#: Schema names DuckDB gives its own catalogs: a user table may not be written there.
RESERVED_SCHEMAS = frozenset({"temp", "system", "memory", CATALOG})

#: Fault-injection hook for the tests (tests/integration/test_faults.py), inert unless set: the
#: seconds `replace_tables` sleeps INSIDE its open transaction, after every table is staged and
#: swapped and before the commit, announced by one stderr line starting with the variable's name.
#: It lets a test kill a writer at the one moment that matters (old tables dropped, new ones
#: renamed, nothing committed) deterministically. Never set it outside tests.
TEST_PAUSE_BEFORE_COMMIT = "ML_TEST_PAUSE_BEFORE_COMMIT"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _lock_message(path: Path, err: Exception, waited: float) -> str:
    match = _LOCK_HOLDER.search(str(err))
    holder = f" by {match['exe']} (PID {match['pid']})" if match else ""
    return (
        f"warehouse {path} is locked{holder}; waited {waited:.0f}s "
        "(DuckDB allows one writing process at a time: wait for it to finish, "
        "or raise WAREHOUSE_LOCK_TIMEOUT)"
    )


def _attach(db: Path, read_only: bool, catalog: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    try:
        literal = "'" + str(db).replace("'", "''") + "'"
        options = " (read_only)" if read_only else ""
        con.execute(f"attach {literal} as {quote_ident(catalog)}{options}")
        con.execute(f"use {quote_ident(catalog)}")
        con.execute("set enable_progress_bar = false")  # stderr carries one clear line
    except BaseException:
        con.close()
        raise
    return con


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


def _temporary_name(table: str) -> str:
    """Where a table is built before it replaces `table` (dropped with a rolled-back write)."""
    return f"__tmp_{table}_{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def scratch() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB for local computation that touches no warehouse (parsing a CSV)."""
    con = duckdb.connect(":memory:")
    try:
        yield con
    finally:
        con.close()


class DuckDBWarehouse(Warehouse):
    """The warehouse in one DuckDB file (`WAREHOUSE_PATH`)."""

    engine = "duckdb"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        timeout_s: float | None = None,
        create: bool = True,
        catalog: str = CATALOG,
    ) -> None:
        db = Path(path).expanduser().resolve() if path else config.warehouse_path("duckdb")
        timeout = config.lock_timeout_s() if timeout_s is None else timeout_s
        if read_only and not db.exists():
            raise UserError(
                f"warehouse {db} does not exist: run `make run` (or the simulator) first"
            )
        if not read_only and create:
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise UserError(f"cannot create folder {db.parent}: {err.strerror}") from None
        self.path = db
        self._read_only = read_only
        start, delay = time.monotonic(), 0.05
        while True:
            try:
                self._con = _attach(db, read_only, catalog)
                break
            except duckdb.IOException as err:
                waited = time.monotonic() - start
                if "lock" not in str(err).lower():
                    raise UserError(f"cannot open warehouse {db}: {_first_line(err)}") from None
                if waited >= timeout:
                    raise WarehouseLockedError(_lock_message(db, err, waited)) from None
                time.sleep(min(delay, max(0.0, timeout - waited)))
                delay = min(delay * 2, 1.0)

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def read_only(self) -> bool:
        return self._read_only

    def close(self) -> None:
        self._con.close()

    # -- describe -------------------------------------------------------------------------------

    def _ref(self, relation: str) -> str:
        schema, table = parse_relation(relation)
        return f"{quote_ident(schema)}.{quote_ident(table)}"

    def _require(self, relation: str) -> str:
        if not self.exists(relation):
            raise RelationNotFoundError(f"table {relation} does not exist in the warehouse")
        return self._ref(relation)

    def exists(self, relation: str) -> bool:
        schema, table = parse_relation(relation)
        rows = self._con.execute(
            "select count(*) from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
        return bool(rows and rows[0][0])

    def relations(self, schema: str | None = None) -> list[RelationInfo]:
        rows = self._con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() "
            "and (? is null or lower(table_schema) = lower(?)) order by 1, 2",
            [schema, schema],
        ).fetchall()
        return [RelationInfo(s, n, "view" if t == "VIEW" else "table") for s, n, t in rows]

    def describe(self, relation: str) -> pa.Schema:
        sql = f"select * from {self._require(relation)} limit 0"
        return self._read(relation, lambda con: con.sql(sql).to_arrow_table().schema)

    def sql_types(self, relation: str) -> dict[str, str]:
        sql = f"select * from {self._require(relation)} limit 0"

        def types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
            rel = con.sql(sql)
            return {name: str(kind) for name, kind in zip(rel.columns, rel.types, strict=True)}

        return self._read(relation, types)

    def row_count(self, relation: str) -> int:
        sql = f"select count(*) from {self._require(relation)}"
        return self._read(relation, lambda con: int(con.execute(sql).fetchall()[0][0]))

    # -- read -----------------------------------------------------------------------------------

    def _read(self, what: str, fetch: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`fetch(connection)`, with DuckDB's errors (a view over a dropped table, a failing cast
        in a view, a column that is not there) as one line naming `what`."""
        try:
            return fetch(self._con)
        except duckdb.Error as err:
            raise UserError(f"cannot read {what}: {_first_line(err)}") from None

    def _select(
        self, relation: str, columns: Sequence[str] | None, order_by: str | None = None
    ) -> str:
        ref = self._require(relation)
        cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        order = f" order by {quote_ident(order_by)}" if order_by else ""
        return f"select {cols} from {ref}{order}"

    def read_frame(
        self, relation: str, columns: Sequence[str] | None = None, order_by: str | None = None
    ) -> pd.DataFrame:
        sql = self._select(relation, columns, order_by)
        return self._read(relation, lambda con: con.execute(sql).df())

    def read_arrow(self, relation: str, columns: Sequence[str] | None = None) -> pa.Table:
        sql = self._select(relation, columns)
        return self._read(relation, lambda con: con.sql(sql).to_arrow_table())

    @contextlib.contextmanager
    def read_batches(
        self, relation: str, columns: Columns = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[pa.RecordBatchReader]:
        ref = self._require(relation)
        types = self.sql_types(relation)
        if columns is None:
            pairs = [(c, c) for c in types]
        elif isinstance(columns, Mapping):
            pairs = list(columns.items())
        else:
            pairs = [(c, c) for c in columns]
        select = []
        for out, source in pairs:
            expr = quote_ident(source)
            if types[source].upper().startswith("DECIMAL"):
                expr = f"cast({expr} as double)"  # as `.df()` reads it
            select.append(f"{expr} as {quote_ident(out)}")
        catalog = self._con.execute("select current_database()").fetchall()[0][0]
        # A second cursor: a streaming result on the main connection would be cut off by the
        # writes this handle makes while the batches are read.
        cursor = self._con.cursor()
        try:
            sql = f"select {', '.join(select)} from {quote_ident(catalog)}.{ref}"
            yield self._read(relation, lambda _: cursor.sql(sql).to_arrow_reader(batch_rows))
        finally:
            cursor.close()

    def sample_frame(self, relation: str, rows: int, seed: int) -> pd.DataFrame:
        ref = self._require(relation)
        sample = ""
        if self.row_count(relation) > rows:
            sample = f" using sample reservoir({int(rows)} rows) repeatable ({int(seed)})"
        return self._read(relation, lambda con: con.execute(f"select * from {ref}{sample}").df())

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return self._read("the warehouse", lambda con: con.execute(sql, list(params)).df())

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        args = list(params) or None
        return self._read("the warehouse", lambda con: con.sql(sql, params=args).to_arrow_table())

    def replaced_where(self, relation: str, new_rows: pd.DataFrame, column: str) -> pd.DataFrame:
        """As the interface says, with the old rows filtered in SQL: only the rows kept are read."""
        if not self.exists(relation) or new_rows.empty:
            return super().replaced_where(relation, new_rows, column)
        values = sorted(map(str, new_rows[column].dropna().unique()))
        sql = (
            f"select * from {self._ref(relation)} "
            f"where not list_contains(?::varchar[], {quote_ident(column)}::varchar)"
        )
        kept = self._read(relation, lambda con: con.execute(sql, [values]).df())
        return pd.concat([kept, new_rows], ignore_index=True, sort=False)

    # -- write ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._con
        con.execute("begin transaction")
        try:
            yield con
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """DuckDB's errors while writing (a type it cannot store, a full disk) become one line."""
        try:
            yield
        except duckdb.Error as err:
            raise UserError(f"cannot write {what}: {_first_line(err)}") from None

    @contextlib.contextmanager
    def _registered(self, tables: Mapping[str, Data]) -> Iterator[dict[str, str]]:
        views = {relation: f"__write_{uuid.uuid4().hex[:8]}" for relation in tables}
        try:
            for relation, data in tables.items():
                self._con.register(views[relation], data)
            yield views
        finally:
            for view in views.values():
                self._con.unregister(view)

    def replace_tables(self, tables: Mapping[str, Data]) -> dict[str, int]:
        plan = [parse_relation(relation) for relation in tables]
        with (
            self._writing(", ".join(tables)),
            self._registered(tables) as views,
            self._transaction() as con,
        ):
            for (schema, table), view in zip(plan, views.values(), strict=True):
                staged = f"{quote_ident(schema)}.{quote_ident(_temporary_name(table))}"
                con.execute(f"create schema if not exists {quote_ident(schema)}")
                con.execute(f"create table {staged} as select * from {quote_ident(view)}")
                con.execute(f"drop table if exists {quote_ident(schema)}.{quote_ident(table)}")
                con.execute(f"alter table {staged} rename to {quote_ident(table)}")
            _test_pause_before_commit([f"{schema}.{table}" for schema, table in plan])
        return {f"{s}.{t}": self.row_count(f"{s}.{t}") for s, t in plan}

    def append_rows(self, relation: str, data: Data) -> int:
        return self.append_tables({relation: data})[relation]

    def append_tables(self, tables: Mapping[str, Data]) -> dict[str, int]:
        with (
            self._writing(", ".join(tables)),
            self._registered(tables) as views,
            self._transaction() as con,
        ):
            for relation, view_name in views.items():
                schema, table = parse_relation(relation)
                target = f"{quote_ident(schema)}.{quote_ident(table)}"
                view = quote_ident(view_name)
                con.execute(f"create schema if not exists {quote_ident(schema)}")
                con.execute(f"create table if not exists {target} as select * from {view} limit 0")
                have = {c.casefold() for c in con.table(f"{schema}.{table}").columns}
                new = con.sql(f"select * from {view} limit 0")
                for name, kind in zip(new.columns, new.types, strict=True):
                    if name.casefold() not in have:
                        con.execute(f"alter table {target} add column {quote_ident(name)} {kind}")
                con.execute(f"insert into {target} by name select * from {view}")
        return {relation: len(data) for relation, data in tables.items()}

    @contextlib.contextmanager
    def table_writer(
        self, relation: str, schema: pa.Schema, *, background: bool = True
    ) -> Iterator[TableWriter]:
        out_schema, out_table = parse_relation(relation)
        target = f"{quote_ident(out_schema)}.{quote_ident(out_table)}"
        staged = f"{quote_ident(out_schema)}.{quote_ident(_temporary_name(out_table))}"
        empty = {relation: schema.empty_table()}
        with (
            self._writing(relation),
            self._registered(empty) as views,
            self._transaction() as con,
        ):
            con.execute(f"create schema if not exists {quote_ident(out_schema)}")
            con.execute(f"create table {staged} as select * from {quote_ident(views[relation])}")
            writer = _Writer(con, staged, background)
            try:
                yield writer
                writer.close()
            except BaseException:
                writer.abort()
                raise
            con.execute(f"drop table if exists {target}")
            con.execute(f"alter table {staged} rename to {quote_ident(out_table)}")

    def execute(self, sql: str) -> None:
        self._con.execute(sql).fetchall()

    @contextlib.contextmanager
    def bounded_memory(self, limit: str | None) -> Iterator[None]:
        """DuckDB caches the rows a transaction appends (and the blocks it reads) up to its
        memory limit, 80 % of RAM by default, so a long write would grow the process with the
        table; under `limit` it stays bounded. The limit shown before is restored after."""
        if limit is None:
            yield
            return
        setting = _memory_setting(limit)
        con = self._con
        previous = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        con.execute(f"set memory_limit = '{setting}'")
        try:
            yield
        finally:
            con.execute("reset memory_limit")
            if con.execute("select current_setting('memory_limit')").fetchall()[0][0] != previous:
                con.execute(f"set memory_limit = '{_memory_setting(previous)}'")


def _memory_setting(value: str) -> str:
    """A memory size such as `1GB` or `18.6 GiB`, checked before it goes into SQL."""
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*[A-Za-z]*", text):
        raise UserError(f"invalid memory limit {value!r}: use a size such as 1GB")
    return text


class _Writer(TableWriter):
    """Inserts batches into the staged table, in order, in a background thread when asked.

    DuckDB releases the GIL while it inserts, so the caller prepares the next batch meanwhile.
    Batches go in through the relation API, not `register`: a view registered and dropped per
    batch stays referenced (with its Arrow data) while a reader's snapshot lives.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, staged: str, background: bool) -> None:
        self.con, self.staged = con, staged
        self.rows, self.busy_s, self.busy_cpu_s = 0, 0.0, 0.0
        self.error: BaseException | None = None
        self.aborted = False
        self.queue: queue.Queue[pa.Table | pa.RecordBatch | None] = queue.Queue(maxsize=2)
        self.thread: threading.Thread | None = None
        if background:
            self.thread = threading.Thread(target=self._run, name="warehouse writer", daemon=True)
            self.thread.start()

    def _insert(self, batch: pa.Table | pa.RecordBatch) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        self.con.from_arrow(batch).insert_into(self.staged)
        self.busy_s += time.perf_counter() - wall
        self.busy_cpu_s += time.thread_time() - cpu

    def _run(self) -> None:
        while True:
            batch = self.queue.get()
            if batch is None:
                return
            if self.error is not None or self.aborted:
                continue
            try:
                self._insert(batch)
            except BaseException as err:  # handed over to the caller's thread
                self.error = err

    def append(self, batch: pa.Table | pa.RecordBatch) -> None:
        if self.error is not None:
            raise self.error
        self.rows += batch.num_rows
        if self.thread is None:
            self._insert(batch)
        else:
            self.queue.put(batch)

    def close(self) -> None:
        """Wait for every queued batch; raise the first insert error."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Drop what is queued and stop (the transaction is rolled back after)."""
        self.aborted = True
        if self.thread is not None and self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
