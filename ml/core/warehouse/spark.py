"""The Spark warehouse: Parquet tables in a Hive metastore, through a local or remote Spark.

The session's settings are the `spark` target of profiles.yml (`spark_session`, so that dbt and
Python never disagree): `local[2]`, UTC, a Derby metastore and the tables under WAREHOUSE_PATH.

Without Delta, Iceberg or Hudi (their jars cannot be fetched here) tables are plain Parquet, and
a write cannot be a transaction. What a write guarantees instead:

- every table a write replaces is first written whole, as Parquet files in a folder of its own,
  while readers still see the old table; then the metastore is switched to it by renames (the new
  table under a temporary name, the old one renamed away, the new one renamed in, the old one
  dropped), so a reader sees the old table or the new one, never a half-written one;
- a writer killed before the switch leaves the old table and an orphan folder no table reads;
  one killed inside the switch (between two metastore calls, milliseconds) leaves the old table
  (perhaps under its temporary name) and the next handle that opens the warehouse restores it
  (`_finish_switches`): a write is in, or it is undone;
- the tables of one `replace_tables` call are switched one after another after all are written:
  they are not switched together (a kill between two switches leaves some replaced).

`map_table` runs a job where the data lies: the job's function is pickled to the executors and
applied to each part of the source with `mapInArrow` (`spark_arrow.PartRunner`); Spark writes the
output as Parquet into a folder of its own, which is then switched in as above; `fit_on_workers`
fits a distributed estimator (xgboost.spark) to a job's rows (docs/design/spark.md).

Spark has no read-only mode; a read-only handle refuses to write. The Derby metastore allows one
process at a time, like a DuckDB file: steps run one after another. A process holds one Spark
session, so it opens one lakehouse.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from pyspark.sql import functions
from pyspark.sql.pandas.types import from_arrow_schema

from ml.core import config
from ml.core.errors import RelationNotFoundError, UserError
from ml.core.names import parse_relation
from ml.core.warehouse.base import (
    BATCH_ROWS,
    BatchJob,
    Columns,
    Data,
    RelationInfo,
    TableWriter,
    Warehouse,
)
from ml.core.warehouse.spark_arrow import (
    ParquetWriter,
    PartRunner,
    arrow_of,
    batch_of,
    first_rows,
    plain,
    plain_schema,
    to_pandas,
    write_parquet,
)
from ml.core.warehouse.spark_session import session, spark_settings

__all__ = ["TEST_PAUSE_SWITCH", "SparkWarehouse", "spark_settings"]

T = TypeVar("T")
#: The suffixes of the folders and names a switch uses (see the module's docstring).
_NEW, _OLD = "__new", "__old"
#: A worker's exception as the last line of a Python traceback: `ml.<module>.<Error>: message`.
_WORKER_ERROR = re.compile(r"^ml(?:\.\w+)+: (?P<message>.+)$", re.MULTILINE)

#: Fault-injection hook for the tests (tests/ml/core/test_spark_switch.py), inert unless set:
#: `STAGE:SECONDS` sleeps at STAGE of every switch, after one stderr line starting with the
#: variable's name. `written`: the new table's files are complete and registered under its
#: temporary name, the old table untouched; `renamed`: the old table renamed away, the new one
#: not yet in (no table under the name at all); `switched`: the new table in, the old one not yet
#: dropped. It lets a test kill a writer at those moments deterministically. Never set it
#: outside tests.
TEST_PAUSE_SWITCH = "ML_TEST_PAUSE_SWITCH"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return re.sub(r"^\[[A-Z_.]+\]\s*", "", line)


class SparkWarehouse(Warehouse):
    """The warehouse as Spark tables (`WAREHOUSE_ENGINE=spark`, `WAREHOUSE_PATH` its folder)."""

    engine = "spark"
    distributed = True

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
        self.spark = session(root, config.lock_timeout_s() if timeout_s is None else timeout_s)
        self._spark(self._finish_switches, f"warehouse {root}", "repair")

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
        return self._spark(lambda: plain(self._frame(relation).limit(0).toArrow()).schema, relation)

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
                refused = list(_WORKER_ERROR.finditer(str(err)))
                if refused:  # a UserError of our own code on an executor: its message
                    raise UserError(refused[-1]["message"].strip()) from None
                raise UserError(f"cannot {verb} {what}: {_first_line(err)}") from None
            raise

    def read_frame(
        self, relation: str, columns: Sequence[str] | None = None, order_by: str | None = None
    ) -> pd.DataFrame:
        def read() -> pd.DataFrame:
            frame = self._frame(relation, columns)
            if order_by:
                frame = frame.orderBy(_quoted(order_by))
            return to_pandas(frame.toArrow())

        return self._spark(read, relation)

    def read_arrow(self, relation: str, columns: Sequence[str] | None = None) -> pa.Table:
        return self._spark(lambda: plain(self._frame(relation, columns).toArrow()), relation)

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
        out = batch_of(schema.empty_table(), pairs).schema
        yield pa.RecordBatchReader.from_batches(
            out, (batch_of(pa.Table.from_batches([b], schema), pairs) for b in batches)
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
            return to_pandas(frame.toArrow())

        return self._spark(sample, relation)

    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        return to_pandas(self.query_arrow(sql, params))

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        sql = _spark_sql(sql)
        run = lambda: plain(self.spark.sql(sql, args=list(params) or None).toArrow())  # noqa: E731
        return self._spark(run, "the warehouse")

    # -- write ----------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self._read_only:
            raise UserError(f"warehouse {self.root} was opened read-only")

    def _folder(self, schema: str, table: str) -> Path:
        return self.root / "tables" / f"{schema}.db" / f"{table}__{uuid.uuid4().hex[:12]}"

    def replace_tables(self, tables: Mapping[str, Data]) -> dict[str, int]:
        self._writable()
        written: dict[str, tuple[Path, int]] = {}
        try:
            for relation, data in tables.items():  # every table written whole before any switch
                schema, table = parse_relation(relation)
                folder = self._folder(schema, table)
                written[f"{schema}.{table}"] = (folder, 0)
                written[f"{schema}.{table}"] = (folder, write_parquet(folder, arrow_of(data)))
        except BaseException:
            for folder, _ in written.values():
                shutil.rmtree(folder, ignore_errors=True)
            raise
        for relation, (folder, _) in written.items():
            self._switch(relation, folder)
        return {relation: rows for relation, (_, rows) in written.items()}

    def append_rows(self, relation: str, data: Data) -> int:
        return self.append_tables({relation: data})[relation]

    def append_tables(self, tables: Mapping[str, Data]) -> dict[str, int]:
        """Parquet tables take no transactional insert: every table is rewritten whole (its rows,
        then the new ones) and all are switched in together, as `replace_tables` does."""
        self._writable()
        merged: dict[str, Data] = {}
        for relation, data in tables.items():
            table = arrow_of(data)
            if self.exists(relation):
                old = arrow_of(self.read_arrow(relation))  # as written: timestamps with their zone
                table = pa.concat_tables([old, table], promote_options="permissive")
            merged[relation] = table
        self.replace_tables(merged)
        return {relation: len(data) for relation, data in tables.items()}

    @contextlib.contextmanager
    def table_writer(
        self, relation: str, schema: pa.Schema, *, background: bool = True
    ) -> Iterator[TableWriter]:
        self._writable()
        out_schema, out_table = parse_relation(relation)
        folder = self._folder(out_schema, out_table)
        writer = ParquetWriter(folder, plain_schema(schema))
        try:
            yield writer
            writer.close()
        except BaseException:
            writer.abort()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._switch(f"{out_schema}.{out_table}", folder)

    def map_table(
        self,
        source: str,
        columns: Columns,
        job: BatchJob,
        target: str,
        *,
        batch_rows: int = BATCH_ROWS,
        background: bool = True,  # noqa: ARG002 - the executors work in parallel already
    ) -> int:
        """`job.part_task()` applied by the executors to each part of `source` (`mapInArrow`);
        Spark writes the output as Parquet in a folder of its own, switched in when complete."""
        self._writable()
        out_schema, out_table = parse_relation(target)
        mapped = self._mapped(source, columns, job)
        folder = self._folder(out_schema, out_table)
        setting = "spark.sql.execution.arrow.maxRecordsPerBatch"
        previous = self.spark.conf.get(setting)
        self.spark.conf.set(setting, str(batch_rows))
        try:
            self._spark(lambda: mapped.write.parquet(str(folder)), target, "write")
            rows = pads.dataset(str(folder), format="parquet").count_rows()
            job.finish(rows)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            self.spark.conf.set(setting, previous)
        self._switch(f"{out_schema}.{out_table}", folder)
        return rows

    @property
    def parallelism(self) -> int:
        return max(1, int(self.spark.sparkContext.defaultParallelism))

    def fit_on_workers(self, source: str, columns: Columns, job: BatchJob, estimator: Any) -> Any:
        """`estimator.fit` on the rows `job.part_task()` makes of each part of `source`
        (`mapInArrow`, nothing collected here)."""
        rows = self._mapped(source, columns, job)
        return self._spark(lambda: estimator.fit(rows), source, "train on")

    def _mapped(self, source: str, columns: Columns, job: BatchJob) -> Any:
        """The DataFrame of `job`'s output over `source`'s `columns` (computed when used)."""
        frame = self._spark(lambda: self._selected(source, columns), source)
        in_schema = plain_schema(self._spark(lambda: frame.limit(0).toArrow().schema, source))
        schema = plain_schema(job.output_schema(in_schema))
        firsts = self._spark(lambda: first_rows(frame), source) if job.numbered else None
        task = PartRunner(job.part_task(), schema, firsts)
        return frame.mapInArrow(task, from_arrow_schema(schema))

    def _selected(self, relation: str, columns: Columns) -> Any:
        """The columns of `relation` as `read_batches` names them, as a Spark DataFrame."""
        frame = self._frame(relation)
        if columns is None:
            return frame
        pairs = columns.items() if isinstance(columns, Mapping) else [(c, c) for c in columns]
        return frame.select(*[frame[_quoted(source)].alias(out) for out, source in pairs])

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
        _test_pause("written", relation)
        if previous is not None:
            sql(f"alter table {self._name(relation)} rename to {self._name(old)}")
            _test_pause("renamed", relation)
        sql(f"alter table {self._name(new)} rename to {self._name(relation)}")
        if previous is not None:
            _test_pause("switched", relation)
            sql(f"drop table if exists {self._name(old)}")
            if previous.name.startswith(f"{table}__") and previous != folder:
                shutil.rmtree(previous, ignore_errors=True)

    def _location(self, relation: str) -> Path | None:
        rows = self.spark.sql(f"describe table extended {self._name(relation)}").collect()
        location = {r["col_name"]: r["data_type"] for r in rows}.get("Location")
        return Path(location.removeprefix("file:")) if location else None

    def _finish_switches(self) -> None:
        """Repair what a writer killed inside a switch left (on every open, read-only too: it is
        the one change a read-only handle makes, and only to the names a switch uses). A write
        not switched in is undone: a `__new` table is dropped (the old table is still there, or
        under `__old`); an `__old` table without its namesake comes back (the kill came between
        the two renames); one beside its namesake is dropped (the switch had finished). A dropped
        table's folder is removed when it is one of ours and no table reads it."""
        for db in self._names("show databases"):
            if not self._names(f"show tables in {_quoted(db)} like '*{_NEW}|*{_OLD}'"):
                continue  # (the metastore filters: listing every table costs ~0.2 s a schema)
            names = set(self._names(f"show tables in {_quoted(db)}"))
            for name in sorted(names):
                base = name.removesuffix(_NEW).removesuffix(_OLD)
                if base == name:
                    continue
                stray, target = f"{db}.{name}", f"{db}.{base}"
                if name.endswith(_OLD) and base not in names:
                    self.spark.sql(
                        f"alter table {self._name(stray)} rename to {self._name(target)}"
                    )
                    names.add(base)
                    continue
                folder = self._location(stray)
                self.spark.sql(f"drop table if exists {self._name(stray)}")
                kept = self._location(target) if base in names else None
                if folder is not None and folder != kept and self._ours(folder, base):
                    shutil.rmtree(folder, ignore_errors=True)

    def _names(self, sql: str) -> list[str]:
        """The names `show databases` / `show tables` lists (not temporary views)."""
        rows = self.spark.sql(sql).collect()
        return [r[1] if len(r) > 1 else r[0] for r in rows if not (len(r) > 2 and r[2])]

    def _ours(self, folder: Path, table: str) -> bool:
        """True for a folder this class writes tables of `table` into (see `_folder`)."""
        tables = (self.root / "tables").resolve()
        return folder.name.startswith(f"{table}__") and tables in folder.resolve().parents


# ---------------------------------------------------------------------------------------------
# helpers


def _test_pause(stage: str, relation: str) -> None:
    """The test-only pause of TEST_PAUSE_SWITCH at `stage` of the switch of `relation`."""
    wanted, _, seconds = os.environ.get(TEST_PAUSE_SWITCH, "").partition(":")
    try:
        pause = float(seconds) if wanted.strip() == stage else 0.0
    except ValueError:
        pause = 0.0
    if pause > 0:
        print(f"{TEST_PAUSE_SWITCH}: {relation} {stage}; sleeping {pause:g}s", file=sys.stderr)
        sys.stderr.flush()
        time.sleep(pause)


def _spark_sql(sql: str) -> str:
    """SQL written with double-quoted identifiers (as ml.core.names quotes them) for Spark,
    which quotes with backticks."""
    return re.sub(r'"((?:[^"]|"")*)"', lambda m: "`" + m.group(1).replace('""', '"') + "`", sql)


def _quoted(name: str) -> str:
    """A Spark identifier, backtick-quoted."""
    return "`" + name.replace("`", "``") + "`"
