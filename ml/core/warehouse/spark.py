"""The Spark warehouse: Parquet tables in a Hive metastore, through a local or remote Spark.

The session's settings are the `spark` target of profiles.yml (read here, so that dbt and Python
never disagree): `local[2]`, UTC, a Derby metastore and the tables under WAREHOUSE_PATH.

Without Delta, Iceberg or Hudi (their jars cannot be fetched here) tables are plain Parquet, and
a write cannot be a transaction. What a write guarantees instead:

- every table a write replaces is first written whole, as Parquet files in a folder of its own,
  while readers still see the old table; then the metastore is switched to it by renames (the new
  table under a temporary name, the old one renamed away, the new one renamed in, the old one
  dropped), so a reader sees the old table or the new one, never a half-written one;
- a writer killed before the switch leaves the old table and an orphan folder; one killed inside
  the switch (between two renames, milliseconds) leaves the old table or the new one under its
  temporary name, and the next handle that opens the warehouse finishes or undoes the switch;
- the tables of one `replace_tables` call are switched one after another after all are written:
  they are not switched together (a kill between two switches leaves some replaced).

Spark has no read-only mode; a read-only handle refuses to write. The Derby metastore allows one
process at a time, like a DuckDB file: steps run one after another.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import yaml
from pyspark.sql import SparkSession, functions

from ml.core import config
from ml.core.errors import RelationNotFoundError, UserError, WarehouseLockedError
from ml.core.names import parse_relation
from ml.core.warehouse.base import (
    BATCH_ROWS,
    Columns,
    Data,
    RelationInfo,
    TableWriter,
    Warehouse,
)

T = TypeVar("T")
#: The suffixes of the folders and names a switch uses (see the module's docstring).
_NEW, _OLD = "__new", "__old"
_ENV_VAR = re.compile(r"\{\{\s*env_var\(\s*'([^']+)'\s*(?:,\s*'([^']*)'\s*)?\)\s*\}\}")
#: Rows per Parquet row group written (and per Arrow batch written at a time).
ROW_GROUP_ROWS = 262_144


def spark_settings(root: Path) -> dict[str, str]:
    """The Spark settings of profiles.yml's `spark` target, its `env_var(...)` calls filled in
    (WAREHOUSE_PATH is `root`)."""
    with open(config.PROJECT_ROOT / "profiles.yml", encoding="utf-8") as fh:
        profile = yaml.safe_load(fh)
    target = next(iter(profile.values()))["outputs"]["spark"]

    def value(match: re.Match) -> str:
        name, default = match.group(1), match.group(2) or ""
        if name == "WAREHOUSE_PATH":
            return str(root)
        found = config.environment(name, "")
        if found:
            return found
        local = config.PROJECT_ROOT / default
        return str(local) if default.endswith(".properties") and local.exists() else default

    return {k: _ENV_VAR.sub(value, str(v)) for k, v in target["server_side_parameters"].items()}


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^\[[A-Z_.]+\]\s*", "", line)


class SparkWarehouse(Warehouse):
    """The warehouse as Spark tables (`WAREHOUSE_ENGINE=spark`, `WAREHOUSE_PATH` its folder)."""

    engine = "spark"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        read_only: bool = False,
        timeout_s: float | None = None,
        create: bool = True,
        catalog: str | None = None,  # noqa: ARG002 - DuckDB's; Spark's catalog is the metastore
    ) -> None:
        root = Path(path).expanduser().resolve() if path else config.warehouse_path("spark")
        if read_only and not (root / "metastore_db").exists():
            raise UserError(
                f"warehouse {root} does not exist: run `make run ENGINE=spark` (or the simulator)"
            )
        if create:
            root.mkdir(parents=True, exist_ok=True)
        self.root, self._read_only = root, read_only
        self.spark = _session(root, config.lock_timeout_s() if timeout_s is None else timeout_s)
        self._finish_switches()

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def read_only(self) -> bool:
        return self._read_only

    def close(self) -> None:
        """The session stays up for the process (starting Spark costs seconds); the metastore
        is released when the process ends."""

    # -- describe -------------------------------------------------------------------------------

    def _name(self, relation: str) -> str:
        schema, table = parse_relation(relation)
        return f"{_quoted(schema)}.{_quoted(table)}"

    def exists(self, relation: str) -> bool:
        name = self._name(relation)
        return self._spark(lambda: self.spark.catalog.tableExists(name), relation)

    def relations(self, schema: str | None = None) -> list[RelationInfo]:
        out = []
        for db in self._spark(self.spark.catalog.listDatabases, "the warehouse"):
            if schema is not None and db.name.lower() != schema.lower():
                continue
            for table in self.spark.catalog.listTables(db.name):
                if table.isTemporary or table.name.endswith((_NEW, _OLD)):
                    continue
                kind = "view" if table.tableType == "VIEW" else "table"
                out.append(RelationInfo(db.name, table.name, kind))
        return sorted(out, key=lambda r: (r.schema, r.name))

    def _frame(self, relation: str, columns: Sequence[str] | None = None) -> Any:
        if not self.exists(relation):
            raise RelationNotFoundError(f"table {relation} does not exist in the warehouse")
        frame = self.spark.table(self._name(relation))
        if columns:
            frame = frame.select(*[_quoted(c) for c in columns])
        decimals = [f.name for f in frame.schema.fields if f.dataType.typeName() == "decimal"]
        for name in decimals:  # as DuckDB's `.df()` reads them
            frame = frame.withColumn(name, frame[_quoted(name)].cast("double"))
        return frame

    def describe(self, relation: str) -> pa.Schema:
        return self._spark(lambda: self._frame(relation).limit(0).toArrow().schema, relation)

    def sql_types(self, relation: str) -> dict[str, str]:
        schema, table = parse_relation(relation)
        if not self.exists(relation):
            raise RelationNotFoundError(f"table {relation} does not exist in the warehouse")
        frame = self.spark.table(self._name(relation))
        return {f.name: f.dataType.simpleString().upper() for f in frame.schema.fields}

    def row_count(self, relation: str) -> int:
        return self._spark(lambda: self._frame(relation).count(), relation)

    # -- read -----------------------------------------------------------------------------------

    def _spark(self, run: Callable[[], T], what: str, verb: str = "read") -> T:
        """`run()`, with Spark's errors (analysis, a failing cast, a lost metastore) as one line
        naming `what`."""
        try:
            return run()
        except (UserError, RelationNotFoundError):
            raise
        except Exception as err:  # py4j and pyspark raise many types; all are the engine's
            if type(err).__module__.startswith(("pyspark", "py4j")):
                raise UserError(f"cannot {verb} {what}: {_first_line(err)}") from None
            raise

    def read_frame(
        self, relation: str, columns: Sequence[str] | None = None, order_by: str | None = None
    ) -> pd.DataFrame:
        def read() -> pd.DataFrame:
            frame = self._frame(relation, columns)
            if order_by:
                frame = frame.orderBy(_quoted(order_by))
            return _to_pandas(frame.toArrow())

        return self._spark(read, relation)

    def read_arrow(self, relation: str, columns: Sequence[str] | None = None) -> pa.Table:
        return self._spark(lambda: _plain(self._frame(relation, columns).toArrow()), relation)

    @contextlib.contextmanager
    def read_batches(
        self, relation: str, columns: Columns = None, batch_rows: int = BATCH_ROWS
    ) -> Iterator[pa.RecordBatchReader]:
        if isinstance(columns, Mapping):
            pairs = list(columns.items())
        else:
            pairs = [(c, c) for c in (columns or self.describe(relation).names)]
        sources = [source for _, source in pairs]
        files = self._spark(lambda: self._parquet_files(relation), relation)
        if files is not None:  # a Parquet table: its files streamed, nothing at the driver
            scanner = pads.dataset(files, format="parquet").scanner(
                columns=sources, batch_size=batch_rows
            )
            schema, batches = scanner.projected_schema, scanner.to_batches()
        else:  # a view: computed by Spark and collected
            table = self.read_arrow(relation, sources)
            schema, batches = table.schema, iter(table.to_batches(batch_rows))
        out = _batch(schema.empty_table(), pairs).schema
        yield pa.RecordBatchReader.from_batches(
            out, (_batch(pa.Table.from_batches([b], schema), pairs) for b in batches)
        )

    def _parquet_files(self, relation: str) -> list[str] | None:
        """The data files of a Parquet table (None for a view or another format)."""
        name = self._name(relation)
        rows = self.spark.sql(f"describe table extended {name}").collect()
        info = {r["col_name"]: r["data_type"] for r in rows}
        if info.get("Type") == "VIEW" or info.get("Provider", "").lower() != "parquet":
            return None
        location = info.get("Location", "").removeprefix("file:")
        return sorted(str(p) for p in Path(location).glob("*.parquet"))

    def sample_frame(self, relation: str, rows: int, seed: int) -> pd.DataFrame:
        def sample() -> pd.DataFrame:
            frame = self._frame(relation)
            if frame.count() > rows:
                frame = frame.orderBy(functions.rand(int(seed))).limit(int(rows))
            return _to_pandas(frame.toArrow())

        return self._spark(sample, relation)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return _to_pandas(self.query_arrow(sql, params))

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        sql = _spark_sql(sql)
        run = lambda: _plain(self.spark.sql(sql, args=list(params) or None).toArrow())  # noqa: E731
        return self._spark(run, "the warehouse")

    # -- write ----------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self._read_only:
            raise UserError(f"warehouse {self.root} was opened read-only")

    def _folder(self, schema: str, table: str) -> Path:
        return self.root / "tables" / f"{schema}.db" / f"{table}__{uuid.uuid4().hex[:12]}"

    def replace_tables(self, tables: Mapping[str, Data]) -> dict[str, int]:
        self._writable()
        written = {}
        for relation, data in tables.items():  # every table written whole before any switch
            schema, table = parse_relation(relation)
            folder = self._folder(schema, table)
            written[f"{schema}.{table}"] = (folder, _write_parquet(folder, _arrow_of(data)))
        for relation, (folder, _) in written.items():
            self._switch(relation, folder)
        return {relation: rows for relation, (_, rows) in written.items()}

    def append_rows(self, relation: str, data: Data) -> int:
        self._writable()
        table = _arrow_of(data)
        if not self.exists(relation):
            return self.replace_table(relation, table)
        old = self.read_arrow(relation)
        merged = pa.concat_tables([old, table], promote_options="permissive")
        return self.replace_table(relation, merged)

    @contextlib.contextmanager
    def table_writer(
        self, relation: str, schema: pa.Schema, *, background: bool = True
    ) -> Iterator[TableWriter]:
        self._writable()
        out_schema, out_table = parse_relation(relation)
        folder = self._folder(out_schema, out_table)
        writer = _ParquetWriter(folder, _plain_schema(schema))
        try:
            yield writer
            writer.close()
        except BaseException:
            writer.abort()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._switch(f"{out_schema}.{out_table}", folder)

    def execute(self, sql: str) -> None:
        self._spark(lambda: self.spark.sql(_spark_sql(sql)).collect(), "the warehouse", "run")

    # -- the switch -----------------------------------------------------------------------------

    def _switch(self, relation: str, folder: Path) -> None:
        """Point `relation` at the complete table in `folder` (see the module's docstring)."""
        schema, table = parse_relation(relation)
        new, old = f"{schema}.{table}{_NEW}", f"{schema}.{table}{_OLD}"
        sql = self.spark.sql
        sql(f"create database if not exists `{schema}`")
        sql(f"drop table if exists {self._name(new)}")
        sql(f"create table {self._name(new)} using parquet location '{folder}'")
        previous = self._location(relation) if self.exists(relation) else None
        if previous is not None:
            sql(f"alter table {self._name(relation)} rename to {self._name(old)}")
        sql(f"alter table {self._name(new)} rename to {self._name(relation)}")
        if previous is not None:
            sql(f"drop table if exists {self._name(old)}")
            if previous.name.startswith(f"{table}__") and previous != folder:
                shutil.rmtree(previous, ignore_errors=True)

    def _location(self, relation: str) -> Path | None:
        rows = self.spark.sql(f"describe table extended {self._name(relation)}").collect()
        location = {r["col_name"]: r["data_type"] for r in rows}.get("Location")
        return Path(location.removeprefix("file:")) if location else None

    def _finish_switches(self) -> None:
        """Finish or undo a switch a killed writer left: a `__new` table without its namesake
        becomes it, a `__old` one with its namesake is dropped, an `__old` one without it comes
        back."""
        if self._read_only:
            return
        for db in self.spark.catalog.listDatabases():
            names = {t.name for t in self.spark.catalog.listTables(db.name)}
            for name in sorted(names):
                base = name.removesuffix(_NEW).removesuffix(_OLD)
                if base == name:
                    continue
                stray, target = f"{db.name}.{name}", f"{db.name}.{base}"
                if name.endswith(_OLD) and base not in names:
                    self.spark.sql(
                        f"alter table {self._name(stray)} rename to {self._name(target)}"
                    )
                else:
                    self.spark.sql(f"drop table if exists {self._name(stray)}")


# ---------------------------------------------------------------------------------------------
# the session and Arrow helpers


_SESSION: Any = None


def _session(root: Path, timeout_s: float) -> Any:
    """The process's Spark session on `root` (one per process; Spark starts in seconds)."""
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in spark_settings(root).items():
        builder = builder.config(key, value)
    start, delay = time.monotonic(), 0.5
    while True:
        session = builder.getOrCreate()
        try:
            session.catalog.listDatabases()  # boots the metastore: fails while another holds it
            break
        except Exception as err:
            if "another instance of derby" not in str(err).lower() or (
                time.monotonic() - start >= timeout_s
            ):
                if "derby" in str(err).lower():
                    raise WarehouseLockedError(
                        f"warehouse {root} is locked: its metastore is in use by another process "
                        "(one process at a time: wait for it to finish)"
                    ) from None
                raise
            time.sleep(delay)
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger", "py4j"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the error reaches the caller
    _SESSION = session
    return session


def _spark_sql(sql: str) -> str:
    """SQL written with double-quoted identifiers (as ml.core.names quotes them) for Spark,
    which quotes with backticks."""
    return re.sub(r'"((?:[^"]|"")*)"', lambda m: "`" + m.group(1).replace('""', '"') + "`", sql)


def _plain_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(kind):
        return _plain_type(kind.value_type)
    if pa.types.is_null(kind):
        return pa.string()
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_timestamp(kind) and kind.tz is None:
        return pa.timestamp("us", tz="UTC")  # Spark's TIMESTAMP, shown in the session's UTC
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz=kind.tz)
    return kind


def _plain_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, _plain_type(f.type)) for f in schema])


def _arrow_of(data: Data) -> pa.Table:
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    return table.cast(_plain_schema(table.schema))


def _plain(table: pa.Table) -> pa.Table:
    """What Spark hands back, as DuckDB would: naive timestamps (UTC), plain strings."""
    fields = []
    for f in table.schema:
        kind = f.type
        if pa.types.is_timestamp(kind):
            kind = pa.timestamp("us")
        elif pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind))
    return table.cast(pa.schema(fields))


def _quoted(name: str) -> str:
    """A Spark identifier, backtick-quoted."""
    return "`" + name.replace("`", "``") + "`"


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return _plain(table).to_pandas(date_as_object=False)


def _write_parquet(folder: Path, table: pa.Table) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-00000.parquet", row_group_size=ROW_GROUP_ROWS)
    return table.num_rows


def _batch(table: pa.Table, pairs: list[tuple[str, str]]) -> pa.RecordBatch:
    """The output columns of a streamed batch: renamed, timestamps naive, decimals as doubles
    (as DuckDB streams them)."""
    table = _plain(table)
    columns = []
    for _, source in pairs:
        column = table.column(source)
        if pa.types.is_decimal(column.type):
            column = column.cast(pa.float64())
        columns.append(column)
    renamed = pa.table(columns, names=[out for out, _ in pairs])
    return (
        renamed.combine_chunks().to_batches()[0]
        if renamed.num_rows
        else pa.RecordBatch.from_pylist([], schema=renamed.schema)
    )


class _ParquetWriter(TableWriter):
    """Appends batches to Parquet files in a folder (a file per ROW_GROUP_ROWS x 8 rows)."""

    def __init__(self, folder: Path, schema: pa.Schema) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.schema = folder, schema
        self.rows, self.busy_s, self.busy_cpu_s = 0, 0.0, 0.0
        self._writer = pq.ParquetWriter(folder / "part-00000.parquet", schema)

    def append(self, batch: pa.Table | pa.RecordBatch) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        self._writer.write_table(table.cast(self.schema), row_group_size=ROW_GROUP_ROWS)
        self.rows += table.num_rows
        self.busy_s += time.perf_counter() - wall
        self.busy_cpu_s += time.process_time() - cpu

    def close(self) -> None:
        self._writer.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
