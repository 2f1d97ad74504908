"""The Spark session of a process: its settings, and one lakehouse per process.

The settings are the `spark` target of profiles.yml (read here, so that dbt and Python never
disagree): `local[2]`, UTC, a Derby metastore and the tables under WAREHOUSE_PATH. A process
holds one session (starting Spark costs seconds), bound to the lakehouse it was started on.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import yaml
from pyspark.sql import SparkSession

from ml.core import config
from ml.core.errors import UserError, WarehouseLockedError

_ENV_VAR = re.compile(r"\{\{\s*env_var\(\s*'([^']+)'\s*(?:,\s*'([^']*)'\s*)?\)\s*\}\}")


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


_SESSION: Any = None
_SESSION_ROOT: Path | None = None


def _local_settings(settings: dict[str, str]) -> dict[str, str]:
    """What a local Spark needs beyond profiles.yml for Python work on its executors: no
    progress bars on stderr, and (on a `local` master) the executors' Python workers import
    this project. On a cluster the executors' Python and the project are the cluster's setup."""
    out = {"spark.ui.showConsoleProgress": "false", **settings}
    if out.get("spark.master", "local").startswith("local"):
        paths = [str(config.PROJECT_ROOT), *filter(None, [config.environment("PYTHONPATH")])]
        out.setdefault("spark.executorEnv.PYTHONPATH", os.pathsep.join(paths))
    return out


def session(root: Path, timeout_s: float) -> Any:
    """The process's Spark session on `root` (one per process; Spark starts in seconds)."""
    global _SESSION, _SESSION_ROOT
    if _SESSION is not None:
        if root != _SESSION_ROOT:
            raise UserError(
                f"cannot open warehouse {root}: this process has the Spark warehouse "
                f"{_SESSION_ROOT} open (one Spark lakehouse per process)"
            )
        return _SESSION
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
    settings = _local_settings(spark_settings(root))
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in settings.items():
        builder = builder.config(key, value)
    start, delay = time.monotonic(), 0.5
    while True:
        spark = builder.getOrCreate()
        try:
            spark.catalog.listDatabases()  # boots the metastore: fails while another holds it
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
    if settings["spark.master"].startswith("local") and not config.environment("PYSPARK_PYTHON"):
        spark.sparkContext.pythonExec = sys.executable  # the executors' Python: this one
    _SESSION, _SESSION_ROOT = spark, root
    return spark
