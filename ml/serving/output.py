"""What a model's predictions look like: the output layout, and the rows of a prediction.

Every scoring path (ml.train's predictions of its own rows, `TrainedModel.predict`, batch
scoring) produces the same columns: the id, `prediction`, `probability` (+ one
`probability_<class>` per class of a multiclass task), `threshold`, `run_id`, `model_name`,
`scored_at`. A model bundle carries its `OutputLayout`, so serving knows them without the
training code.

- regression: `prediction` is the value, `probability` NULL;
- binary: `probability` is the positive class's, `prediction` 1 at or above `threshold`;
- multiclass: `prediction` is the most probable class, `probability` its probability.

A NaN or infinite prediction is never handed out; probabilities are clipped to [0, 1] (float32
models sum to 1 +- 1e-7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ml.core.errors import UserError

#: Columns every output row of a run holds the same value in.
CONSTANT_COLUMNS = ("threshold", "run_id", "model_name", "scored_at")


def predict_values(model: Any, X: Any, problem: str, classes: list | None) -> np.ndarray:
    """Values (regression), positive-class probability (binary), or the probability matrix with
    columns in `classes` order (multiclass)."""
    if problem == "regression":
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    order = [list(model.classes_).index(c) for c in classes]
    proba = proba[:, order]
    return proba[:, 1] if problem == "binary" else proba


def _class_column(label: Any, taken: set[str]) -> str:
    base = "probability_" + (re.sub(r"[^0-9a-z]+", "_", str(label).lower()).strip("_") or "class")
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


@dataclass(frozen=True)
class OutputLayout:
    """The prediction columns of a model, in order, and what they are computed from."""

    id_column: str
    problem: str  # regression | binary | multiclass
    classes: tuple | None = None  # the codes the model learnt (binary [0, 1]; multiclass 0..K-1)
    class_labels: tuple | None = None  # what each code means
    threshold: float | None = None  # binary decision threshold
    class_columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        taken = {self.id_column, "prediction", "probability"}
        labels = self.class_labels if self.problem == "multiclass" else ()
        object.__setattr__(
            self, "class_columns", tuple(_class_column(label, taken) for label in labels or ())
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """Every output column, in order."""
        return (self.id_column, "prediction", "probability", *self.class_columns, *CONSTANT_COLUMNS)

    def arrow_schema(self, id_type: pa.DataType | None = None) -> pa.Schema:
        """The columns as an Arrow schema (`id_type`: the type of the ids, default int64)."""
        prediction = {"regression": pa.float64(), "binary": pa.int64()}.get(
            self.problem, pa.string()
        )
        known = {
            self.id_column: id_type or pa.int64(),
            "prediction": prediction,
            "run_id": pa.string(),
            "model_name": pa.string(),
            "scored_at": pa.timestamp("us"),
        }
        return pa.schema([(c, known.get(c, pa.float64())) for c in self.columns])

    def as_dict(self) -> dict[str, Any]:
        """Plain values, as a bundle stores them."""
        return {
            "id_column": self.id_column,
            "problem": self.problem,
            "classes": list(self.classes) if self.classes is not None else None,
            "class_labels": list(self.class_labels) if self.class_labels is not None else None,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OutputLayout:
        """The layout `as_dict` wrote."""
        classes, labels = values.get("classes"), values.get("class_labels")
        return cls(
            id_column=values["id_column"],
            problem=values["problem"],
            classes=tuple(classes) if classes is not None else None,
            class_labels=tuple(labels) if labels is not None else None,
            threshold=values.get("threshold"),
        )


def check_finite(values: np.ndarray, first_row: int = 0) -> np.ndarray:
    """`values` as float64; refuse (UserError) when one is NaN or infinite (`first_row`: where
    the values start in the input, for the message)."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        n = int(bad.sum())
        row = first_row + int(np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))[0]) + 1
        raise UserError(
            f"the model produced {n:,} non-finite prediction{'s' if n != 1 else ''} "
            f"(first at input row {row:,}); nothing was written"
        )
    return values


def _probabilities(values: np.ndarray, first_row: int) -> np.ndarray:
    return np.clip(check_finite(values, first_row), 0.0, 1.0)


def prediction_columns(
    layout: OutputLayout, values: np.ndarray, first_row: int = 0
) -> dict[str, np.ndarray]:
    """`prediction`, `probability` and the class columns from `predict_values`' output."""
    n = len(values)
    if layout.problem == "regression":
        return {"prediction": check_finite(values, first_row), "probability": np.full(n, np.nan)}
    if layout.problem == "binary":
        proba = _probabilities(values, first_row)
        return {
            "prediction": (np.asarray(values) >= layout.threshold).astype(np.int64),
            "probability": proba,
        }
    proba = _probabilities(np.asarray(values).reshape(n, len(layout.classes)), first_row)
    labels = np.asarray([str(v) for v in layout.class_labels], dtype=object)
    out = {"prediction": labels[proba.argmax(axis=1)] if n else labels[:0]}
    out["probability"] = proba.max(axis=1) if n else np.zeros(0)
    for j, name in enumerate(layout.class_columns):
        out[name] = proba[:, j]
    return out


def now() -> datetime:
    """The scoring time of a run (UTC, without a time zone, as the warehouse stores it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def prediction_frame(
    layout: OutputLayout,
    values: np.ndarray,
    ids: pd.Series,
    run_id: str,
    model_name: str,
) -> pd.DataFrame:
    """The prediction rows (pandas) of `values` for the rows `ids`."""
    out = pd.DataFrame({layout.id_column: ids.to_numpy()})
    for name, column in prediction_columns(layout, values).items():
        out[name] = pd.Series(column, dtype="str") if column.dtype == object else column
    threshold = layout.threshold
    out["threshold"] = float(threshold) if threshold is not None else np.nan
    out["run_id"] = run_id
    out["model_name"] = model_name
    out["scored_at"] = pd.Timestamp(now())
    return out


def _repeated_text(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def output_batch(
    layout: OutputLayout,
    ids: pa.Array,
    values: np.ndarray,
    run_id: str,
    model_name: str,
    scored_at: datetime,
    first_row: int = 0,
) -> pa.Table:
    """The prediction rows (Arrow) of a batch; `first_row`: the batch's place in the input."""
    n = len(ids)
    data: dict[str, pa.Array] = {layout.id_column: ids}
    for name, column in prediction_columns(layout, values, first_row).items():
        data[name] = pa.array(column.astype(str) if column.dtype == object else column)
    if layout.problem == "regression":
        data["probability"] = pa.nulls(n, pa.float64())
    threshold = layout.threshold
    data["threshold"] = (
        pa.nulls(n, pa.float64())
        if threshold is None or not np.isfinite(threshold)
        else pa.array(np.full(n, float(threshold)))
    )
    data["run_id"] = _repeated_text(run_id, n)
    data["model_name"] = _repeated_text(model_name, n)
    data["scored_at"] = pa.array(np.full(n, np.datetime64(scored_at, "us")))
    return pa.table({c: data[c] for c in layout.columns})
