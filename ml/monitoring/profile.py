"""The reference profile of a trained model: how its training rows and its scores were
distributed, stored in `ml.reference_profiles` so that dbt can compute each batch's population
stability index (PSI) against it (models/marts/monitoring/).

Per numeric feature: bin edges at the deciles of the training rows' values (repeated edges
merged), the share of non-missing rows in each bin and the missing share. A bin is
`lower < value <= upper`; the first bin has no lower edge and the last no upper edge, so every
value of a later batch falls in exactly one. Per categorical feature: the share of each category
and the missing share (a category never seen in training is compared against a share of 0, which
PSI's smoothing floor turns into a large term). The score is profiled the same way: the
probability of the positive class (binary), the prediction (regression), the predicted class
(multiclass).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

#: Deciles: the usual PSI binning.
QUANTILES = np.linspace(0.1, 0.9, 9)
#: `subject` of the score's rows (the features' rows have subject "feature").
SCORE = "score"
COLUMNS = (
    "task", "run_id", "model_name", "relation", "id_column", "target", "problem",
    "primary_metric", "training_metric", "subject", "feature", "kind", "bin", "lower", "upper",
    "category", "share", "rows", "missing_share", "population", "trained_through_batch",
    "created_at",
)  # fmt: skip


def numeric_edges(values: np.ndarray) -> np.ndarray:
    """The inner bin edges of `values` (finite, non-missing): their deciles, repeats merged."""
    if len(values) == 0:
        return np.zeros(0)
    return np.unique(np.quantile(values, QUANTILES, method="lower"))


def _numeric_rows(values: pd.Series) -> list[dict]:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = numbers[np.isfinite(numbers)]
    edges = numeric_edges(present)
    # bin i holds edges[i-1] < v <= edges[i] (searchsorted side="left" is exactly that)
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    shares = counts / max(len(present), 1)
    lower = [None, *edges.tolist()]
    upper = [*edges.tolist(), None]
    missing = 1.0 - len(present) / max(len(numbers), 1)
    return [
        {"kind": "numeric", "bin": i, "lower": lower[i], "upper": upper[i], "category": None,
         "share": float(shares[i]), "rows": int(len(present)), "missing_share": missing}
        for i in range(len(edges) + 1)
    ]  # fmt: skip


def _categorical_rows(values: pd.Series) -> list[dict]:
    present = values.dropna().astype(str)
    shares = present.value_counts(normalize=True).sort_index()
    missing = 1.0 - len(present) / max(len(values), 1)
    return [
        {"kind": "categorical", "bin": i, "lower": None, "upper": None, "category": str(cat),
         "share": float(share), "rows": int(len(present)), "missing_share": missing}
        for i, (cat, share) in enumerate(shares.items())
    ]  # fmt: skip


def score_values(predictions: pd.DataFrame, problem: str) -> pd.Series:
    """What the score's profile and the score log hold for `problem`: the positive class's
    probability, the prediction, or the predicted class."""
    if problem == "binary":
        return predictions["probability"]
    return predictions["prediction"]


def reference_profile(
    *,
    task: str,
    run_id: str,
    model_name: str,
    relation: str,
    id_column: str,
    target: str,
    primary_metric: str,
    training_metric: float,
    frame: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    scores: pd.Series,
    problem: str,
    population: str,
    created_at: datetime,
) -> pd.DataFrame:
    """The `ml.reference_profiles` rows of one trained model (`frame`: its training rows;
    `scores`: its scores of them; `training_metric`: its primary metric on the held-out test
    rows, what the realised metric of each batch is compared with)."""
    rows = []
    for name in numeric:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            continue  # a time is not profiled: a later batch is later by construction
        rows += [{"subject": "feature", "feature": name, **r} for r in _numeric_rows(frame[name])]
    for name in categorical:
        rows += [
            {"subject": "feature", "feature": name, **r} for r in _categorical_rows(frame[name])
        ]
    score_rows = _categorical_rows(scores) if problem == "multiclass" else _numeric_rows(scores)
    rows += [{"subject": SCORE, "feature": SCORE, **r} for r in score_rows]
    batches = frame["batch_id"] if "batch_id" in frame.columns else pd.Series(dtype=float)
    through = int(batches.max()) if batches.notna().any() else None
    out = pd.DataFrame(rows)
    out.insert(0, "task", task)
    out.insert(1, "run_id", run_id)
    out.insert(2, "model_name", model_name)
    for at, (name, value) in enumerate(
        [("relation", relation), ("id_column", id_column), ("target", target),
         ("problem", problem), ("primary_metric", primary_metric)],
        start=3,
    ):  # fmt: skip
        out.insert(at, name, value)
    out.insert(8, "training_metric", float(training_metric))
    out["population"] = population
    out["trained_through_batch"] = pd.array([through] * len(out), dtype="Int64")
    out["created_at"] = pd.Timestamp(created_at)
    out["lower"] = out["lower"].astype("float64")
    out["upper"] = out["upper"].astype("float64")
    out["category"] = out["category"].astype("str").where(out["category"].notna(), None)
    return out[list(COLUMNS)]


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = 1e-4) -> float:
    """Population stability index sum((a - e) ln(a / e)) over bins, shares floored at `floor`
    (the same formula the dbt marts use; here for tests and the reports)."""
    e = np.maximum(np.asarray(expected, dtype=float), floor)
    a = np.maximum(np.asarray(actual, dtype=float), floor)
    return float(np.sum((a - e) * np.log(a / e)))
