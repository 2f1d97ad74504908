"""`ml.score_log`: every score a model gave, appended by `ml.train` (its champion's score of every
row, deployed or not: the rows a run saw stay known), `ml.score` (the deployed model's scores of
the new and changed rows of each batch) and a promotion or rollback (every row, as deployed).

One row per scored entity and scoring: the task, the entity's id as text, the batch of the
feature values it was scored on, the hash of those values (`ml.serving.hashing`), the score
(binary: probability of the positive class; regression: the prediction; multiclass: the
probability of the predicted class), the predicted label (classification), and which model
scored it and when. `ml.score` finds the rows to rescore from each entity's latest row by the
deployed model; the drift marts read each batch's scores of the deployed model from it.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

#: The log's columns, in order.
COLUMNS = (
    "task", "entity_id", "batch_id", "feature_hash", "score", "predicted_label", "run_id",
    "model_name", "scored_by", "scored_at",
)  # fmt: skip


def log_rows(
    task: str,
    predictions: pd.DataFrame,
    id_column: str,
    hashes: np.ndarray,
    batches: pd.Series | None,
    problem: str,
    scored_by: str,
    scored_at: datetime,
) -> pd.DataFrame:
    """The log rows of `predictions` (a prediction frame of `ml.serving.output`)."""
    n = len(predictions)
    regression = problem == "regression"
    score = predictions["prediction" if regression else "probability"].to_numpy(dtype=float)
    label = [None] * n if regression else predictions["prediction"].astype(str).tolist()
    batch = batches.to_numpy() if batches is not None else [None] * n

    def text(values) -> pd.Series:
        return pd.Series(list(values), dtype="str")

    out = pd.DataFrame(
        {
            "task": text([task] * n),
            "entity_id": text(predictions[id_column].astype(str)),
            "batch_id": pd.array(batch, dtype="Int32"),
            "feature_hash": text(hashes),
            "score": score,
            "predicted_label": text(label),
            "run_id": text(predictions["run_id"].astype(str)),
            "model_name": text(predictions["model_name"].astype(str)),
            "scored_by": text([scored_by] * n),
            "scored_at": pd.Series([pd.Timestamp(scored_at)] * n, dtype="datetime64[us]"),
        }
    )
    return out[list(COLUMNS)]
