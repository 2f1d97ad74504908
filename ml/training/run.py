"""A whole `ml.train` run: read every task, train each, write every result in one transaction.

The relations are read once (read-only) and the models train with the warehouse closed, so other
processes may read it meanwhile; then ONE transaction writes `ml.model_runs` and
`ml.feature_importance` (appended), `ml.<task>_predictions` (replaced), and the tasks' rows of
`ml.prediction_explanations`, `ml.shap_sample` and `ml.evaluation_predictions` (replaced per
task). A failed or killed run leaves every `ml.*` table as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from ml.core.runs import new_run_id
from ml.core.tables import (
    EVALUATION_PREDICTIONS,
    FEATURE_IMPORTANCE,
    MODEL_RUNS,
    PREDICTION_EXPLANATIONS,
    SHAP_SAMPLE,
    predictions_relation,
)
from ml.core.tasks import BUILTIN_TASKS, TaskSpec
from ml.core.warehouse import open_warehouse
from ml.quality.results import require_passing_gate
from ml.training.data import TaskData, builtin_or_custom, prepare_task
from ml.training.experiment import PROGRESS_STEPS, TrainOptions, train_task
from ml.training.results import TaskResult

#: progress(task, message): called when each step of a task's training starts, and once more
#: when the task is trained ("<task>: trained in <n>s"): TASK_STEPS calls per task.
Progress = Callable[[str, str], None]
TASK_STEPS = PROGRESS_STEPS + 1


@dataclass
class RunResult:
    """What a run trained and wrote."""

    run_id: str
    results: list[TaskResult]
    written: dict[str, int]


def task_specs(
    task: str | None = None,
    table: str | None = None,
    target: str | None = None,
    id_column: str | None = None,
    problem: str = "auto",
) -> list[TaskSpec]:
    """The tasks to train: a bring-your-own `table`, one built-in `task`, or every built-in."""
    if table is not None:
        return [builtin_or_custom(task, table, target, id_column, problem)]
    if task:
        return [builtin_or_custom(task, None, None, None, "auto")]
    return list(BUILTIN_TASKS.values())


def prepare_tasks(specs: Sequence[TaskSpec], skip_gate: bool = False) -> list[TaskData]:
    """Read every task's relation (the warehouse opened read-only, once); refuse a relation
    whose latest quality-gate run failed unless `skip_gate`."""
    with open_warehouse(read_only=True) as wh:
        prepared = []
        for spec in specs:
            if not skip_gate:
                require_passing_gate(wh, spec.relation)
            prepared.append(prepare_task(wh, spec))
    return prepared


def _combined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_results(results: Sequence[TaskResult]) -> dict[str, int]:
    """Write the results of a run in one transaction; return the rows written per table."""
    runs = _combined([r.runs for r in results])
    evaluation = _combined([r.evaluation for r in results])
    explanations = _combined([r.explanations for r in results])
    importance = _combined([r.importance for r in results])
    sample = _combined([r.shap_sample for r in results])
    with open_warehouse() as wh:
        tables = {
            MODEL_RUNS: wh.appended(MODEL_RUNS, runs),
            EVALUATION_PREDICTIONS: wh.replaced_where(EVALUATION_PREDICTIONS, evaluation, "task"),
        }
        if not explanations.empty:
            tables[FEATURE_IMPORTANCE] = wh.appended(FEATURE_IMPORTANCE, importance)
            tables[PREDICTION_EXPLANATIONS] = wh.replaced_where(
                PREDICTION_EXPLANATIONS, explanations, "task"
            )
            tables[SHAP_SAMPLE] = wh.replaced_where(SHAP_SAMPLE, sample, "task")
        for r in results:
            tables[predictions_relation(r.data.spec.name)] = r.predictions
        return wh.replace_tables(tables)


def run_training(
    specs: Sequence[TaskSpec], options: TrainOptions, progress: Progress | None = None
) -> RunResult:
    """Prepare, train and write every task of `specs`; `progress(task, message)` is called as
    each training step starts (the CLI's progress bars, the benchmark's step timings)."""
    run_id = new_run_id()
    prepared = prepare_tasks(specs, options.skip_gate)
    results = []
    for data in prepared:
        name = data.spec.name

        def step(message: str, name: str = name) -> None:
            if progress is not None:
                progress(name, message)

        results.append(train_task(data, run_id, options, progress=step))
        step(f"{name}: trained in {results[-1].seconds:.0f}s")
    return RunResult(run_id, results, write_results(results))
