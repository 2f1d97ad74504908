"""How the reports read the warehouse: read-only, through the warehouse interface, in SQL every
engine reads; and the small conversions of what comes back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ml.core.names import find_column, qualified, quote_ident
from ml.core.warehouse import Warehouse, open_warehouse

T = TypeVar("T")
R = TypeVar("R")


def open_read_only(path: str | Path | None = None) -> Warehouse:
    """The warehouse (`WAREHOUSE_PATH` unless `path`), opened to read only."""
    return open_warehouse(path, read_only=True)


def read_then_draw(
    path: str | Path | None, read: Callable[[Warehouse], T], draw: Callable[[T], R]
) -> R:
    """`read(wh)` with the warehouse open to read only, then `draw` what it read once the
    warehouse is closed (another step may write meanwhile)."""
    with open_read_only(path) as wh:
        data = read(wh)
    return draw(data)


def select(
    wh: Warehouse,
    relation: str,
    *,
    where: Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Rows of `relation` (or some of its columns) whose columns equal `where`'s values (passed
    as parameters), ordered by `order_by`, at most `limit`: the one query the reports send."""
    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    sql = f"select {cols} from {qualified(relation)}"
    where = dict(where or {})
    if where:
        sql += " where " + " and ".join(f"{quote_ident(c)} = ?" for c in where)
    if order_by:
        keys = [order_by] if isinstance(order_by, str) else list(order_by)
        sql += " order by " + ", ".join(quote_ident(c) for c in keys)
    if limit is not None:
        sql += f" limit {int(limit)}"
    return wh.query(sql, list(where.values()))


def missing_columns(wh: Warehouse, relation: str, wanted: Iterable[str]) -> list[str]:
    """The `wanted` columns that `relation` lacks (names compared as SQL compares them)."""
    have = list(wh.sql_types(relation))
    return [c for c in wanted if find_column(have, c) is None]


def as_bool(series: pd.Series) -> pd.Series:
    """A flag column as plain booleans, missing as False."""
    return series.astype("object").map(lambda v: bool(v) if not pd.isna(v) else False).astype(bool)


def json_value(text: Any, default: Any = None) -> Any:
    """The value of JSON text, or `default` for a missing or malformed one."""
    if not isinstance(text, str) or not text.strip():
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def sample_positions(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of at most `max_rows` of `n` rows (all when fewer)."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
