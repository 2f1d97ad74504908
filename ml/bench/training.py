"""Step 4 of a size: train each task (`--fast`) in its own process, with its steps timed.

The worker (`ml.bench.train_worker`) runs what `python -m ml.train --fast --task T --seed S
--skip-gate` runs, through the training API, and logs when each training step starts (the
API's progress callback). A task running past its timeout is stopped; the report names the step
it was in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ml.bench import train_worker
from ml.bench.process import run_worker, tail

#: Tasks trained per size; loan_repayment first: scoring needs its models.
TASKS = ("loan_repayment", "customer_satisfaction", "customer_segment")
#: A training task is stopped after this long (the report names the step it was in).
DEFAULT_TRAIN_TIMEOUT_S = 3600.0


def train_command(task: str, seed: int) -> str:
    """The `ml.train` command a worker's training equals (for the report)."""
    return f"python -m ml.train --fast --task {task} --seed {seed} --skip-gate"


def read_steps(path: Path, total_s: float) -> list[dict[str, Any]]:
    """The logged steps as (step, seconds until the next one), from the process's launch."""
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = []
    for i, event in enumerate(events):
        end = events[i + 1]["t"] if i + 1 < len(events) else total_s
        steps.append({"step": event["step"], "seconds": round(max(end - event["t"], 0.0), 2)})
    return steps


def run_train(
    task: str, seed: int, env: dict[str, str], workdir: Path, timeout: float | None
) -> dict[str, Any]:
    """Train `task` as `train_command` in a worker process: seconds, CPU, status, steps."""
    steps_file = workdir / f"train-{task}.steps.jsonl"
    steps_file.unlink(missing_ok=True)
    spec = {"task": task, "seed": seed, "steps": str(steps_file)}
    result = run_worker(train_worker.__name__, spec, f"train-{task}", workdir, env, timeout=timeout)
    status = "ok" if result["returncode"] == 0 else "failed"
    if result["timed_out"]:
        status = "timeout"
    out = {
        "seconds": result["seconds"],
        "cpu_s": result["cpu_s"],
        "status": status,
        "steps": read_steps(steps_file, result["seconds"]),
        "command": train_command(task, seed),
    }
    if status != "ok":
        out["log_tail"] = tail(result["log"])
    return out
