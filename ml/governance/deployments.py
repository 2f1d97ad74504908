"""`ml.deployments`: which model of each task is deployed, and the deploy step that promote and
rollback share.

A deployment row names a trained model (run, model name, artifact path and sha256), when it
was deployed, by which command and why, and the deployment it replaced. The rows are never
updated: the history is the table, and a task's current deployment is its row of the highest
deployment_id (`ml.serving.model.deployed_row`).

`deploy` puts a registered model in service without retraining: its artifact is hash-checked
before anything is read or written (a missing or changed file refuses with one line); its
archived predictions (`ml.serving.archive`) are restored where the entity's feature values
still hash the same, the other rows are scored by the model; then ONE transaction replaces
`ml.<task>_predictions`, appends the scores to `ml.score_log` and the deployment (and the
decision that led to it) to their tables. A failure or a kill leaves every table as it was.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import (
    DEPLOYMENTS,
    MODEL_RUNS,
    PROMOTION_DECISIONS,
    SCORE_LOG,
    prediction_archive_relation,
    predictions_relation,
)
from ml.core.warehouse import Warehouse, open_warehouse
from ml.serving.archive import HASH, archive_rows, archived, updated_archive
from ml.serving.bundle import load_bundle
from ml.serving.hashing import feature_hashes
from ml.serving.manifest import write_manifest
from ml.serving.model import TrainedModel, deployed_row, registry_entry
from ml.serving.output import now
from ml.serving.score_log import log_rows

#: Columns of ml.deployments, in order.
COLUMNS = ("task", "deployment_id", "run_id", "model_name", "artifact_path", "artifact_sha256",
           "deployed_at", "command", "reason", "previous_deployment_id")  # fmt: skip


def deployment_frame(
    task: str,
    deployment_id: int,
    model: dict[str, Any],
    command: str,
    reason: str,
    previous: int | None,
    deployed_at: datetime,
) -> pd.DataFrame:
    """One `ml.deployments` row: `model` is a registry row (run_id, model_name, path, sha256)."""
    return pd.DataFrame(
        {
            "task": pd.Series([task], dtype="str"),
            "deployment_id": pd.Series([deployment_id], dtype="int64"),
            "run_id": pd.Series([model["run_id"]], dtype="str"),
            "model_name": pd.Series([model["model_name"]], dtype="str"),
            "artifact_path": pd.Series([str(model["path"])], dtype="str"),
            "artifact_sha256": pd.Series([model["sha256"]], dtype="str"),
            "deployed_at": pd.Series([pd.Timestamp(deployed_at)], dtype="datetime64[us]"),
            "command": pd.Series([command], dtype="str"),
            "reason": pd.Series([reason], dtype="str"),
            "previous_deployment_id": pd.array([previous], dtype="Int64"),
        }
    )[list(COLUMNS)]


def history(wh: Warehouse, task: str) -> pd.DataFrame:
    """Every deployment of `task`, oldest first (empty when none)."""
    if not wh.exists(DEPLOYMENTS):
        return pd.DataFrame(columns=list(COLUMNS))
    return wh.query(f"select * from {DEPLOYMENTS} where task = ? order by deployment_id", [task])


def next_deployment_id(wh: Warehouse, task: str) -> int:
    """The id the next deployment of `task` takes."""
    current = deployed_row(wh, task)
    return 1 if current is None else current["deployment_id"] + 1


def deployed_models(wh: Warehouse, task: str) -> set[str]:
    """ "run_id/model_name" of every model `task` ever deployed."""
    past = history(wh, task)
    return set(past["run_id"].astype(str) + "/" + past["model_name"].astype(str))


def deployed_runs(wh: Warehouse, task: str) -> set[str]:
    """Run ids of every model `task` ever deployed."""
    return set(history(wh, task)["run_id"].astype(str))


def registered_model(wh: Warehouse, task: str, run_id: str, model_name: str | None = None):
    """The registry row (run_id, model_name, path, sha256) of a model `task`'s run `run_id`
    trained: `model_name`, or the run's champion."""
    if not wh.exists(MODEL_RUNS):
        raise UserError("no models trained yet: run `python -m ml.train` first")
    rows = wh.query(
        f"""
        select run_id, model_name, artifact_path, artifact_sha256, is_champion
        from {MODEL_RUNS}
        where task = ? and run_id = ?
        """,
        [task, run_id],
    )
    if rows.empty:
        raise UserError(f"{task}: no run {run_id!r} in {MODEL_RUNS}")
    chosen = rows[rows["model_name"] == model_name] if model_name else rows[rows["is_champion"]]
    chosen = chosen[chosen["artifact_path"].notna()]
    if chosen.empty:
        what = f"model {model_name!r}" if model_name else "champion"
        raise UserError(f"{task}: run {run_id} saved no {what} to deploy")
    return registry_entry(chosen.iloc[0])


@dataclass
class DeployResult:
    """What a deployment did."""

    task: str
    deployment_id: int
    run_id: str
    model_name: str
    previous: dict[str, Any] | None
    restored: int  # predictions restored from the archive as they were
    scored: int  # predictions the model had to compute (new or changed rows)
    seconds: float

    def line(self) -> str:
        """One line for the CLI."""
        was = (
            f" (was deployment {self.previous['deployment_id']}: "
            f"{self.previous['run_id']}/{self.previous['model_name']})"
            if self.previous
            else ""
        )
        return (
            f"{self.task}: deployment {self.deployment_id} is {self.run_id}/{self.model_name}"
            f"{was}; {self.restored:,} predictions restored as the model produced them, "
            f"{self.scored:,} scored, in {self.seconds:.1f}s"
        )


def _restored_predictions(
    model: TrainedModel, frame: pd.DataFrame, archive: pd.DataFrame, hashes
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(the predictions table, the rows that had to be scored (archive rows), rows restored)."""
    id_column = model.output.id_column
    ids = frame[id_column].astype(str).to_numpy()
    reusable = pd.DataFrame()
    if not archive.empty:
        current = pd.Series(hashes, index=ids)
        keys = archive[id_column].astype(str)
        still = keys.map(current)
        reusable = archive[still.notna().to_numpy() & (still == archive[HASH]).to_numpy()]
    done = set(reusable[id_column].astype(str)) if not reusable.empty else set()
    todo = ~pd.Series(ids).isin(done).to_numpy()
    scored = pd.DataFrame()
    if todo.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scored = model.predict(frame.loc[todo])
        scored.attrs = {}
        scored = archive_rows(scored, hashes[todo])
    parts = [p for p in (reusable, scored) if not p.empty]
    table = pd.concat(parts, ignore_index=True, sort=False) if parts else scored
    table = table.sort_values(id_column, kind="stable")
    table = table.reset_index(drop=True)
    return table, scored, len(reusable)


def deploy(
    task: str,
    model_row: dict[str, Any],
    command: str,
    reason: str,
    decision: pd.DataFrame | None = None,
) -> DeployResult:
    """Deploy the registered model `model_row` of `task` (see the module doc); `decision`: the
    `ml.promotion_decisions` row that led to it, written in the same transaction (its
    `deployment_id` is filled in)."""
    started = time.perf_counter()
    bundle = load_bundle(model_row["path"], model_row["sha256"])  # refuses before anything else
    model = TrainedModel.of(bundle)
    id_column = model.output.id_column
    with open_warehouse(read_only=True) as wh:
        relation = model.info.get("relation")
        if not relation or not wh.exists(relation):
            raise UserError(f"{task}: the relation its model was trained on ({relation}) is gone")
        previous = deployed_row(wh, task)
        deployment_id = next_deployment_id(wh, task)
        frame = wh.read_frame(relation, order_by=id_column)
        archive = archived(wh, task, model_row["run_id"], model_row["model_name"])
    hashes = feature_hashes(frame, model.features)
    table, scored, restored = _restored_predictions(model, frame, archive, hashes)
    at = now()
    key = table[id_column].astype(str)
    by_id = pd.Series(hashes, index=frame[id_column].astype(str).to_numpy())
    batches = (
        key.map(frame.set_index(frame[id_column].astype(str))["batch_id"]).reset_index(drop=True)
        if "batch_id" in frame.columns
        else None
    )
    predictions = table.drop(columns=[HASH])
    log = log_rows(
        task, predictions, id_column, key.map(by_id).to_numpy(), batches,
        model.output.problem, command, at,
    )  # fmt: skip
    row = deployment_frame(
        task, deployment_id, model_row, command, reason,
        previous["deployment_id"] if previous else None, at,
    )  # fmt: skip
    with open_warehouse() as wh:
        tables = {
            predictions_relation(task): predictions,
            prediction_archive_relation(task): updated_archive(wh, task, scored, id_column),
            SCORE_LOG: wh.appended(SCORE_LOG, log),
            DEPLOYMENTS: wh.appended(DEPLOYMENTS, row),
        }
        if decision is not None:
            decided = decision.assign(deployment_id=pd.array([deployment_id], dtype="Int64"))
            tables[PROMOTION_DECISIONS] = wh.appended(PROMOTION_DECISIONS, decided)
        wh.replace_tables(tables)
        write_manifest(wh)  # after the commit: what a running server watches
    return DeployResult(
        task, deployment_id, model_row["run_id"], model_row["model_name"], previous,
        restored, len(scored), time.perf_counter() - started,
    )  # fmt: skip
