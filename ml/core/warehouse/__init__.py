"""The warehouse interface and its engines: the only code that connects to the data.

    from ml.core.warehouse import open_warehouse

    with open_warehouse(read_only=True) as wh:
        frame = wh.read_frame("marts.loan_features", order_by="loan_id")

`open_warehouse` picks the engine from `WAREHOUSE_ENGINE` (default duckdb) and the location
from the engine's own setting (`WAREHOUSE_PATH` for DuckDB).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.core import config
from ml.core.errors import UserError
from ml.core.warehouse.base import Data, RelationInfo, TableWriter, Warehouse

__all__ = ["Data", "RelationInfo", "TableWriter", "Warehouse", "open_warehouse"]


def open_warehouse(
    path: str | Path | None = None, *, engine: str | None = None, **options: Any
) -> Warehouse:
    """Open the warehouse (`read_only=True` to only read; `timeout_s` to bound the wait for a
    lock). Close it, or use it as a context manager."""
    engine = engine or config.warehouse_engine()
    if engine == "duckdb":
        from ml.core.warehouse.duckdb import DuckDBWarehouse  # the engine's driver, on demand

        return DuckDBWarehouse(path, **options)
    if engine == "spark":
        from ml.core.warehouse.spark import SparkWarehouse  # pyspark: seconds, only for Spark

        return SparkWarehouse(path, **options)
    known = ", ".join(config.ENGINES)
    raise UserError(f"unknown WAREHOUSE_ENGINE {engine!r}: use one of {known}")
