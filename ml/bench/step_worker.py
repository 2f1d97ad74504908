"""The steps of a size that open the warehouse themselves: here on DuckDB, in a worker on Spark.

    results = run_steps("spark", [("simulate", {...})], env, folder, "simulate")

Simulating, building `bench.scoring_input` and finding (or fitting) the models to score open the
warehouse. On DuckDB they run in the bench process, as they always have. On Spark they run in a
worker, `python -m ml.bench.step_worker SPEC.json`: a Spark lakehouse's Derby metastore admits
one process at a time and a JVM started in a process holds it until that process exits, so the
bench process never opens a lakehouse. The steps of one `run_steps` call share one worker (one
Spark session start); their results come back as JSON (the spec's `result` file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ml.bench.process import read_spec, run_worker, tail
from ml.bench.scoring import build_scoring_input, scoring_models
from ml.bench.simulate import run_simulate
from ml.core.cli import run
from ml.core.files import atomic_write

#: The steps by name: each takes JSON-able keyword arguments and returns a JSON-able dict.
STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "simulate": run_simulate,
    "scoring_input": build_scoring_input,
    "scoring_models": scoring_models,
}
#: The engines whose steps run in the bench process.
IN_PROCESS = ("duckdb",)


def run_steps(
    engine: str,
    steps: Sequence[tuple[str, dict[str, Any]]],
    env: dict[str, str],
    workdir: Path,
    name: str,
) -> tuple[list[dict[str, Any]], dict[str, float] | None]:
    """Run `steps` (name, keyword arguments) in order: in this process on DuckDB, in ONE worker
    process named `name` (its spec and log in `workdir`) on another engine. Their results, and
    the worker's `process_s` and `process_cpu_s` (wall and CPU seconds; None in this process)."""
    if engine in IN_PROCESS:
        return [STEPS[step](**kwargs) for step, kwargs in steps], None
    result_file = workdir / f"{name}.result.json"
    result_file.unlink(missing_ok=True)
    spec = {"steps": [[step, kwargs] for step, kwargs in steps], "result": str(result_file)}
    proc = run_worker(__name__, spec, name, workdir, env)
    if proc["returncode"] != 0 or not result_file.exists():
        raise RuntimeError(f"{name} failed on {engine}:\n{tail(proc['log'])}")
    process = {"process_s": proc["seconds"], "process_cpu_s": proc["cpu_s"]}
    return json.loads(result_file.read_text()), process


def main(argv: Sequence[str] | None = None) -> int:
    """Run the spec's steps; write their results (a JSON list) to its `result` file."""
    spec = read_spec(argv)
    results = [STEPS[step](**kwargs) for step, kwargs in spec["steps"]]
    atomic_write(spec["result"], json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    run(main, "ml.bench.step_worker")
