"""A trained model ready to score rows, and the task's champion loaded from the registry.

    from ml import load_model
    scored = load_model("loan_repayment").predict(df)   # id, prediction, probability, ...

The model is the task's current deployment (`ml.deployments`, its row of the highest
deployment_id; `ml.governance`), never simply the latest run; its file's sha256 must match the
registry before it is unpickled (`ml.serving.bundle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import DEPLOYMENTS, MODEL_RUNS
from ml.core.tasks import validate_task_name
from ml.core.warehouse import Warehouse, open_warehouse
from ml.serving.bundle import ModelBundle, load_bundle
from ml.serving.output import predict_values, prediction_frame
from ml.serving.prepare import prepare


@dataclass
class TrainedModel(ModelBundle):
    """A model bundle that validates, prepares and scores rows."""

    @classmethod
    def of(cls, bundle: ModelBundle) -> TrainedModel:
        """The bundle, ready to score."""
        return cls(**vars(bundle))

    @property
    def features(self) -> list[str]:
        """The columns the model reads."""
        return self.contract.features

    def prepare(self, frame: Any) -> tuple[pd.DataFrame, pd.Series, list[str]]:
        """(model frame, ids, notes): `ml.serving.prepare.prepare` with this model's contract."""
        return prepare(self.contract, frame)

    def validate(self, frame: Any) -> pd.DataFrame:
        """The model frame of `frame`: required columns present, types coerced, extras dropped."""
        return self.prepare(frame)[0]

    def values(self, X: Any) -> np.ndarray:
        """`predict_values` of a prepared model frame (or of what a stand-in pipeline takes)."""
        return predict_values(self.pipeline, X, self.output.problem, self.output.classes)

    def predict(self, frame: Any) -> pd.DataFrame:
        """Score `frame`: id, prediction, probability (+ per class), threshold, run_id,
        model_name, scored_at. One row per input row, in input order. What was adjusted is in
        `.attrs["notes"]`; a NaN or infinite prediction is refused."""
        X, ids, notes = self.prepare(frame)
        values = self.values(X) if len(X) else np.zeros(0)
        scored = prediction_frame(self.output, values, ids, self.run_id, self.model_name)
        scored[self.output.id_column] = ids.reset_index(drop=True)  # keep the ids' own type
        scored.attrs["notes"] = notes
        return scored


def registry_entry(row: Any) -> dict[str, str]:
    """run_id, model_name, path, sha256 of a registry or deployment row (a mapping with
    run_id, model_name, artifact_path, artifact_sha256): what `load_bundle` and a deployment
    need."""
    return {
        "run_id": str(row["run_id"]),
        "model_name": str(row["model_name"]),
        "path": str(row["artifact_path"]),
        "sha256": str(row["artifact_sha256"]),
    }


def deployed_row(wh: Warehouse, task: str) -> dict[str, Any] | None:
    """The current deployment of `task` (its `ml.deployments` row of the highest
    deployment_id) as run_id, model_name, path, sha256, deployment_id; None when the task has
    never been deployed."""
    if not wh.exists(DEPLOYMENTS):
        return None
    rows = wh.query(
        f"""
        select deployment_id, run_id, model_name, artifact_path, artifact_sha256
        from {DEPLOYMENTS}
        where task = ?
        order by deployment_id desc
        limit 1
        """,
        [task],
    )
    if rows.empty:
        return None
    row = rows.iloc[0]
    return {"deployment_id": int(row["deployment_id"]), **registry_entry(row)}


def require_deployed(wh: Warehouse, task: str) -> dict[str, Any]:
    """`deployed_row`, or a UserError saying how to get one."""
    row = deployed_row(wh, task)
    if row is not None:
        return row
    if not wh.exists(MODEL_RUNS):
        raise UserError("no models trained yet: run `python -m ml.train` first")
    raise UserError(
        f"no deployed model for task {task!r}: run `python -m ml.train --task {task}` (a "
        f"task's first run deploys its champion) or `python -m ml.promote --task {task} --run "
        "RUN` (a run trained before deployments existed)"
    )


def deployed_tasks(wh: Warehouse) -> list[str]:
    """Every task with a deployed model, in name order."""
    if not wh.exists(DEPLOYMENTS):
        return []
    tasks = wh.query(f"select distinct task from {DEPLOYMENTS} order by task")
    return [str(t) for t in tasks["task"]]


def load_model(task: str, wh: Warehouse | None = None) -> TrainedModel:
    """The deployed model of `task`, its file verified against the registry's sha256 before
    loading (`wh`: an open warehouse to read the registry from; default: open it read-only)."""
    task = validate_task_name(task)
    if wh is None:
        with open_warehouse(read_only=True) as own:
            row = require_deployed(own, task)
    else:
        row = require_deployed(wh, task)
    return TrainedModel.of(load_bundle(row["path"], row["sha256"]))
