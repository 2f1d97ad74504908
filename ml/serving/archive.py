"""`ml.<task>_prediction_archive`: the predictions every model of a task produced, kept so that a
promotion or a rollback restores a model's predictions exactly, without rescoring them.

The archive holds the columns of `ml.<task>_predictions` plus `feature_hash`, the hash of the
feature values each prediction was computed from (`ml.serving.hashing`): one row per model
(run_id, model_name) and entity, the latest. ml.train archives its champion's predictions of
every row (deployed or not), ml.score the rows it scores, a deployment the rows it had to score.
A model's archived row is reused only while the entity's feature values still hash the same.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ml.core.tables import prediction_archive_relation
from ml.core.warehouse import Warehouse

HASH = "feature_hash"


def archive_rows(predictions: pd.DataFrame, hashes: np.ndarray) -> pd.DataFrame:
    """`predictions` (a prediction frame) with the hash of each row's feature values."""
    return predictions.assign(**{HASH: pd.Series(list(hashes), dtype="str")})


def _model_key(frame: pd.DataFrame) -> pd.Series:
    return frame["run_id"].astype(str) + "/" + frame["model_name"].astype(str)


def archived(wh: Warehouse, task: str, run_id: str, model_name: str) -> pd.DataFrame:
    """The archived predictions of one model of `task` (with `feature_hash`); empty when none."""
    relation = prediction_archive_relation(task)
    if not wh.exists(relation):
        return pd.DataFrame()
    return wh.query(
        f"select * from {relation} where run_id = ? and model_name = ?", [run_id, model_name]
    )


def updated_archive(
    wh: Warehouse,
    task: str,
    new_rows: pd.DataFrame,
    id_column: str,
    keep_models: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The archive of `task` with `new_rows` (archive rows) in place of the same model's rows of
    the same entities; with `keep_models` ("run_id/model_name"), only those models' old rows
    are kept besides (the others are pruned)."""
    relation = prediction_archive_relation(task)
    if not wh.exists(relation):
        return new_rows
    old = wh.read_frame(relation)
    if old.empty:
        return new_rows
    keys = _model_key(old)
    keep = pd.Series(True, index=old.index)
    if keep_models is not None:
        keep &= keys.isin(set(keep_models))
    if not new_rows.empty:
        replaced = set(_model_key(new_rows) + "|" + new_rows[id_column].astype(str))
        keep &= ~(keys + "|" + old[id_column].astype(str)).isin(replaced)
    kept = old[keep]
    if new_rows.empty:
        return kept.reset_index(drop=True)
    return pd.concat([kept, new_rows], ignore_index=True, sort=False)
