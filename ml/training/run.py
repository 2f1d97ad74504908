"""A whole `ml.train` run: read every task, train each, judge each champion, write every result
in one transaction.

The relations are read once (read-only) and the models train with the warehouse closed, so other
processes may read it meanwhile. Each task's champion is then judged against the task's deployed
model (`ml.governance.promotion`: a task's first run deploys it). ONE transaction writes
`ml.model_runs`, `ml.feature_importance`, `ml.reference_profiles`, `ml.fairness_metrics` and
`ml.promotion_decisions` (appended); the tasks' rows of `ml.prediction_explanations`,
`ml.shap_sample` and `ml.evaluation_predictions` (the new run's and the deployed runs' kept);
the champion's predictions into `ml.<task>_prediction_archive` and its scores into
`ml.score_log` (so that the rows each run saw stay known); and, for a champion that is
deployed, `ml.<task>_predictions` (replaced) and its `ml.deployments` row. A failed or killed run leaves every `ml.*` table as it was.

A task whose relation holds more rows than the cap (`TrainOptions.max_rows`) trains on a seeded
sample; its champion then scores every row of the relation where it lies
(`ml.serving.batch.score_table`) into `ml.<task>_predictions`, replaced on its own just before
that transaction: a failure leaves every table as it was, a kill between the two writes leaves
the new predictions beside the old registry (docs/design/spark.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ml.core.config import DEFAULT_SEED
from ml.core.runs import new_run_id
from ml.core.tables import (
    DEPLOYMENTS,
    EVALUATION_PREDICTIONS,
    FAIRNESS_METRICS,
    FEATURE_IMPORTANCE,
    MODEL_RUNS,
    PREDICTION_EXPLANATIONS,
    PROMOTION_DECISIONS,
    REFERENCE_PROFILES,
    SCORE_LOG,
    SHAP_SAMPLE,
    prediction_archive_relation,
    predictions_relation,
)
from ml.core.tasks import BUILTIN_TASKS, TaskSpec
from ml.core.warehouse import Warehouse, open_warehouse
from ml.fairness.attributes import sensitive_attributes
from ml.fairness.metrics import fairness_rows
from ml.governance.deployments import (
    deployed_models,
    deployed_runs,
    deployment_frame,
    next_deployment_id,
)
from ml.governance.promotion import Decision, PromotionOptions, judge
from ml.quality.results import require_passing_gate
from ml.serving.archive import archive_rows, updated_archive
from ml.serving.batch import score_table
from ml.serving.bundle import load_bundle
from ml.serving.manifest import write_manifest
from ml.serving.model import TrainedModel, deployed_row, registry_entry
from ml.serving.output import now
from ml.training.data import TaskData, builtin_or_custom, prepare_task
from ml.training.distributed import refit_xgboost
from ml.training.experiment import PROGRESS_STEPS, TrainOptions, XGBoostRefit, train_task
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
    decisions: list[Decision] = field(default_factory=list)


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


def prepare_tasks(
    specs: Sequence[TaskSpec],
    skip_gate: bool = False,
    max_rows: int | None = None,
    seed: int = DEFAULT_SEED,
) -> list[TaskData]:
    """Read every task's relation (the warehouse opened read-only, once): every row, or a sample
    of `max_rows` drawn with `seed` beyond it; refuse a relation whose latest quality-gate run
    failed unless `skip_gate`."""
    with open_warehouse(read_only=True) as wh:
        prepared = []
        for spec in specs:
            if not skip_gate:
                require_passing_gate(wh, spec.relation)
            prepared.append(prepare_task(wh, spec, max_rows, seed))
    return prepared


def _score_relations(wh: Warehouse, results: Sequence[TaskResult]) -> dict[str, int]:
    """`ml.<task>_predictions` of the tasks trained on a sample: every row of the relation
    scored by the champion's saved (hash-checked) bundle."""
    written = {}
    for r in results:
        if not r.data.sampled:
            continue
        champion = r.runs.loc[r.runs["is_champion"]].iloc[0]
        bundle = load_bundle(champion["artifact_path"], champion["artifact_sha256"])
        relation = predictions_relation(r.data.spec.name)
        written[relation] = score_table(wh, TrainedModel.of(bundle), r.data.spec.relation, relation)
    return written


def _on_the_engine(data: TaskData) -> XGBoostRefit:
    """The refit of an xgboost pipeline on every row of `data`'s sampled relation, on the
    engine's workers (`ml.training.distributed`)."""

    def refit(pipeline: BaseEstimator, X: pd.DataFrame, y: np.ndarray):
        with open_warehouse(read_only=True) as wh:
            return refit_xgboost(wh, data, pipeline, X, y)

    return refit


def _combined(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def fairness_of(results: Sequence[TaskResult]) -> pd.DataFrame:
    """`ml.fairness_metrics` rows of every candidate of every task, on its held-out rows, by
    each sensitive attribute the task's rows have (`ml.fairness`)."""
    frames = []
    with open_warehouse(read_only=True) as wh:
        for r in results:
            spec = r.data.spec
            attributes = sensitive_attributes(wh, spec.relation, spec.id_column)
            frames.append(fairness_rows(r.evaluation, attributes, spec.problem))
    return _combined(frames)


def decisions_of(
    results: Sequence[TaskResult], fairness: pd.DataFrame, options: PromotionOptions
) -> list[Decision]:
    """Each task's promotion decision on its new champion (`ml.governance.promotion`): the
    first run of a task deploys it; a later one is a challenger judged under `options.mode`."""
    decisions = []
    with open_warehouse(read_only=True) as wh:
        for r in results:
            spec = r.data.spec
            rows = fairness[fairness["task"] == spec.name] if not fairness.empty else fairness
            described = {
                "problem": spec.problem,
                "metric": spec.metric(),
                "relation": spec.relation,
                "id_column": r.data.id_column,
            }
            challenger = {"run_id": r.run_id, "model_name": r.champion}
            decisions.append(
                judge(
                    wh,
                    spec.name,
                    described,
                    challenger,
                    r.evaluation,
                    r.data.frame,
                    rows,
                    options,
                    options.mode,
                )  # fmt: skip
            )
    return decisions


def _keep_runs(wh: Warehouse, relation: str, new: pd.DataFrame, keep: dict[str, set[str]]):
    """`relation`'s rows of other tasks and of the runs `keep` names per task, then `new`: a
    task keeps the rows of its deployed runs (a rollback reads them) and of the new run."""
    if not wh.exists(relation):
        return new
    old = wh.read_frame(relation)
    if new.empty:
        return old
    tasks, runs = old["task"].astype(str), old["run_id"].astype(str)
    named = [r in keep.get(t, ()) for t, r in zip(tasks, runs, strict=True)]
    kept = ~tasks.isin(set(keep)).to_numpy() | np.asarray(named, dtype=bool)
    return pd.concat([old[kept], new], ignore_index=True, sort=False)


def write_results(
    results: Sequence[TaskResult],
    fairness: pd.DataFrame | None = None,
    decisions: Sequence[Decision] | None = None,
) -> dict[str, int]:
    """Write the results of a run in one transaction; return the rows written per table.

    A task whose decision does not promote its champion (`decisions`; default: every champion
    deployed) keeps its deployed model's predictions and deployment: the run adds its registry
    rows, its held-out predictions, explanations, profiles and fairness metrics, its champion's
    predictions to the archive and its scores to the log, and the decision."""
    if decisions is None:
        decisions = [None] * len(results)
    deployed = [r for r, d in zip(results, decisions, strict=True) if d is None or d.promoted]
    runs = _combined([r.runs for r in results])
    evaluation = _combined([r.evaluation for r in results])
    explanations = _combined([r.explanations for r in results])
    importance = _combined([r.importance for r in results])
    sample = _combined([r.shap_sample for r in results])
    profiles = _combined([r.profile for r in results])
    score_log = _combined([r.score_log for r in results])
    at = now()
    with open_warehouse() as wh:
        keep = {r.data.spec.name: {*deployed_runs(wh, r.data.spec.name)} for r in results}
        for r in deployed:
            keep[r.data.spec.name].add(r.run_id)
        scored = _score_relations(wh, deployed)
        tables = {
            MODEL_RUNS: wh.appended(MODEL_RUNS, runs),
            EVALUATION_PREDICTIONS: _keep_runs(wh, EVALUATION_PREDICTIONS, evaluation, keep),
        }
        if not explanations.empty:
            tables[FEATURE_IMPORTANCE] = wh.appended(FEATURE_IMPORTANCE, importance)
            tables[PREDICTION_EXPLANATIONS] = _keep_runs(
                wh, PREDICTION_EXPLANATIONS, explanations, keep
            )
            tables[SHAP_SAMPLE] = _keep_runs(wh, SHAP_SAMPLE, sample, keep)
        if not profiles.empty:
            tables[REFERENCE_PROFILES] = wh.appended(REFERENCE_PROFILES, profiles)
        if not score_log.empty:
            tables[SCORE_LOG] = wh.appended(SCORE_LOG, score_log)
        if fairness is not None and not fairness.empty:
            tables[FAIRNESS_METRICS] = wh.appended(FAIRNESS_METRICS, fairness)
        new_deployments, new_decisions = [], []
        for r, d in zip(results, decisions, strict=True):
            task = r.data.spec.name
            if not r.data.sampled:
                archive = archive_rows(r.predictions, r.score_log["feature_hash"].to_numpy())
                models = deployed_models(wh, task) | {f"{r.run_id}/{r.champion}"}
                tables[prediction_archive_relation(task)] = updated_archive(
                    wh, task, archive, r.data.id_column, keep_models=models
                )
            deployment_id = None
            if d is None or d.promoted:
                if not r.data.sampled:
                    tables[predictions_relation(task)] = r.predictions
                deployment_id = next_deployment_id(wh, task)
                reason = d.reason if d is not None else "trained"
                previous = deployed_row(wh, task)
                new_deployments.append(
                    deployment_frame(
                        task,
                        deployment_id,
                        registry_entry(r.runs.loc[r.runs["is_champion"]].iloc[0]),
                        "ml.train",
                        reason,
                        previous["deployment_id"] if previous else None,
                        at,
                    )  # fmt: skip
                )
            if d is not None:
                new_decisions.append(d.frame(at, deployment_id))
        if new_deployments:
            tables[DEPLOYMENTS] = wh.appended(DEPLOYMENTS, _combined(new_deployments))
        if new_decisions:
            tables[PROMOTION_DECISIONS] = wh.appended(PROMOTION_DECISIONS, _combined(new_decisions))
        written = wh.replace_tables(tables)
        if new_deployments:
            write_manifest(wh)  # after the commit: what a running server watches
        return {**scored, **written}


def run_training(
    specs: Sequence[TaskSpec],
    options: TrainOptions,
    progress: Progress | None = None,
    promotion: PromotionOptions = PromotionOptions(),  # noqa: B008 - frozen, so sharing is safe
) -> RunResult:
    """Prepare, train, judge and write every task of `specs`; `progress(task, message)` is
    called as each training step starts (the CLI's progress bars, the benchmark's step
    timings); `promotion`: how a challenger is judged against the deployed model."""
    run_id = new_run_id()
    prepared = prepare_tasks(specs, options.skip_gate, options.max_rows, options.seed)
    results = []
    for data in prepared:
        name = data.spec.name

        def step(message: str, name: str = name) -> None:
            if progress is not None:
                progress(name, message)

        refit = _on_the_engine(data) if data.sampled and data.distributed else None
        results.append(train_task(data, run_id, options, progress=step, refit_xgboost=refit))
        step(f"{name}: trained in {results[-1].seconds:.0f}s")
    fairness = fairness_of(results)
    decisions = decisions_of(results, fairness, promotion)
    return RunResult(run_id, results, write_results(results, fairness, decisions), decisions)
