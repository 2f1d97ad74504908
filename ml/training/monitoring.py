"""What a training run leaves for day two: the champion's reference profile
(`ml.reference_profiles`) and the score-log rows of the rows it scored (`ml.score_log`), so that
`ml.score` rescores only what changed and the drift marts compare each batch with training."""

from __future__ import annotations

import pandas as pd

from ml.monitoring.profile import reference_profile, score_values
from ml.serving.hashing import feature_hashes
from ml.serving.output import now
from ml.serving.score_log import log_rows
from ml.training.data import TaskData

#: ml.score_log's `scored_by` of the rows ml.train scored.
SCORED_BY = "ml.train"


def day_two_frames(
    data: TaskData,
    predictions: pd.DataFrame,
    run_id: str,
    model_name: str,
    training_metric: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference profile, score-log rows) of a champion that scored `predictions` (its
    prediction frame of `data`'s rows, in their order) and measured `training_metric` (its
    primary metric on the test rows)."""
    spec = data.spec
    scored_at = now()
    profile = reference_profile(
        task=spec.name,
        run_id=run_id,
        model_name=model_name,
        relation=spec.relation,
        id_column=data.id_column,
        target=spec.target,
        primary_metric=spec.metric(),
        training_metric=training_metric,
        frame=data.frame,
        numeric=data.features.numeric,
        categorical=data.features.categorical,
        scores=score_values(predictions, spec.problem).reset_index(drop=True),
        problem=spec.problem,
        population=spec.batch_population,
        created_at=scored_at,
    )
    if data.sampled:  # the rows are a sample: ml.score scores (and logs) every row once
        return profile, pd.DataFrame()
    hashes = feature_hashes(data.frame, data.features.columns)
    batches = data.frame["batch_id"] if "batch_id" in data.frame.columns else None
    log = log_rows(
        spec.name, predictions, data.id_column, hashes, batches, spec.problem, SCORED_BY, scored_at
    )
    return profile, log
