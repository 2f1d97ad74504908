"""SHAP explanations as warehouse tables: `ml.prediction_explanations`, `ml.feature_importance`
and `ml.shap_sample` (every feature of a seeded sample of rows, which the reports draw from)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.explanation.shap import Explanation


def _repeated(text: str, n: int) -> pd.Series:
    return pd.Series([text] * n, dtype="str")


def _run_columns(n: int, task: str, run_id: str, model_name: str) -> dict[str, pd.Series]:
    """The columns that say whose explanation a row is: task, run and model."""
    return {
        "task": _repeated(task, n),
        "run_id": _repeated(run_id, n),
        "model_name": _repeated(model_name, n),
    }


def top_features(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and SHAP values of each row's k largest |SHAP| values, largest first."""
    k = min(k, values.shape[1])
    if k == 0:
        return np.zeros((len(values), 0), dtype=int), np.zeros((len(values), 0))
    if k < values.shape[1]:
        idx = np.argpartition(-np.abs(values), kth=k - 1, axis=1)[:, :k]
    else:
        idx = np.tile(np.arange(k), (len(values), 1))
    picked = np.take_along_axis(values, idx, axis=1)
    order = np.argsort(-np.abs(picked), axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(picked, order, axis=1)


def value_text(series: pd.Series) -> pd.Series:
    """A relation column's values as text, as a person would write them (NULL stays NULL)."""
    if pd.api.types.is_bool_dtype(series):
        text = series.map(lambda v: None if pd.isna(v) else str(bool(v)).lower())
    elif pd.api.types.is_numeric_dtype(series):
        text = series.map(lambda v: None if pd.isna(v) else format(float(v), ".10g"))
    elif pd.api.types.is_datetime64_any_dtype(series):
        text = series.map(lambda v: None if pd.isna(v) else v.isoformat())
    else:
        text = series.map(lambda v: None if pd.isna(v) else str(v))
    return text.astype("object")


def explanation_rows(
    explanation: Explanation,
    frame: pd.DataFrame,
    ids: pd.Series,
    *,
    task: str,
    run_id: str,
    model_name: str,
    top_k: int,
    class_labels: list | None = None,
) -> pd.DataFrame:
    """`ml.prediction_explanations` rows: the top_k features of every explained row.

    `frame` holds the explained rows of the task's relation (for the feature values as they are
    stored there), `ids` their entity ids, both aligned with the explanation's rows.
    """
    n = len(explanation.output)
    idx, shap_values = top_features(explanation.values, top_k)
    k = idx.shape[1]
    texts = {c: value_text(frame[c].reset_index(drop=True)).to_numpy() for c in explanation.columns}
    feature = np.asarray(explanation.columns, dtype=object)[idx]  # (n, k)
    feature_value = np.empty((n, k), dtype=object)
    for j, column in enumerate(explanation.columns):
        hit = idx == j
        if hit.any():
            rows = np.nonzero(hit)[0]
            feature_value[hit] = texts[column][rows]
    explained = None
    if explanation.explained_class is not None and class_labels is not None:
        explained = np.asarray([str(c) for c in class_labels], dtype=object)[
            explanation.explained_class
        ]
    entity = np.asarray([str(v) for v in ids.to_numpy()], dtype=object)
    return pd.DataFrame(
        {
            **_run_columns(n * k, task, run_id, model_name),
            "entity_id": pd.Series(np.repeat(entity, k), dtype="str"),
            "rank": np.tile(np.arange(1, k + 1, dtype="int32"), n),
            "feature": pd.Series(feature.ravel(), dtype="str"),
            "feature_value": pd.Series(feature_value.ravel(), dtype="str"),
            "shap_value": shap_values.ravel(),
            "base_value": np.repeat(explanation.base_value, k),
            "model_output": np.repeat(explanation.output, k),
            "output_space": _repeated(explanation.output_space, n * k),
            "explained_class": pd.Series(
                np.repeat(explained, k) if explained is not None else [None] * (n * k),
                dtype="str",
            ),
        }
    )


def importance_rows(
    explanation: Explanation, *, task: str, run_id: str, model_name: str
) -> pd.DataFrame:
    """`ml.feature_importance` rows: mean |SHAP| of every column over the explained rows."""
    mean_abs = np.abs(explanation.values).mean(axis=0) if len(explanation.output) else None
    if mean_abs is None:
        mean_abs = np.zeros(len(explanation.columns))
    order = np.argsort(-mean_abs, kind="stable")
    rank = np.empty(len(order), dtype="int32")
    rank[order] = np.arange(1, len(order) + 1)
    n = len(explanation.columns)
    return pd.DataFrame(
        {
            **_run_columns(n, task, run_id, model_name),
            "feature": pd.Series(explanation.columns, dtype="str"),
            "mean_abs_shap": mean_abs,
            "rank": rank,
            "n_rows": np.full(n, len(explanation.output), dtype="int64"),
            "output_space": _repeated(explanation.output_space, n),
        }
    ).sort_values("rank", ignore_index=True)


def sample_rows(
    explanation: Explanation,
    X: pd.DataFrame,
    frame: pd.DataFrame,
    ids: pd.Series,
    categorical: set[str] | frozenset[str],
    *,
    task: str,
    run_id: str,
    model_name: str,
) -> pd.DataFrame:
    """`ml.shap_sample` rows: every feature's SHAP value for each explained row, long format.

    `X` is the model frame of the explained rows (`value`: its number, NULL for a categorical
    feature or a missing number), `frame` their relation rows (`value_text`: the value as
    stored), `ids` their entity ids, all aligned with the explanation's rows.
    """
    n, columns = len(explanation.output), explanation.columns
    k = len(columns)
    value = np.full((n, k), np.nan)
    text = np.empty((n, k), dtype=object)
    for j, column in enumerate(columns):
        if column not in categorical:
            value[:, j] = pd.to_numeric(X[column], errors="coerce").to_numpy(dtype=float)
        text[:, j] = value_text(frame[column].reset_index(drop=True)).to_numpy()
    entity = np.asarray([str(v) for v in ids.to_numpy()], dtype=object)
    return pd.DataFrame(
        {
            **_run_columns(n * k, task, run_id, model_name),
            "entity_id": pd.Series(np.repeat(entity, k), dtype="str"),
            "feature": pd.Series(np.tile(np.asarray(columns, dtype=object), n), dtype="str"),
            "value": value.ravel(),
            "value_text": pd.Series(text.ravel(), dtype="str"),
            "is_categorical": np.tile([c in categorical for c in columns], n),
            "shap_value": explanation.values.ravel(),
            "output_space": _repeated(explanation.output_space, n * k),
        }
    )
