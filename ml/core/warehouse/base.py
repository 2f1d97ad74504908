"""The warehouse interface: what every step may ask of the engine that holds the data.

One small surface, engine-neutral: relations are named `schema.table`; data goes in and out as
Arrow tables and record batches (pandas DataFrames where a step works in pandas); types are
described as Arrow schemas. No engine type appears in a signature. An implementation (DuckDB,
Spark) is the only code that opens a connection or begins a transaction.

Work over every row of a large table goes through `map_table` with a `BatchJob`: an engine that
runs in this process streams the table through the job here (DuckDB), one with workers of its
own ships the job to them and applies it to its parts where they lie (Spark).

Every write is one transaction: the tables it replaces change together or not at all, and a
failed or killed writer leaves what was there before. Errors a user can cause (a missing
relation, a view that cannot be read, a locked warehouse) raise the typed errors of
`ml.core.errors`, which the command-line entry points turn into one line.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import pandas as pd
import pyarrow as pa

#: What a write accepts: an Arrow table (its types are kept) or a pandas DataFrame.
Data = Union[pa.Table, pd.DataFrame]  # noqa: UP007 - a runtime alias
#: Columns to read: names, or output name -> relation column (None: every column).
Columns = Union[Mapping[str, str], Sequence[str], None]  # noqa: UP007 - a runtime alias
#: Rows per Arrow record batch a streaming read asks for by default.
BATCH_ROWS = 262_144


@dataclass(frozen=True)
class RelationInfo:
    """A table or view of the warehouse."""

    schema: str
    name: str
    kind: str  # "table" | "view"

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"


class TableWriter(abc.ABC):
    """Appends batches to a table that replaces its namesake when the writer's block ends."""

    rows: int = 0
    #: Wall and CPU seconds spent inserting (in a background thread where there is one).
    busy_s: float = 0.0
    busy_cpu_s: float = 0.0

    @abc.abstractmethod
    def append(self, batch: pa.Table | pa.RecordBatch) -> None:
        """Add rows (in order). Raises an earlier background insert's error."""


#: What a `BatchJob` ships to an engine's workers: called with the batches of one part of the
#: source and the 1-based number of that part's first row; yields the output batches.
PartTask = Callable[[Iterator[pa.RecordBatch], int], Iterator[Union[pa.RecordBatch, pa.Table]]]  # noqa: UP007


class BatchJob(abc.ABC):
    """Work applied to every row of a relation, whose output replaces a table (`map_table`).

    An engine either streams the relation through `run` in this process, or pickles `part_task()`
    to its workers, which apply it to the parts of the relation where they lie. Both must give
    the same rows. Nothing a worker needs may depend on this process's state.
    """

    #: True when `part_task` needs the number of each part's first row (e.g. to number rows).
    numbered: bool = False

    @abc.abstractmethod
    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        """The output's columns, for input batches of `schema`."""

    @abc.abstractmethod
    def part_task(self) -> PartTask:
        """The picklable function the workers apply to their parts of the relation."""

    def run(self, reader: pa.RecordBatchReader, writer: TableWriter) -> int:
        """Apply the job to every batch of `reader`, in this process, into `writer`; the rows
        written. By default `part_task()` on the whole relation as one part."""
        before = writer.rows
        for out in self.part_task()(iter(reader), 1):
            writer.append(out)
        return writer.rows - before

    def finish(self, rows: int) -> None:  # noqa: B027 - optional: most jobs accept any output
        """Called with the rows written, before the output replaces the target: raise to leave
        the target as it was."""


class Warehouse(abc.ABC):
    """An open warehouse. Use it as a context manager; it closes on exit."""

    #: The engine's name (`WAREHOUSE_ENGINE`).
    engine: str = ""
    #: True when `map_table` runs jobs on the engine's own workers: a table is then best worked
    #: on where it lies rather than read into this process.
    distributed: bool = False

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the warehouse is (a path or a URL), for messages."""

    @property
    @abc.abstractmethod
    def read_only(self) -> bool:
        """True when this handle may not write."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection (and the engine's locks)."""

    # -- describe -------------------------------------------------------------------------------

    @abc.abstractmethod
    def exists(self, relation: str) -> bool:
        """True when `schema.table` is a table or view."""

    @abc.abstractmethod
    def relations(self, schema: str | None = None) -> list[RelationInfo]:
        """The tables and views (of `schema`, compared case-insensitively), by schema and name."""

    @abc.abstractmethod
    def describe(self, relation: str) -> pa.Schema:
        """The columns of a relation and their types, as the relation reads into Arrow."""

    @abc.abstractmethod
    def sql_types(self, relation: str) -> dict[str, str]:
        """Column -> the engine's own type name (for messages and type checks people read)."""

    @abc.abstractmethod
    def row_count(self, relation: str) -> int:
        """Rows of a relation."""

    # -- read -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def read_frame(
        self,
        relation: str,
        columns: Sequence[str] | None = None,
        order_by: str | None = None,
    ) -> pd.DataFrame:
        """A whole relation (or some of its columns) as pandas, ordered by `order_by` if given.

        Order matters for reproducibility: a table built by a parallel query has no stable row
        order, so positional splits must not depend on it.
        """

    @abc.abstractmethod
    def read_arrow(self, relation: str, columns: Sequence[str] | None = None) -> pa.Table:
        """A whole relation (or some of its columns) as an Arrow table."""

    @abc.abstractmethod
    def read_batches(
        self, relation: str, columns: Columns = None, batch_rows: int = BATCH_ROWS
    ) -> contextlib.AbstractContextManager[pa.RecordBatchReader]:
        """Stream a relation as Arrow record batches of at most `batch_rows` rows.

        `columns` selects (and, as a mapping output name -> relation column, renames) columns.
        Decimal columns arrive as float64, as `read_frame` gives them. The reader sees the
        relation as it was when it was opened, whatever this handle writes meanwhile.
        """

    @abc.abstractmethod
    def sample_frame(self, relation: str, rows: int, seed: int) -> pd.DataFrame:
        """A seeded sample of at most `rows` rows (every row when there are fewer)."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """The result of a query in the engine's SQL, with `?` parameters, as pandas.

        Keep to SQL every engine reads (dbt's cross-database subset): the same feature code runs
        on each engine.
        """

    @abc.abstractmethod
    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """`query`, as an Arrow table."""

    # -- write (each call is one transaction) ---------------------------------------------------

    @abc.abstractmethod
    def replace_tables(self, tables: Mapping[str, Data]) -> dict[str, int]:
        """Replace (or create) several tables in ONE transaction: all change, or none does.

        Readers see the old tables or the new ones, never a mix. Returns the rows written per
        table. The schema of each table is created when missing.
        """

    def replace_table(self, relation: str, data: Data) -> int:
        """`replace_tables` for one table; returns the rows written."""
        return next(iter(self.replace_tables({relation: data}).values()))

    @abc.abstractmethod
    def append_rows(self, relation: str, data: Data) -> int:
        """Append rows in one transaction, creating the table from `data` when it is missing
        and adding (nullable) columns `data` has that the table lacks; columns match by name."""

    def append_tables(self, tables: Mapping[str, Data]) -> dict[str, int]:
        """`append_rows` for several tables in ONE transaction: all get their rows, or none does.
        Returns the rows appended per table."""
        raise NotImplementedError(f"{type(self).__name__} cannot append to several tables")

    @abc.abstractmethod
    def table_writer(
        self, relation: str, schema: pa.Schema, *, background: bool = True
    ) -> contextlib.AbstractContextManager[TableWriter]:
        """A writer whose rows replace `relation` in one transaction when the block ends.

        Until then readers see the old table; an exception in the block (or a kill) leaves the
        old table and nothing else. With `background`, inserts run in a thread while the
        caller prepares the next batch.
        """

    @abc.abstractmethod
    def execute(self, sql: str) -> None:
        """Run one statement in the engine's own SQL (for code that is engine-specific by
        nature, such as the benchmark's replay of dbt's compiled SQL)."""

    def map_table(
        self,
        source: str,
        columns: Columns,
        job: BatchJob,
        target: str,
        *,
        batch_rows: int = BATCH_ROWS,
        background: bool = True,
    ) -> int:
        """Replace `target` by `job` applied to every row of `source` (`columns` as for
        `read_batches`); return the rows written.

        The target is replaced as `table_writer` replaces it: a failure (or a kill) before the
        end leaves the old table. This implementation streams the source through `job.run` in
        this process; an engine with workers of its own runs `job.part_task()` on them.
        """
        with self.read_batches(source, columns, batch_rows) as reader:
            schema = job.output_schema(reader.schema)
            with self.table_writer(target, schema, background=background) as writer:
                rows = job.run(reader, writer)
                job.finish(rows)
        return rows

    @property
    def parallelism(self) -> int:
        """How many parts the engine's workers work on at once (1: this process)."""
        return 1

    def fit_on_workers(self, source: str, columns: Columns, job: BatchJob, estimator: Any) -> Any:
        """Fit `estimator`, a distributed estimator of the engine's (`fit(dataset)` returns the
        fitted model, as Spark ML's and xgboost.spark's do), on its workers, to the rows
        `job.part_task()` makes of each part of `source`'s `columns`; return the fitted model.
        None where the engine has no workers of its own (this one): the caller fits in this
        process instead."""
        return None

    @contextlib.contextmanager
    def bounded_memory(self, limit: str | None) -> Iterator[None]:
        """Hold the engine's memory to `limit` (e.g. `256MB`) in the block, where it has one."""
        yield

    # -- helpers every engine shares --------------------------------------------------------------

    def appended(self, relation: str, new_rows: pd.DataFrame) -> pd.DataFrame:
        """`relation`'s rows with `new_rows` after them (columns united by name), to write back
        whole with `replace_tables` in the same transaction as the tables they describe."""
        if self.exists(relation):
            return pd.concat([self.read_frame(relation), new_rows], ignore_index=True, sort=False)
        return new_rows

    def replaced_where(self, relation: str, new_rows: pd.DataFrame, column: str) -> pd.DataFrame:
        """`relation`'s rows whose `column` value is not among `new_rows`' values, then
        `new_rows`: for tables several tasks share, a run replaces its tasks' rows only."""
        if not self.exists(relation):
            return new_rows
        old = self.read_frame(relation)
        if new_rows.empty:
            return old
        replaced = set(map(str, new_rows[column].dropna().unique()))
        kept = old[~old[column].astype("object").map(str).isin(replaced)]
        return pd.concat([kept, new_rows], ignore_index=True, sort=False)
