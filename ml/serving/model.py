"""A trained model ready to score rows, and the task's champion loaded from the registry.

    from ml import load_model
    scored = load_model("loan_repayment").predict(df)   # id, prediction, probability, ...

The champion is the one `ml.model_runs` marks for the task's latest run; its file's sha256 must
match the registry before it is unpickled (`ml.serving.bundle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import MODEL_RUNS
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


def champion_row(wh: Warehouse, task: str) -> dict[str, Any]:
    """The registry row of the champion of `task`'s latest run."""
    if not wh.exists(MODEL_RUNS):
        raise UserError("no models trained yet: run `python -m ml.train` first")
    rows = wh.query(
        f"""
        select run_id, model_name, artifact_path, artifact_sha256
        from {MODEL_RUNS}
        where task = ? and is_champion
        order by trained_at desc, run_id desc
        limit 1
        """,
        [task],
    )
    if rows.empty:
        raise UserError(
            f"no trained model for task {task!r}: run `python -m ml.train --task {task}`"
        )
    row = rows.iloc[0]
    return {
        "run_id": row["run_id"],
        "model_name": row["model_name"],
        "path": row["artifact_path"],
        "sha256": row["artifact_sha256"],
    }


def load_model(task: str, wh: Warehouse | None = None) -> TrainedModel:
    """The champion of `task`, its file verified against the registry's sha256 before loading
    (`wh`: an open warehouse to read the registry from; default: open it read-only)."""
    task = validate_task_name(task)
    if wh is None:
        with open_warehouse(read_only=True) as own:
            row = champion_row(own, task)
    else:
        row = champion_row(wh, task)
    return TrainedModel.of(load_bundle(row["path"], row["sha256"]))
