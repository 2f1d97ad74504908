"""Settings shared by every step. Environment variables override the defaults."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = PROJECT_ROOT / "warehouse" / "warehouse.duckdb"

#: The simulated world ends the day before this date; dbt's `as_of_date` var has the same value.
AS_OF_DATE = "2026-01-01"

#: Seconds a step waits for another process to release the warehouse before giving up.
DEFAULT_LOCK_TIMEOUT_S = 30.0


def warehouse_path() -> Path:
    """The DuckDB file: `WAREHOUSE_PATH` if set, else `warehouse/warehouse.duckdb` in the repo."""
    value = os.environ.get("WAREHOUSE_PATH", "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT_WAREHOUSE


def lock_timeout_s() -> float:
    """`WAREHOUSE_LOCK_TIMEOUT` (seconds) or the default."""
    value = os.environ.get("WAREHOUSE_LOCK_TIMEOUT", "").strip()
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT_S
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT_S
