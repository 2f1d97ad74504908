"""The champion's xgboost refitted on every row of a sampled relation, on the engine's workers.

A relation of more rows than the cap (`ml.train --max-rows`) is trained on a seeded sample. On an
engine with workers of its own (Spark), the refit of the champion on all its labelled rows
(`ml.training.experiment.refit_on_all`) then trains its xgboost part on EVERY labelled row of the
relation with `xgboost.spark` (`Warehouse.fit_on_workers`): the pipeline's preprocessing is fitted
on the sample here, shipped to the executors and applied there to each part of the relation
(`mapInArrow`), xgboost trains on the executors, and the trained booster goes into the pipeline's
`XGBClassifier` / `XGBRegressor` step. The saved bundle is the same scikit-learn pipeline as
ever: registry, explanations and scoring do not change.

It is automatic (no flag): the refit "on all rows" is what every champion gets below the cap,
and this keeps that meaning above it where the engine can afford it. Everything else (tuning,
cross-validation, the metrics, the other candidates) stays on the sample; on an engine without
workers (DuckDB) the refit uses the sample's rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_sample_weight

from ml.core.names import qualified, quote_ident
from ml.core.warehouse import Warehouse
from ml.core.warehouse.base import BatchJob, PartTask
from ml.estimators.preprocessing import FeatureSet, plain_types, to_model_frame
from ml.training.data import TaskData, target_codes

#: Parameters of xgboost's scikit-learn estimators its Spark ones refuse (threads are Spark's;
#: the objective follows from the estimator and the labels) or need not be given.
NOT_SPARK_PARAMS = frozenset({"n_jobs", "nthread", "enable_categorical", "objective", "missing"})
#: The rows xgboost trains on: the preprocessed features, the label, the row's weight.
TRAINING_ROWS = pa.schema(
    [("features", pa.list_(pa.float32())), ("label", pa.float64()), ("weight", pa.float64())]
)


@dataclass(frozen=True)
class FeatureRows:
    """What an executor runs on its parts of the relation: the rows' training matrix, as
    `prepare_task` and the fitted preprocessing make it here (rows without a known target
    left out)."""

    prep: Any  # the pipeline's fitted ColumnTransformer
    features: FeatureSet
    target: str
    problem: str
    class_labels: list | None
    mapping: dict[str, int] | None
    class_weights: dict[int, float] | None  # multiclass: balanced weights of the sample

    def __call__(self, batches: Iterator[pa.RecordBatch], first_row: int) -> Iterator[pa.Table]:
        for batch in batches:
            frame = plain_types(batch.to_pandas())
            y = target_codes(frame[self.target], self.problem, self.class_labels, self.mapping)
            keep = ~np.isnan(y)
            if not keep.any():
                continue
            X = to_model_frame(frame.loc[keep], self.features)
            matrix = np.ascontiguousarray(self.prep.transform(X), dtype=np.float32)
            width = matrix.shape[1]
            offsets = pa.array(np.arange(0, matrix.size + 1, width, dtype=np.int32))
            weights = np.ones(int(keep.sum()))
            if self.class_weights:
                weights = np.array([self.class_weights.get(int(v), 1.0) for v in y[keep]])
            yield pa.table(
                [pa.ListArray.from_arrays(offsets, pa.array(matrix.ravel())), y[keep], weights],
                schema=TRAINING_ROWS,
            )


class _TrainingRows(BatchJob):
    def __init__(self, rows: FeatureRows) -> None:
        self.rows = rows

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return TRAINING_ROWS

    def part_task(self) -> PartTask:
        return self.rows


def _spark_estimator(estimator: BaseEstimator, wh: Warehouse) -> Any:
    """xgboost.spark's estimator with `estimator`'s parameters, one xgboost worker per part the
    engine works on at once, reading TRAINING_ROWS."""
    # xgboost's Spark estimators import pyspark: loaded only when a model trains on Spark
    from xgboost.spark import SparkXGBClassifier, SparkXGBRegressor

    logging.getLogger("XGBoost-PySpark").setLevel(logging.WARNING)
    kind = SparkXGBClassifier if isinstance(estimator, ClassifierMixin) else SparkXGBRegressor
    params = {
        k: v
        for k, v in estimator.get_params().items()
        if v is not None and k not in NOT_SPARK_PARAMS
    }
    return kind(
        features_col="features",
        label_col="label",
        weight_col="weight",
        num_workers=wh.parallelism,
        verbose=False,
        **params,
    )


def labelled_rows(wh: Warehouse, data: TaskData) -> int:
    """Rows of the task's relation with a target (what a refit on every row learns from, give
    or take values the sample's target resolution does not know)."""
    rows = wh.query(
        f"select count(*) as n from {qualified(data.spec.relation)} "
        f"where {quote_ident(data.spec.target)} is not null"
    )
    return int(rows["n"].iloc[0])


def refit_xgboost(
    wh: Warehouse, data: TaskData, pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray
) -> tuple[Pipeline, int] | None:
    """`pipeline` (preprocessing + xgboost) refitted on every labelled row of the sampled
    relation of `data` on the engine's workers, and those rows' number: its preprocessing
    fitted on (X, y), the sample's labelled rows. None where the rows are not a sample, the
    engine has no workers, or a column is target-encoded (not cross-fitted on the other rows)."""
    if not data.sampled or not wh.distributed:
        return None
    if data.features.target_encoded:  # fitted on the sample, the encoder would read the sample
        return None  # rows' own labels when it encodes them for the refit: refit in-process

    problem = data.spec.problem
    prep = clone(pipeline.named_steps["prep"]).fit(X, y)
    estimator: BaseEstimator = pipeline.named_steps["model"]
    weights = None
    if problem == "multiclass":  # balanced, as `zoo.fit_params` weighs the rows it sees
        per_row = compute_sample_weight("balanced", y)
        weights = {int(c): float(per_row[np.flatnonzero(y == c)[0]]) for c in np.unique(y)}
    rows = FeatureRows(
        prep,
        data.features,
        data.spec.target,
        problem,
        data.class_labels,
        data.target_mapping,
        weights,
    )
    columns = list(dict.fromkeys([*data.features.columns, data.spec.target]))
    fitted = wh.fit_on_workers(
        data.spec.relation, columns, _TrainingRows(rows), _spark_estimator(estimator, wh)
    )
    if fitted is None:
        return None
    model = clone(estimator)
    model.load_model(bytearray(fitted.get_booster().save_raw("ubj")))
    return Pipeline([("prep", prep), ("model", model)]), labelled_rows(wh, data)
