"""A whole benchmark: every size in its own fresh warehouse, then the headline numbers.

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

from ml.bench.options import BenchOptions
from ml.bench.process import bench_versions, load_average, machine_info
from ml.bench.size import bench_size
from ml.bench.summary import check_targets, summarize

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
    try:
        for orders in options.sizes:
            runs[orders] = bench_size(orders, options, workdir, say)
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
        "versions": bench_versions(),
        "workdir": str(workdir) if options.keep else None,
        "runs": {str(k): v for k, v in runs.items()},
    }
