"""Settings every step shares: where the warehouse and the artifacts are, and how long to wait.

Environment variables override the defaults; only this module reads them (the entry points pass
everything else down as arguments).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
#: Where each engine keeps the warehouse unless WAREHOUSE_PATH says otherwise: DuckDB's file, the
#: Spark lakehouse's folder (tables, metastore, logs).
DEFAULT_WAREHOUSE = {
    "duckdb": PROJECT_ROOT / "warehouse" / "warehouse.duckdb",
    "spark": PROJECT_ROOT / "warehouse" / "spark",
}

#: Seconds a step waits for another process to release the warehouse before giving up.
DEFAULT_LOCK_TIMEOUT_S = 30.0
#: The engines behind the warehouse interface (`WAREHOUSE_ENGINE`).
ENGINES = tuple(DEFAULT_WAREHOUSE)
DEFAULT_SEED = 42


def warehouse_path(engine: str | None = None) -> Path:
    """The warehouse: `WAREHOUSE_PATH` if set, else the engine's default (`warehouse/warehouse.duckdb`
    for DuckDB, the folder `warehouse/spark` for Spark)."""
    value = os.environ.get("WAREHOUSE_PATH", "").strip()
    if value:
        return Path(value).expanduser().resolve()
    return DEFAULT_WAREHOUSE.get(engine or warehouse_engine(), DEFAULT_WAREHOUSE["duckdb"])


def environment(name: str, default: str = "") -> str:
    """An environment variable a setting file names (profiles.yml's `env_var(...)`)."""
    return os.environ.get(name, default)


def warehouse_engine() -> str:
    """`WAREHOUSE_ENGINE` (default duckdb), lowercased; unknown names are refused on open."""
    return os.environ.get("WAREHOUSE_ENGINE", "").strip().lower() or "duckdb"


def lock_timeout_s() -> float:
    """`WAREHOUSE_LOCK_TIMEOUT` (seconds) or the default."""
    value = os.environ.get("WAREHOUSE_LOCK_TIMEOUT", "").strip()
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT_S
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT_S


def artifacts_root() -> Path:
    """Where models are stored: `ARTIFACTS_PATH`, or `artifacts/` in the repository."""
    value = os.environ.get("ARTIFACTS_PATH", "").strip()
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / "artifacts"


def _threads(variable: str) -> int:
    value = os.environ.get(variable, "").strip()
    try:
        threads = int(value) if value else 0
    except ValueError:
        threads = 0
    return threads if threads > 0 else (os.cpu_count() or 1)


def n_threads() -> int:
    """Threads for xgboost and the tree kernel (`ML_THREADS`, default: every core)."""
    return _threads("ML_THREADS")


def tf_threads() -> int:
    """TensorFlow's intra-op threads (`ML_TF_THREADS`, default: every core)."""
    return _threads("ML_TF_THREADS")


@functools.cache
def dbt_vars() -> dict:
    """The `vars:` of dbt_project.yml: the one place for values dbt and Python share."""
    with open(DBT_PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh).get("vars") or {})


def as_of_date() -> str:
    """The day after the simulated world ends (dbt var `as_of_date`, an ISO date)."""
    return str(dbt_vars()["as_of_date"])
