"""The benchmark's scoring worker: `python -m ml.bench.score_worker SPEC.json`.

Loads a model bundle (hash-checked), scores the spec's source table into its target with
`ml.serving.batch.score_table`, and writes its measurements as JSON to the spec's `result`
file: rows, seconds, CPU, peak memory (this process's own, and its children's: Spark's JVM and
Python workers), the stages, and which path scored
(`scoring_path` "fast" or "generic", `fallback_reason`, `compiled_trees` per xgboost member).
It imports serving code only, as a deployed scorer would.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import time
from collections.abc import Sequence
from typing import Any

from ml.bench.process import (
    descendants_peak_rss_mb,
    peak_rss_mb,
    read_spec,
    rss_mb,
    since_launch,
)
from ml.core.cli import run
from ml.core.files import atomic_write
from ml.core.warehouse import open_warehouse
from ml.serving.batch import DEFAULT_BATCH_ROWS, ScoringStats, score_table
from ml.serving.bundle import load_bundle
from ml.serving.model import TrainedModel

#: Lines of the cProfile table kept (sorted by own time).
PROFILE_ROWS = 20


def scoring_path(stats: ScoringStats) -> dict[str, Any]:
    """Which path scored: "fast" or "generic", why not fast, and how each xgboost member's trees
    were evaluated ("compiled" or why not)."""
    return {
        "scoring_path": stats.path,
        "fallback_reason": stats.fallback_reason,
        "compiled_trees": dict(stats.compiled_trees),
    }


def score(spec: dict[str, Any]) -> dict[str, Any]:
    """Load the spec's model and score its source into its target; the measurements."""
    ref = spec["model"]
    model = TrainedModel.of(load_bundle(ref["path"], ref["sha256"]))
    load_s = since_launch(spec)
    rss_loaded = rss_mb()
    stats = ScoringStats()
    batch_rows = spec.get("batch_rows") or DEFAULT_BATCH_ROWS
    profiler = cProfile.Profile(time.process_time) if spec.get("profile") else None
    profile_text = None
    with open_warehouse(spec["warehouse"]) as wh:
        if profiler is not None:
            profiler.enable()
        rows = score_table(
            wh, model, spec["source"], spec["target"], batch_rows, fast=spec["fast"], stats=stats
        )
        if profiler is not None:
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(PROFILE_ROWS)
            profile_text = buffer.getvalue()
        written = wh.row_count(spec["target"])
    return {
        "model_name": ref["model_name"],
        "model_class": type(model.pipeline).__name__,
        "run_id": ref["run_id"],
        "stand_in": bool(ref.get("stand_in")),
        "rows": rows,
        "rows_written": written,
        "batch_rows": batch_rows,
        "seconds": stats.seconds,
        "rows_per_s": rows / stats.seconds if stats.seconds > 0 else None,
        "cpu_s": stats.cpu_s,
        "rows_per_cpu_s": rows / stats.cpu_s if stats.cpu_s > 0 else None,
        "load_s": load_s,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
        # the engine's own processes (Spark: the JVM and its Python workers; DuckDB: none)
        "engine_peak_rss_mb": descendants_peak_rss_mb(),
        **scoring_path(stats),
        "stats": stats.as_dict(),
        "profile": profile_text,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Score as the spec says; write the measurements to its `result` file."""
    spec = read_spec(argv)
    result = score(spec)
    atomic_write(spec["result"], json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    run(main, "ml.bench.score_worker")
