"""Arrow as the Spark warehouse reads and writes it, and what its executors run.

Spark hands back timestamps with the session's time zone and large strings; the warehouse hands
out what DuckDB would (naive UTC timestamps, plain strings, decimals as doubles). Tables are
written as Parquet by pyarrow. `PartRunner` is what `mapInArrow` calls on an executor for a
`BatchJob`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark import TaskContext

from ml.core.warehouse.base import Data, PartTask, TableWriter

#: Rows per Parquet row group written (and per Arrow batch written at a time).
ROW_GROUP_ROWS = 262_144


def plain_type(kind: pa.DataType) -> pa.DataType:
    """The type a column of `kind` is written as (Spark has no dictionaries or large strings)."""
    if pa.types.is_dictionary(kind):
        return plain_type(kind.value_type)
    if pa.types.is_null(kind):
        return pa.string()
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return pa.string()
    if pa.types.is_timestamp(kind) and kind.tz is None:
        return pa.timestamp("us", tz="UTC")  # Spark's TIMESTAMP, shown in the session's UTC
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz=kind.tz)
    return kind


def plain_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every column's type as it is written (`plain_type`)."""
    return pa.schema([pa.field(f.name, plain_type(f.type)) for f in schema])


def arrow_of(data: Data) -> pa.Table:
    """What a write takes, as an Arrow table of the types it is written as."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    return table.cast(plain_schema(table.schema))


def plain(table: pa.Table) -> pa.Table:
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


#: pandas' nullable dtypes, for whole-number and boolean columns holding NULLs (as DuckDB's `.df()`)
NULLABLE = {
    pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(),
}  # fmt: skip


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """What Spark hands back, as DuckDB's `.df()` gives it: naive timestamps, and whole numbers
    or booleans with NULLs in pandas' nullable dtypes (not floats or objects)."""
    table = plain(table)
    frame = table.to_pandas(date_as_object=False)
    for name, column in zip(table.column_names, table.columns, strict=True):
        if column.type in NULLABLE and column.null_count:
            frame[name] = column.to_pandas(types_mapper=NULLABLE.get)
    return frame


def write_parquet(folder: Path, table: pa.Table) -> int:
    """Write `table` as one Parquet file in `folder`; the rows."""
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-00000.parquet", row_group_size=ROW_GROUP_ROWS)
    return table.num_rows


def batch_of(table: pa.Table, pairs: list[tuple[str, str]]) -> pa.RecordBatch:
    """The output columns of a streamed batch: renamed, timestamps naive, decimals as doubles
    (as DuckDB streams them)."""
    table = plain(table)
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


class ParquetWriter(TableWriter):
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


def first_rows(frame: Any) -> dict[int, int]:
    """Partition index -> the 1-based number of its first row, in partition order (one pass)."""
    counts = frame.mapInArrow(_count_part, "part int, rows long").collect()
    firsts, start = {}, 1
    for row in sorted(counts):
        firsts[row["part"]] = start
        start += row["rows"]
    return firsts


def _count_part(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    rows = sum(batch.num_rows for batch in batches)
    part = TaskContext.get().partitionId()
    yield pa.RecordBatch.from_pydict({"part": pa.array([part], pa.int32()), "rows": [rows]})


class PartRunner:
    """What `mapInArrow` calls on an executor: the job's task on this partition's batches, its
    output cast to the declared (Spark's plain) types."""

    def __init__(self, task: PartTask, schema: pa.Schema, firsts: dict[int, int] | None) -> None:
        self.task, self.schema, self.firsts = task, schema, firsts

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        first = 1
        if self.firsts is not None:
            first = self.firsts.get(TaskContext.get().partitionId(), 1)
        for out in self.task(batches, first):
            table = out if isinstance(out, pa.Table) else pa.Table.from_batches([out])
            yield from table.cast(self.schema).to_batches()
