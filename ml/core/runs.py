"""What identifies a run: its id, and the library versions it ran with."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata

#: The libraries a saved model depends on (their versions go into its metadata).
MODEL_LIBRARIES = (
    "scikit-learn",
    "xgboost-cpu",
    "lightgbm",
    "tensorflow-cpu",
    "keras",
    "pandas",
    "numpy",
    "duckdb",
)


def library_versions(dists: Iterable[str] = MODEL_LIBRARIES) -> dict[str, str]:
    """Versions of the installed distributions `dists` (default: what a model depends on)."""
    out = {}
    for dist in dists:
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def new_run_id() -> str:
    """Sortable id of one invocation (a training or segmentation run): UTC time + a suffix."""
    return (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        + "-"
        + hashlib.sha1(str(time.perf_counter_ns()).encode()).hexdigest()[:6]
    )
