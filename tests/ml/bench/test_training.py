"""ml.bench.training and its worker: each training step timed through the progress callback."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

from ml.bench import train_worker
from ml.bench.training import read_steps
from ml.training.run import TASK_STEPS


def test_read_steps_times_each_step_until_the_next(tmp_path) -> None:
    path = tmp_path / "steps.jsonl"
    events = [{"t": 0.0, "step": "start"}, {"t": 2.0, "step": "tune"}, {"t": 5.5, "step": "save"}]
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    assert read_steps(path, 6.0) == [
        {"step": "start", "seconds": 2.0},
        {"step": "tune", "seconds": 3.5},
        {"step": "save", "seconds": 0.5},
    ]
    assert read_steps(tmp_path / "missing.jsonl", 1.0) == []


def test_the_worker_logs_every_progress_step(tmp_path, monkeypatch) -> None:
    """The worker hands run_training a progress callback and logs each step as it starts; the
    last step of a task is followed by the writing of the ml.* tables."""
    calls = {}

    def fake_run_training(specs, options, progress):
        calls["specs"], calls["options"] = specs, options
        for i in range(TASK_STEPS):
            progress("loan_repayment", f"loan_repayment: step {i}")
        return SimpleNamespace(results=[], written={"ml.model_runs": 6}, run_id="r1")

    monkeypatch.setattr(train_worker, "run_training", fake_run_training)
    steps = tmp_path / "steps.jsonl"
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {"task": "loan_repayment", "seed": 3, "steps": str(steps), "launched_at": time.time()}
        )
    )
    assert train_worker.main([str(spec)]) == 0
    assert [s.name for s in calls["specs"]] == ["loan_repayment"]
    options = calls["options"]
    assert options.seed == 3 and options.fast and options.skip_gate
    logged = [json.loads(line) for line in steps.read_text().splitlines()]
    assert logged[0] == {"t": 0.0, "step": train_worker.FIRST_STEP}
    assert len(logged) == 1 + TASK_STEPS
    assert logged[1]["step"] == "loan_repayment: step 0"
    assert logged[-1]["step"].endswith(", then write the ml.* tables")
    assert all(a["t"] <= b["t"] for a, b in zip(logged, logged[1:], strict=False))
