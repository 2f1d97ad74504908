"""A whole benchmark: every size in its own fresh warehouse, then the headline numbers; then
every Spark size in its own fresh lakehouse, compared with DuckDB's (`ml.bench.comparison`).

result = run_bench(BenchOptions(sizes=[3000], skip_train=True), command, say)
write_reports(result, Path("reports"))      # ml.bench.reports
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.bench.comparison import compare_engines
from ml.bench.options import BenchOptions
from ml.bench.process import bench_versions, load_average, machine_info
from ml.bench.size import bench_size
from ml.bench.summary import check_targets, summarize
from ml.core import config

#: profiles.yml's Spark master unless SPARK_MASTER says otherwise.
SPARK_MASTER = "local[2]"

Say = Callable[[str], None]
TIMESTAMP = "%Y-%m-%d %H:%M:%S"


def run_bench(options: BenchOptions, command: str, say: Say) -> dict[str, Any]:
    """Measure every size of `options` (progress through `say`); what bench.json holds: the
    largest size's headline numbers at the top level, the targets, every size under "runs".
    `command` is the command line, for the report."""
    started = datetime.now(UTC)
    own_workdir = options.workdir is None
    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="bench-")).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    say(
        f"sizes {', '.join(f'{s:,}' for s in options.sizes)} orders; workdir {workdir}; "
        f"{machine['cores']} cores, load average {machine['load_average']}"
    )
    runs: dict[int, dict[str, Any]] = {}
    spark_runs: dict[int, dict[str, Any]] = {}
    try:
        for orders in options.sizes:
            runs[orders] = bench_size(orders, options, workdir, say)
        for orders in options.spark_sizes:
            spark_runs[orders] = _spark_size(orders, options, workdir, say)
    finally:
        if own_workdir and not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(runs)
    return {
        **summary,
        "summary": summary,
        "targets": check_targets(summary),
        "started_at": started.strftime(TIMESTAMP),
        "finished_at": datetime.now(UTC).strftime(TIMESTAMP),
        "command": command,
        "seed": options.seed,
        "sizes": options.sizes,
        "machine": machine,
        "load_average_end": load_average(),
        "versions": bench_versions(spark=bool(options.spark_sizes)),
        "workdir": str(workdir) if options.keep else None,
        "runs": {str(k): v for k, v in runs.items()},
        "spark": _spark(runs, spark_runs, machine) if options.spark_sizes else None,
    }


def _spark_size(orders: int, options: BenchOptions, workdir: Path, say: Say) -> dict[str, Any]:
    """A Spark size's measurements; a failure is recorded (and said), not raised: DuckDB's
    sizes, measured before, still make their report."""
    try:
        return bench_size(orders, options, workdir, say, engine="spark")
    except Exception as err:  # noqa: BLE001 - any failure of a step, reported as the result
        message = str(err).strip() or type(err).__name__
        say(f"{orders:,} orders on Spark failed: {message.splitlines()[0]}")
        return {"orders": orders, "engine": "spark", "error": message}


def _spark(
    runs: dict[int, dict[str, Any]], spark_runs: dict[int, dict[str, Any]], machine: dict
) -> dict[str, Any]:
    """bench.json's "spark": the Spark sizes, their runs, and their comparison with DuckDB."""
    return {
        "sizes": sorted(spark_runs),
        "master": config.environment("SPARK_MASTER", SPARK_MASTER),
        "runs": {str(k): v for k, v in spark_runs.items()},
        "failed": [k for k, v in sorted(spark_runs.items()) if "error" in v],
        "comparison": compare_engines(runs, spark_runs),
    }
