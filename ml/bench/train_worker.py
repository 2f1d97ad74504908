"""The benchmark's training worker: `python -m ml.bench.train_worker SPEC.json`.

Trains one task as `python -m ml.train --fast --task T --seed S --skip-gate` does (the training
API: `ml.training.run.run_training`) and appends one JSON line `{"t": seconds since launch,
"step": ...}` to the spec's `steps` file as each training step starts (the API's progress
callback). The leaderboard goes to stdout (the worker's log).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console

from ml.bench.process import read_spec, since_launch
from ml.core.cli import run
from ml.training.experiment import TrainOptions
from ml.training.leaderboard import leaderboard
from ml.training.run import TASK_STEPS, run_training, task_specs

#: The first step: from the launch to the first training step.
FIRST_STEP = "start python, import, read the task's table"


def main(argv: Sequence[str] | None = None) -> int:
    """Train the spec's task, logging its steps."""
    spec = read_spec(argv)
    calls: dict[str, int] = {}
    with open(spec["steps"], "a", buffering=1, encoding="utf-8") as log:

        def note(step: str, t: float | None = None) -> None:
            t = since_launch(spec) if t is None else t
            log.write(json.dumps({"t": t, "step": step}) + "\n")
            print(f"[{t:8.1f}s] {step}", flush=True)

        def progress(task: str, message: str) -> None:
            calls[task] = calls.get(task, 0) + 1
            if calls[task] == TASK_STEPS:  # the task is trained; the run writes its tables next
                message += ", then write the ml.* tables"
            note(message)

        note(FIRST_STEP, 0.0)
        options = TrainOptions(seed=int(spec["seed"]), fast=True, skip_gate=True)
        result = run_training(task_specs(task=spec["task"]), options, progress)
    console = Console(width=120)
    for r in result.results:
        console.print(leaderboard(r))
    written = ", ".join(f"{relation} ({rows:,} rows)" for relation, rows in result.written.items())
    console.print(f"run {result.run_id} wrote {written}")
    return 0


if __name__ == "__main__":
    run(main, "ml.bench.train_worker")
