"""Reading a table for the gate, through the warehouse interface, as the frames GX validates:
a zero-row frame with the table's schema, and frames of the few columns an expectation names."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from ml.core.warehouse import Warehouse


def read_schema(warehouse: Warehouse, relation: str) -> pd.DataFrame:
    """The table's columns and types as the zero-row frame the schema expectations see.

    Each column has the dtype DuckDB hands its SQL type over as (INTEGER int32, BIGINT int64,
    DOUBLE and DECIMAL float64, DATE and TIMESTAMP datetime64[us], ...), except that VARCHAR
    columns are `StringDtype`: DuckDB hands an empty VARCHAR column over as `object`, and pandas 3
    a filled one as `str`; Great Expectations 1.24 can match neither in a type list (it passes an
    `object` column vacuously), while `StringDtype` it matches. Raises `RelationNotFoundError`.
    """
    schema = warehouse.describe(relation)
    sql_types = warehouse.sql_types(relation)
    fields = []
    for f in schema:
        kind = f.type
        if pa.types.is_decimal(kind):
            kind = pa.float64()
        elif pa.types.is_date(kind):
            kind = pa.timestamp("us")
        fields.append(pa.field(f.name, kind))
    frame = pa.schema(fields).empty_table().to_pandas(date_as_object=False)
    for name in frame.columns:
        if sql_types[name].upper() in ("VARCHAR", "STRING"):  # DuckDB's name, Spark's
            frame[name] = frame[name].astype(pd.StringDtype())
        elif isinstance(frame[name].dtype, pd.StringDtype):  # JSON, UUID...: as DuckDB hands them
            frame[name] = frame[name].astype(object)
    return frame


def read_columns(warehouse: Warehouse, relation: str, columns: Sequence[str]) -> pd.DataFrame:
    """Only the named columns of a table, with the dtypes of `value_frame`."""
    return value_frame(warehouse.read_arrow(relation, columns))


def value_frame(table: pa.Table) -> pd.DataFrame:
    """The frame the value expectations see, with dtypes on which GX's pandas metrics are fast.

    Read through Arrow (several times faster than DuckDB's `.df()` for text). GX's pandas
    `between` is vectorised only for int64, float64 and datetime64[ns] columns and loops over
    values in Python otherwise, so: integers become int64 (float64 when they hold NULLs, as
    Arrow does), decimals float64, dates and timestamps datetime64[ns] when in range. Column
    types are checked on the schema frame, so none of this changes a verdict.
    """
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    frame = table.to_pandas(date_as_object=False, types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            frame[name] = frame[name].astype("int64")
        elif pd.api.types.is_datetime64_dtype(dtype) and dtype != "datetime64[ns]":
            with contextlib.suppress(ValueError, OverflowError):  # out of ns range: keep as is
                frame[name] = frame[name].astype("datetime64[ns]")
    return frame
