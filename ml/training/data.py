"""A task's data: read its relation, resolve the target and problem type, pick the features.

`prepare_task` reads everything a training run needs in one go (the warehouse is then free for
other processes while models train): every row of the relation, or, when it holds more than
`max_rows`, a seeded sample of `max_rows` of them (`Warehouse.sample_frame`, the same rows for the
same seed and table), in id order. It refuses, with one line and nothing written, what cannot
be trained on: a relation that is missing, unreadable or empty; a target or id column that is not
there (names match ignoring case); an id with missing or repeated values or named like a
predictions column; a target with no values, a single value, infinite or huge numbers, or text
for a regression.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ml.core.config import DEFAULT_SEED
from ml.core.errors import UserError
from ml.core.names import parse_relation, require_column
from ml.core.tasks import (
    BUILTIN_TASKS,
    PREDICTION_COLUMNS,
    PROBLEM_TYPES,
    ROW_NUMBER,
    Oracle,
    TaskSpec,
    validate_task_name,
)
from ml.core.warehouse import Warehouse
from ml.estimators.preprocessing import (
    MAX_ABS_TEXT,
    MAX_ABS_VALUE,
    FeatureSet,
    plain_types,
    select_features,
    to_model_frame,
)

_YES = {"y", "yes", "true", "t", "1", "1.0"}
_NO = {"n", "no", "false", "f", "0", "0.0"}
#: Fewest labelled rows per class (and in total) a task needs to be split and cross-validated.
MIN_ROWS_PER_CLASS = 10
MIN_ROWS = 30
#: Integer targets with at most this many distinct values are classes when the problem is `auto`.
MAX_AUTO_CLASSES = 10
MAX_CLASSES = 50


@dataclass
class TaskData:
    """A task's rows, ready for training."""

    spec: TaskSpec  # with `problem` resolved
    frame: pd.DataFrame  # every row of the relation
    ids: pd.Series  # id of every row (the id column, or a row number)
    id_column: str
    X_all: pd.DataFrame  # model frame of every row
    labelled: np.ndarray  # positions of rows with a target
    y: np.ndarray  # target of the labelled rows (numbers, 0/1, or class labels)
    features: FeatureSet
    classes: list | None  # class codes the models learn: [0, 1] or 0..K-1 (None for regression)
    class_labels: list | None  # what each code means (multiclass: the labels, sorted)
    target_mapping: dict[str, int] | None
    fingerprint: str
    truth: pd.Series | None = None  # the simulator's truth by id (oracle), if the task has one
    rows_available: int = 0  # rows of the relation
    rows_used: int = 0  # rows read to train on: all of them, or a seeded sample
    distributed: bool = False  # the relation is on an engine with workers of its own (Spark)

    @property
    def sampled(self) -> bool:
        """True when the rows are a sample of the relation (it holds more than the row cap)."""
        return self.rows_used < self.rows_available


def _fingerprint(frame: pd.DataFrame) -> str:
    """Hash of a relation's columns, types and content (order-independent over rows)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(np.sort(hashed).tobytes())
    return digest.hexdigest()


def resolve_target(target: pd.Series, requested: str) -> tuple[str, pd.Series, dict | None]:
    """The problem type, the target as numbers or labels, and the text-to-0/1 mapping if any."""
    values = target.dropna()
    if values.empty:
        raise UserError(f"target column {target.name!r} has no values")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if pd.api.types.is_bool_dtype(values):
        return resolve_target(target.astype("float64"), requested)
    if not numeric:
        text = values.astype(str).str.strip()
        coerced = pd.to_numeric(text, errors="coerce")
        if coerced.notna().all() and text.str.lower().isin(_YES | _NO).mean() < 1:
            numeric, values = True, coerced
            target = pd.to_numeric(target.astype("object").astype(str).str.strip(), errors="coerce")
    levels = values.nunique()
    if levels < 2:
        raise UserError(
            f"target column {target.name!r} has a single value "
            f"({str(values.iloc[0])[:40]!r}) in every labelled row: there is nothing to learn"
        )
    if numeric:
        as_float = pd.to_numeric(values, errors="coerce").astype("float64")
        extreme = ~(np.isfinite(as_float) & (as_float.abs() <= MAX_ABS_VALUE))
        if extreme.any():
            raise UserError(
                f"target column {target.name!r} has {int(extreme.sum())} value(s) that are "
                f"infinite or beyond +/-{MAX_ABS_TEXT} (e.g. {as_float[extreme].iloc[0]}): "
                "fix or remove those rows"
            )
        is_int = bool(np.all(np.isclose(values, np.round(values))))
        problem = requested
        if requested == "auto":
            problem = "binary" if levels == 2 else (
                "multiclass" if is_int and 2 < levels <= MAX_AUTO_CLASSES else "regression"
            )  # fmt: skip
        if problem == "regression":
            out = pd.to_numeric(target, errors="coerce").astype("float64")
            return problem, out, None
        if problem == "binary":
            if levels != 2:
                raise UserError(f"a binary target needs two values; {target.name!r} has {levels}")
            lo, hi = sorted(values.unique())
            mapping = None if (lo, hi) == (0, 1) else {str(lo): 0, str(hi): 1}
            return problem, target.map(lambda v: np.nan if pd.isna(v) else float(v == hi)), mapping
        return problem, target.map(lambda v: v if pd.isna(v) else str(int(v))), None
    # text target
    text = target.astype("object").map(lambda v: v if pd.isna(v) else str(v).strip())
    uniq = {v.lower() for v in text.dropna()}
    yes_no = uniq <= _YES | _NO and bool(uniq & _YES) and bool(uniq & _NO)
    levels = 2 if yes_no else text.nunique()
    problem = requested
    if requested == "auto":
        problem = "binary" if levels == 2 else "multiclass"
    if problem == "regression":
        raise UserError(f"target column {target.name!r} is text; it cannot be a regression target")
    if problem == "binary":
        if levels != 2:
            raise UserError(f"a binary target needs two values; {target.name!r} has {levels}")
        if yes_no:
            mapping = {v: (1 if v.lower() in _YES else 0) for v in text.dropna().unique()}
        else:  # two arbitrary labels: the rarer one is the positive class
            counts = text.value_counts()
            positive = sorted(counts.index, key=lambda v: (counts[v], v))[0]
            mapping = {v: int(v == positive) for v in counts.index}
        return (
            problem,
            text.map(lambda v: np.nan if pd.isna(v) else float(mapping[v])),
            {str(k): int(v) for k, v in mapping.items()},
        )
    if levels > MAX_CLASSES:
        raise UserError(
            f"target column {target.name!r} has {levels} classes (at most {MAX_CLASSES})"
        )
    return problem, text, None


def _read_rows(
    wh: Warehouse, relation: str, id_column: str | None, max_rows: int | None, seed: int
) -> tuple[pd.DataFrame, int]:
    """(the rows to train on, the rows of the relation): every row ordered by the id, or a seeded
    sample of `max_rows` rows in id order (without an id, in the order of the rows' hashes)."""
    available = wh.row_count(relation)
    if max_rows is None or available <= max_rows:
        return wh.read_frame(relation, order_by=id_column), available
    frame = wh.sample_frame(relation, max_rows, seed)
    if id_column:
        order = np.argsort(frame[id_column].to_numpy(), kind="stable")
    else:
        order = np.argsort(pd.util.hash_pandas_object(frame, index=False).to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True), available


def prepare_task(
    wh: Warehouse, spec: TaskSpec, max_rows: int | None = None, seed: int = DEFAULT_SEED
) -> TaskData:
    """Read the task's relation and resolve target, problem type, features and ids.

    A relation of more than `max_rows` rows (None: no cap) is sampled: `max_rows` rows drawn with
    `seed`, the same ones on every run.

    Refused with a `UserError` (one line, nothing written): a relation that does not exist, cannot
    be read or has no rows; a target or id column that is not there (names match ignoring case);
    an id with missing or repeated values or named like a predictions column; a target with no
    values, a single value, infinite or huge numbers, or text for a regression.
    """
    columns = wh.describe(spec.relation).names
    target = require_column(columns, spec.target, "target", spec.relation)
    id_column = spec.id_column
    if id_column:
        id_column = require_column(columns, id_column, "id", spec.relation)
        if id_column == target:
            raise UserError(f"{target!r} cannot be both the target and the id column")
        if id_column.lower() in PREDICTION_COLUMNS or id_column.lower().startswith("probability_"):
            raise UserError(
                f"id column {id_column!r} has the name of a column of the predictions table; "
                "rename it (e.g. in a view) and train on that"
            )
    dropped = tuple(
        require_column(columns, c, "--drop-feature", spec.relation) for c in spec.dropped
    )
    spec = replace(spec, target=target, id_column=id_column, dropped=dropped)
    frame, available = _read_rows(wh, spec.relation, id_column, max_rows, seed)
    frame = plain_types(frame)
    if frame.empty:
        raise UserError(f"{spec.relation} has no rows to train on")
    if id_column:
        if frame[id_column].isna().any():
            raise UserError(f"id column {id_column!r} has missing values")
        if frame[id_column].duplicated().any():
            dup = frame.loc[frame[id_column].duplicated(), id_column].iloc[0]
            raise UserError(f"id column {id_column!r} is not unique (e.g. {dup!r} repeats)")
        ids = frame[id_column]
    else:
        id_column = ROW_NUMBER if ROW_NUMBER not in frame.columns else "__row_number"
        ids = pd.Series(np.arange(1, len(frame) + 1), name=id_column)
    if spec.problem not in (*PROBLEM_TYPES, "auto"):
        raise UserError(f"unknown problem type {spec.problem!r}")
    problem, target, mapping = resolve_target(frame[spec.target], spec.problem)
    exclude = {spec.target, id_column, *(spec.exclude or ()), *spec.dropped}
    features = select_features(frame, exclude=exclude, features=spec.features)
    labelled = np.flatnonzero(target.notna().to_numpy())
    if len(labelled) < MIN_ROWS:
        raise UserError(
            f"{spec.relation} has {len(labelled)} labelled rows; at least {MIN_ROWS} needed"
        )
    y = target.to_numpy()[labelled]
    classes = labels = None
    if problem == "binary":
        y = y.astype(int)
        classes, labels = [0, 1], [0, 1]
    elif problem == "multiclass":
        # models learn codes 0..K-1 (xgboost requires them); labels map codes back to names
        labels = sorted({str(v) for v in y})
        y = np.searchsorted(np.asarray(labels, dtype=object), y.astype(str)).astype(int)
        classes = list(range(len(labels)))
    if classes is not None:
        counts = pd.Series(y).value_counts()
        if counts.min() < MIN_ROWS_PER_CLASS:
            raise UserError(
                f"class {labels[counts.idxmin()]!r} of {spec.target!r} has {counts.min()} rows; "
                f"every class needs at least {MIN_ROWS_PER_CLASS}"
            )
    else:
        y = y.astype(float)
    return TaskData(
        spec=replace(spec, problem=problem),
        frame=frame,
        ids=ids.reset_index(drop=True),
        id_column=id_column,
        X_all=to_model_frame(frame, features),
        labelled=labelled,
        y=y,
        features=features,
        classes=classes,
        class_labels=labels,
        target_mapping=mapping,
        fingerprint=_fingerprint(frame),
        truth=_read_truth(wh, spec.oracle),
        rows_available=available,
        rows_used=len(frame),
        distributed=wh.distributed,
    )


def target_codes(
    target: pd.Series, problem: str, class_labels: list | None, mapping: dict[str, int] | None
) -> np.ndarray:
    """What the models learn of `target` values (as `prepare_task` resolved them on the rows it
    read): the number (regression), 0/1 (binary) or the class code (multiclass), as floats;
    NaN for a missing value or one the resolution does not know (e.g. a class not in the rows
    read). For rows the models never saw, such as the rest of a sampled relation."""
    if problem == "regression" or (problem == "binary" and mapping is None):
        text = target.astype("object").map(lambda v: v if pd.isna(v) else str(v).strip())
        values = pd.to_numeric(target if pd.api.types.is_numeric_dtype(target) else text, "coerce")
        return values.astype("float64").to_numpy()
    if problem == "binary":
        known = {str(k).strip(): v for k, v in (mapping or {}).items()}
        numbers = {float(n): v for k, v in known.items() if (n := _number(k)) is not None}

        def binary(v: object) -> float:
            if pd.isna(v):
                return np.nan
            text = str(v).strip()
            found = known.get(text, numbers.get(_number(text), np.nan))  # type: ignore[arg-type]
            return float(found)

        return target.astype("object").map(binary).astype("float64").to_numpy()
    numeric = pd.api.types.is_numeric_dtype(target) and not pd.api.types.is_bool_dtype(target)
    positions = {label: code for code, label in enumerate(class_labels or [])}

    def code(v: object) -> float:
        if pd.isna(v):
            return np.nan
        label = str(int(v)) if numeric else str(v).strip()  # type: ignore[call-overload]
        return float(positions.get(label, np.nan))

    return target.astype("object").map(code).astype("float64").to_numpy()


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _read_truth(wh: Warehouse, oracle: Oracle | None) -> pd.Series | None:
    """The oracle's (id -> truth) series, or None when the task or warehouse has no truth."""
    if oracle is None or not wh.exists(oracle.relation):
        return None
    truth = wh.read_frame(oracle.relation, columns=[oracle.id_column, oracle.column])
    return truth.set_index(oracle.id_column)[oracle.column]


def builtin_or_custom(
    task: str | None, table: str | None, target: str | None, id_column: str | None, problem: str
) -> TaskSpec:
    """The spec of a built-in task, or of a bring-your-own task over `table`."""
    if table is None:
        if task not in BUILTIN_TASKS:
            known = ", ".join(BUILTIN_TASKS)
            raise UserError(f"unknown task {task!r}: built-in tasks are {known} (or use --table)")
        return BUILTIN_TASKS[task]
    schema, name = parse_relation(table)
    if not target or not target.strip():
        raise UserError("--table needs --target COLUMN")
    if id_column is not None and not id_column.strip():
        raise UserError("--id needs a column name")
    return TaskSpec(
        name=validate_task_name(task or name.lower()),
        relation=f"{schema}.{name}",
        target=target,
        problem=problem,
        id_column=id_column,
    )
