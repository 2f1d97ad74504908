"""One training run of one task: data, split, tune, cross-validate, ensemble, evaluate, oracle.

`prepare_task` reads the task's relation and resolves its target and problem type;
`train_task` trains and evaluates every candidate and returns the results as values (rows for
`ml.model_runs` and the champion's predictions); ml.train writes them to the warehouse and prints.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import train_test_split

from ml import config, ensemble, evaluate, explain, models, tuning
from ml.errors import UserError
from ml.features import (
    MAX_ABS_TEXT,
    MAX_ABS_VALUE,
    FeatureSet,
    plain_types,
    select_features,
    to_model_frame,
)
from ml.registry import save_model, write_run_summary
from ml.warehouse import parse_relation, qualified, read_relation, relation_exists

Progress = Callable[[str], None]
#: Calls of the progress callback per task (3 per base model, then ensembles, refit, score,
#: explain, save).
PROGRESS_STEPS = 3 * len(config.BASE_MODELS) + 5

_TASK_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_RELATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_YES = {"y", "yes", "true", "t", "1", "1.0"}
_NO = {"n", "no", "false", "f", "0", "0.0"}
#: Fewest labelled rows per class (and in total) a task needs to be split and cross-validated.
MIN_ROWS_PER_CLASS = 10
MIN_ROWS = 30
#: Integer targets with at most this many distinct values are classes when the problem is `auto`.
MAX_AUTO_CLASSES = 10
MAX_CLASSES = 50
ROW_NUMBER = "row_number"


def validate_task_name(name: str) -> str:
    """Task names become table names and folder names: lowercase identifiers only."""
    if not isinstance(name, str) or not _TASK_NAME.fullmatch(name):
        raise UserError(
            f"invalid task name {name!r}: use lowercase letters, digits and _ (start with a letter)"
        )
    return name


@dataclass
class TaskData:
    """A task's rows, ready for training."""

    spec: config.TaskSpec  # with `problem` resolved
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


def _fingerprint(frame: pd.DataFrame) -> str:
    """Hash of a relation's columns, types and content (order-independent over rows)."""
    digest = hashlib.sha256()
    digest.update(json.dumps([[c, str(t)] for c, t in frame.dtypes.items()]).encode())
    if len(frame):
        hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
        digest.update(np.sort(hashed).tobytes())
    return digest.hexdigest()


def _resolve_target(target: pd.Series, requested: str) -> tuple[str, pd.Series, dict | None]:
    """The problem type, the target as numbers or labels, and the text-to-0/1 mapping if any."""
    values = target.dropna()
    if values.empty:
        raise UserError(f"target column {target.name!r} has no values")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if pd.api.types.is_bool_dtype(values):
        return _resolve_target(target.astype("float64"), requested)
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


#: Columns of a predictions table besides the id; an id column may not take one of these names.
PREDICTION_COLUMNS = frozenset(
    {"prediction", "probability", "threshold", "run_id", "model_name", "scored_at"}
)


def _column_named(columns: list[str], name: str, what: str, relation: str) -> str:
    """The relation's column called `name`: the same name, else the one name equal to it ignoring
    case (SQL names are case-insensitive: `--target loan_status` finds `Loan_Status`)."""
    if name in columns:
        return name
    matches = [c for c in columns if c.casefold() == name.strip().casefold()]
    if len(matches) == 1:
        return matches[0]
    shown = ", ".join(repr(c) for c in columns[:8]) + (", ..." if len(columns) > 8 else "")
    raise UserError(f"{what} column {name!r} is not in {relation} (its columns: {shown})")


def _read_task_relation(
    con: duckdb.DuckDBPyConnection, relation: str, order_by: str | None
) -> pd.DataFrame:
    """The relation as pandas, ordered by `order_by`; a relation DuckDB cannot read is refused."""
    try:
        frame = read_relation(con, relation, order_by=order_by)
    except duckdb.Error as err:  # a view over a dropped table, a cast that fails in a view
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot read {relation}: {first}") from None
    return plain_types(frame)


def prepare_task(con: duckdb.DuckDBPyConnection, spec: config.TaskSpec) -> TaskData:
    """Read the task's relation and resolve target, problem type, features and ids.

    Refused with a `UserError` (one line, nothing written): a relation that does not exist, cannot
    be read or has no rows; a target or id column that is not there (names match ignoring case);
    an id with missing or repeated values or named like a predictions column; a target with no
    values, a single value, infinite or huge numbers, or text for a regression.
    """
    if not relation_exists(con, spec.relation):
        raise UserError(f"table {spec.relation} does not exist in the warehouse")
    try:
        probe = con.execute(f"select * from {qualified(spec.relation)} limit 0")
        columns = [d[0] for d in probe.description]
        probe.fetchall()
    except duckdb.Error as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"cannot read {spec.relation}: {first}") from None
    target = _column_named(columns, spec.target, "target", spec.relation)
    id_column = spec.id_column
    if id_column:
        id_column = _column_named(columns, id_column, "id", spec.relation)
        if id_column == target:
            raise UserError(f"{target!r} cannot be both the target and the id column")
        if id_column.lower() in PREDICTION_COLUMNS or id_column.lower().startswith("probability_"):
            raise UserError(
                f"id column {id_column!r} has the name of a column of the predictions table; "
                "rename it (e.g. in a view) and train on that"
            )
    spec = replace(spec, target=target, id_column=id_column)
    frame = _read_task_relation(con, spec.relation, order_by=id_column)
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
    if spec.problem not in (*config.PROBLEM_TYPES, "auto"):
        raise UserError(f"unknown problem type {spec.problem!r}")
    problem, target, mapping = _resolve_target(frame[spec.target], spec.problem)
    exclude = {spec.target, id_column, *(spec.exclude or ())}
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
        truth=_read_truth(con, spec.oracle),
    )


def _read_truth(con: duckdb.DuckDBPyConnection, oracle: config.Oracle | None) -> pd.Series | None:
    """The oracle's (id -> truth) series, or None when the task or warehouse has no truth."""
    if oracle is None or not relation_exists(con, oracle.relation):
        return None
    truth = read_relation(con, oracle.relation, columns=[oracle.id_column, oracle.column])
    return truth.set_index(oracle.id_column)[oracle.column]


# ------------------------------------------------------------------------------------------------


def predict_values(model: BaseEstimator, X: pd.DataFrame, problem: str, classes: list | None):
    """Values (regression), positive-class probability (binary), or the probability matrix with
    columns in `classes` order (multiclass)."""
    if problem == "regression":
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    order = [list(model.classes_).index(c) for c in classes]
    proba = proba[:, order]
    return proba[:, 1] if problem == "binary" else proba


@dataclass
class Candidate:
    """One trained candidate and its evaluation."""

    name: str
    model: BaseEstimator
    params: dict[str, Any]
    cv_folds: list[dict[str, float]]
    oof: np.ndarray
    val_pred: np.ndarray
    test_pred: np.ndarray
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    selection: float = float("nan")  # primary metric on pooled out-of-fold + validation rows
    val_confusion: dict[str, int] | None = None
    test_confusion: dict[str, int] | None = None
    fit_seconds: float = 0.0
    refit_seconds: float | None = None  # set on the champion: refitted on every labelled row

    def cv(self) -> dict[str, tuple[float, float]]:
        """Mean and standard deviation of every metric over the CV folds."""
        frame = pd.DataFrame(self.cv_folds)
        return {m: (float(frame[m].mean()), float(frame[m].std(ddof=1))) for m in frame.columns}


@dataclass
class TaskResult:
    """Everything a training run of one task produced."""

    data: TaskData
    run_id: str
    candidates: list[Candidate]
    champion: str
    oracle: dict[str, float]
    split_sizes: dict[str, int]
    predictions: pd.DataFrame
    runs: pd.DataFrame
    seconds: float
    evaluation: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.evaluation_predictions
    explanations: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.prediction_explanations
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.feature_importance
    explain_seconds: float = 0.0


def split_indices(y: np.ndarray, problem: str, seed: int) -> tuple[np.ndarray, ...]:
    """Positions (into the labelled rows) of train (60 %), validation (20 %) and test (20 %)."""
    idx = np.arange(len(y))
    stratify = y if problem != "regression" else None
    train, rest = train_test_split(idx, test_size=0.4, random_state=seed, stratify=stratify)
    stratify_rest = y[rest] if problem != "regression" else None
    val, test = train_test_split(rest, test_size=0.5, random_state=seed, stratify=stratify_rest)
    return np.sort(train), np.sort(val), np.sort(test)


def _cross_validate(
    name: str,
    pipeline: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray,
    problem: str,
    classes: list | None,
    fold_ids: np.ndarray,
) -> tuple[list[dict[str, float]], np.ndarray]:
    """Metrics per fold and out-of-fold predictions of `pipeline` on the given folds."""
    n_classes = len(classes) if problem == "multiclass" else 0
    oof = np.zeros((len(y), n_classes)) if n_classes else np.zeros(len(y))
    fold_metrics = []
    for k in np.unique(fold_ids):
        held = fold_ids == k
        model = clone(pipeline).fit(
            X[~held], y[~held], **models.fit_params(name, problem, y[~held])
        )
        pred = predict_values(model, X[held], problem, classes)
        oof[held] = pred
        fold_metrics.append(evaluate.score(problem, y[held], pred, classes))
    return fold_metrics, oof


def _fold_ids(y: np.ndarray, problem: str, n_splits: int, seed: int) -> np.ndarray:
    ids = np.zeros(len(y), dtype=int)
    splitter = tuning.folds(problem, n_splits, seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
        ids[held] = k
    return ids


def _evaluate(
    candidate: Candidate,
    y_train: np.ndarray,
    y_val: np.ndarray,
    y_test: np.ndarray,
    problem: str,
    classes: list | None,
    metric: str,
    cost_fp: float | None,
    cost_fn: float | None,
) -> None:
    """Selection score, threshold, validation and test metrics of a candidate.

    The decision threshold (binary) and the selection score are computed on the pooled
    out-of-fold training predictions and validation predictions: on small tables a 20 %
    validation split alone is too noisy to rank models or place a threshold.
    """
    pooled_y = np.concatenate([y_train, y_val])
    pooled_pred = np.concatenate([candidate.oof, candidate.val_pred])
    threshold = 0.5
    if problem == "binary":
        threshold = evaluate.choose_threshold(pooled_y, pooled_pred, cost_fp, cost_fn)
        candidate.threshold = threshold
        candidate.val_confusion = evaluate.confusion(y_val, (candidate.val_pred >= threshold) * 1)
        candidate.test_confusion = evaluate.confusion(
            y_test, (candidate.test_pred >= threshold) * 1
        )
    candidate.selection = evaluate.score(problem, pooled_y, pooled_pred, classes, threshold)[metric]
    candidate.val = evaluate.score(problem, y_val, candidate.val_pred, classes, threshold)
    candidate.test = evaluate.score(problem, y_test, candidate.test_pred, classes, threshold)


def refit_on_all(
    champion: Candidate,
    candidates: list[Candidate],
    X: pd.DataFrame,
    y: np.ndarray,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    problem: str,
    seed: int,
) -> BaseEstimator:
    """The champion refitted on every labelled row (train + validation + test).

    Model selection and every reported metric use the train-only fits; the model that is saved
    and scores new rows then learns from all the labels there are (the usual "refit full").
    Ensembles refit their bases; stacking keeps its meta-learner, trained on out-of-fold
    predictions of the training rows.
    """

    def refit(c: Candidate) -> BaseEstimator:
        return clone(c.model).fit(X, y, **models.fit_params(c.name, problem, y))

    if champion.name in config.BASE_MODELS:
        return refit(champion)
    bases = [c for c in candidates if c.name in config.BASE_MODELS]
    refitted = {c.name: refit(c) for c in bases}
    if champion.name == "voting":
        return ensemble.build_voting(problem, refitted, X, y)
    return ensemble.build_stacking(
        problem, refitted, [c.oof for c in bases], X_train, y_train, seed
    )


def oracle_metrics(
    data: TaskData,
    threshold_rows: np.ndarray,
    test_rows: np.ndarray,
    cost_fp: float | None = None,
    cost_fn: float | None = None,
) -> dict[str, float]:
    """The task's metrics computed from the simulator's truth on the same test rows ({} if none).

    A binary oracle's threshold is chosen on `threshold_rows`, like the models' thresholds.
    """
    oracle, truth = data.spec.oracle, data.truth
    if oracle is None or truth is None:
        return {}
    ids = data.ids.to_numpy()[data.labelled]
    classes = data.classes

    def values(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = truth.reindex(ids[rows])
        keep = found.notna().to_numpy()
        return found.to_numpy()[keep], data.y[rows][keep]

    t_test, y_test = values(test_rows)
    if len(t_test) == 0:
        return {}
    if oracle.kind == "expected_value":
        return evaluate.regression_metrics(y_test, t_test.astype(float))
    if oracle.kind == "probability":
        t_val, y_val = values(threshold_rows)
        threshold = evaluate.choose_threshold(y_val, t_val.astype(float), cost_fp, cost_fn)
        return evaluate.binary_metrics(y_test, t_test.astype(float), threshold)
    # the true class, observed through symmetric label noise: Bayes-optimal probabilities
    k = len(classes)
    eps = oracle.label_noise
    proba = np.full((len(t_test), k), eps / max(k - 1, 1))
    lookup = {c: i for i, c in enumerate(data.class_labels)}
    for row, label in enumerate(t_test):
        if label in lookup:
            proba[row, lookup[label]] = 1.0 - eps
    return evaluate.multiclass_metrics(y_test, proba, classes)


#: The libraries a saved model depends on (their versions go into its metadata).
MODEL_LIBRARIES = (
    "scikit-learn",
    "xgboost-cpu",
    "tensorflow-cpu",
    "keras",
    "pandas",
    "numpy",
    "duckdb",
)


def library_versions(dists: tuple[str, ...] = MODEL_LIBRARIES) -> dict[str, str]:
    """Versions of the installed distributions `dists` (default: what a model depends on)."""
    out = {}
    for dist in dists:
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def new_run_id() -> str:
    """Sortable id of one `ml.train` invocation: UTC time plus a random suffix."""
    return (
        datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        + "-"
        + hashlib.sha1(str(time.perf_counter_ns()).encode()).hexdigest()[:6]
    )


def train_task(
    data: TaskData,
    run_id: str,
    seed: int = config.DEFAULT_SEED,
    fast: bool = False,
    cost_fp: float | None = None,
    cost_fn: float | None = None,
    progress: Progress | None = None,
    explain_rows: int = config.EXPLAIN_MAX_ROWS,
    top_k: int = config.EXPLAIN_TOP_K,
) -> TaskResult:
    """Train, tune, cross-validate and evaluate every candidate of a task; pick the champion,
    refit it, score every row and explain (SHAP) up to `explain_rows` of them (0: none).

    Needs no warehouse connection: `prepare_task` read everything, so the warehouse stays free
    for other processes while models train.
    """
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    spec, problem, classes = data.spec, data.spec.problem, data.classes
    metric = spec.metric(problem)
    space_name = "fast" if fast else "full"
    space = config.SEARCH_SPACES[space_name]
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    y = data.y
    train, val, test = split_indices(y, problem, seed)
    X_tr, y_tr = X.iloc[train].reset_index(drop=True), y[train]
    X_va, y_va = X.iloc[val].reset_index(drop=True), y[val]
    X_te, y_te = X.iloc[test].reset_index(drop=True), y[test]
    n_folds = config.CV_FOLDS[space_name]
    if problem != "regression":  # every fold needs every class
        n_folds = min(n_folds, max(2, int(pd.Series(y_tr).value_counts().min())))
    fold_ids = _fold_ids(y_tr, problem, n_folds, seed)
    X_tune, y_tune = tuning.tuning_sample(
        X_tr, y_tr, config.TUNING_MAX_ROWS[space_name], problem, seed
    )

    candidates: list[Candidate] = []
    fitted: dict[str, BaseEstimator] = {}
    for name in config.BASE_MODELS:
        t0 = time.perf_counter()
        pipeline = models.make_pipeline(
            data.features, models.base_estimator(name, problem, y_tr, seed)
        )
        if name == "keras":
            pipeline.set_params(
                **{f"model__{k}": v for k, v in config.KERAS_FIT[space_name].items()}
            )
        say(f"{spec.name}: tuning {name}")
        if name == "keras":
            best = tuning.keras_search(
                pipeline,
                space["keras"],
                X_tune,
                y_tune,
                problem,
                seed,
                config.KERAS_TRIALS[space_name],
            )
        else:
            grid = models.grid_for(pipeline.named_steps["model"], space[name])
            best = tuning.grid_search(
                pipeline, grid, X_tune, y_tune, problem, metric, seed,
                fit_params=models.fit_params(name, problem, y_tune),
            )  # fmt: skip
        pipeline.set_params(**best)
        say(f"{spec.name}: cross-validating {name} ({n_folds} folds)")
        fold_metrics, oof = _cross_validate(name, pipeline, X_tr, y_tr, problem, classes, fold_ids)
        say(f"{spec.name}: fitting {name}")
        t_fit = time.perf_counter()
        model = pipeline.fit(X_tr, y_tr, **models.fit_params(name, problem, y_tr))
        fit_seconds = time.perf_counter() - t_fit
        fitted[name] = model
        candidates.append(
            Candidate(
                name=name,
                model=model,
                params={k.removeprefix("model__"): v for k, v in best.items()},
                cv_folds=fold_metrics,
                oof=oof,
                val_pred=predict_values(model, X_va, problem, classes),
                test_pred=predict_values(model, X_te, problem, classes),
                fit_seconds=fit_seconds,
            )
        )
        candidates[-1].params["tuning_seconds"] = round(time.perf_counter() - t0 - fit_seconds, 2)

    say(f"{spec.name}: assembling voting and stacking ensembles")
    oofs = [c.oof for c in candidates]
    base_seconds = sum(c.fit_seconds for c in candidates)
    for name in config.ENSEMBLES:
        t0 = time.perf_counter()
        if name == "voting":
            oof = ensemble.voting_oof(problem, oofs)
            model = ensemble.build_voting(problem, fitted, X_tr, y_tr)
            params = {"bases": list(fitted), "voting": "soft"}
        else:
            oof = ensemble.stacking_oof(problem, oofs, y_tr, fold_ids, seed)
            model = ensemble.build_stacking(problem, fitted, oofs, X_tr, y_tr, seed)
            params = {
                "bases": list(fitted),
                "meta_learner": type(ensemble.meta_learner(problem, seed)).__name__,
            }
        fold_metrics = [
            evaluate.score(problem, y_tr[fold_ids == k], oof[fold_ids == k], classes)
            for k in np.unique(fold_ids)
        ]
        candidates.append(
            Candidate(
                name=name,
                model=model,
                params=params,
                cv_folds=fold_metrics,
                oof=oof,
                val_pred=predict_values(model, X_va, problem, classes),
                test_pred=predict_values(model, X_te, problem, classes),
                fit_seconds=base_seconds + time.perf_counter() - t0,
            )
        )

    for candidate in candidates:
        _evaluate(candidate, y_tr, y_va, y_te, problem, classes, metric, cost_fp, cost_fn)
    sign = 1 if evaluate.greater_is_better(metric) else -1
    champion = max(candidates, key=lambda c: sign * np.nan_to_num(c.selection, nan=-np.inf))
    oracle = oracle_metrics(data, np.concatenate([train, val]), test, cost_fp, cost_fn)

    say(f"{spec.name}: refitting the champion ({champion.name}) on all {len(y):,} labelled rows")
    t0 = time.perf_counter()
    deployed = refit_on_all(champion, candidates, X, y, X_tr, y_tr, problem, seed)
    champion.refit_seconds = time.perf_counter() - t0
    champion.model = deployed

    say(f"{spec.name}: scoring {len(data.X_all):,} rows with the champion ({champion.name})")
    predictions = prediction_frame(
        champion.model,
        data.X_all,
        data.ids,
        data.id_column,
        problem,
        classes,
        data.class_labels,
        champion.threshold,
        run_id,
        champion.name,
    )
    result = TaskResult(
        data=data,
        run_id=run_id,
        candidates=candidates,
        champion=champion.name,
        oracle=oracle,
        split_sizes={"train": len(train), "val": len(val), "test": len(test), "folds": n_folds},
        predictions=predictions,
        runs=pd.DataFrame(),
        seconds=0.0,
    )
    result.evaluation = evaluation_frame(result, {"validation": val, "test": test})
    say(f"{spec.name}: explaining the champion's predictions (SHAP)")
    t0 = time.perf_counter()
    result.explanations, result.importance = explain_champion(
        result, champion, X_tr, seed, explain_rows, top_k
    )
    result.explain_seconds = time.perf_counter() - t0
    say(f"{spec.name}: saving artifacts")
    result.runs = registry_rows(result, seed)
    result.seconds = time.perf_counter() - started
    return result


def explain_champion(
    result: TaskResult,
    champion: Candidate,
    X_train: pd.DataFrame,
    seed: int,
    max_rows: int,
    top_k: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`ml.prediction_explanations` and `ml.feature_importance` rows of the champion.

    Every scored row is explained, up to `max_rows` (beyond it a seeded sample; the importance
    is then that sample's). The background of the linear and Keras parts is a seeded sample of
    the training rows.
    """
    data = result.data
    n = len(data.X_all)
    if max_rows <= 0 or n == 0:
        return pd.DataFrame(), pd.DataFrame()
    rng = np.random.default_rng(seed)
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    reference_rows = min(config.EXPLAIN_REFERENCE_ROWS, len(X_train))
    reference = X_train.iloc[np.sort(rng.choice(len(X_train), reference_rows, replace=False))]
    explanation = explain.explain(champion.model, data.X_all.iloc[rows], reference, seed=seed)
    labels = None
    if data.spec.problem == "multiclass":
        # positions into the model's classes_ (the codes 0..K-1) -> the class labels
        labels = [data.class_labels[int(c)] for c in champion.model.classes_]
    common = {"task": data.spec.name, "run_id": result.run_id, "model_name": champion.name}
    rows_frame = explain.explanation_rows(
        explanation,
        data.frame.iloc[rows],
        data.ids.iloc[rows],
        top_k=top_k,
        class_labels=labels,
        **common,
    )
    return rows_frame, explain.importance_rows(explanation, **common)


def evaluation_frame(result: TaskResult, splits: dict[str, np.ndarray]) -> pd.DataFrame:
    """`ml.evaluation_predictions` rows: every candidate's prediction of the held-out rows.

    `actual` and `predicted` are numbers: the value (regression), 0/1 and the positive-class
    probability (binary), or class codes (multiclass, with `actual_label`, `predicted_label` and
    every class's probability in `probabilities`). The models here are the train-only fits the
    reported metrics come from. The reports draw ROC, calibration and residual plots from it.
    """
    data = result.data
    problem = data.spec.problem
    ids = data.ids.to_numpy()[data.labelled]
    labels = np.asarray([str(v) for v in data.class_labels or []], dtype=object)
    parts = []
    for c in result.candidates:
        for split, rows in splits.items():
            pred = c.val_pred if split == "validation" else c.test_pred
            n = len(rows)
            part = pd.DataFrame(
                {
                    "task": pd.Series([data.spec.name] * n, dtype="str"),
                    "run_id": pd.Series([result.run_id] * n, dtype="str"),
                    "model_name": pd.Series([c.name] * n, dtype="str"),
                    "split": pd.Series([split] * n, dtype="str"),
                    "entity_id": pd.Series([str(v) for v in ids[rows]], dtype="str"),
                }
            )
            actual = data.y[rows]
            if problem == "multiclass":
                pred = np.asarray(pred, dtype=float).reshape(n, -1)
                codes = np.asarray([int(v) for v in actual])
                part["actual"] = codes.astype(float)
                part["predicted"] = pred.argmax(axis=1).astype(float)
                part["actual_label"] = pd.Series(labels[codes], dtype="str")
                part["predicted_label"] = pd.Series(labels[pred.argmax(axis=1)], dtype="str")
                part["probabilities"] = list(pred)
            else:
                part["actual"] = np.asarray(actual, dtype=float)
                part["predicted"] = np.asarray(pred, dtype=float)
                part["actual_label"] = pd.Series([None] * n, dtype="str")
                part["predicted_label"] = pd.Series([None] * n, dtype="str")
                part["probabilities"] = [None] * n
            part["threshold"] = c.threshold if c.threshold is not None else np.nan
            part["is_champion"] = c.name == result.champion
            parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _class_column(label: Any, taken: set[str]) -> str:
    base = "probability_" + (re.sub(r"[^0-9a-z]+", "_", str(label).lower()).strip("_") or "class")
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def prediction_frame(
    model: BaseEstimator,
    X: pd.DataFrame,
    ids: pd.Series,
    id_column: str,
    problem: str,
    classes: list | None,
    class_labels: list | None,
    threshold: float | None,
    run_id: str,
    model_name: str,
) -> pd.DataFrame:
    """Prediction rows: id, prediction, probability (+ one column per class), threshold, run.

    Regression: `prediction` is the value and `probability` is NULL. Binary: `probability` is the
    positive class's, `prediction` is 1 at or above `threshold`. Multiclass: `prediction` is the
    most probable class, `probability` its probability, `probability_<class>` every class's.
    """
    pred = predict_values(model, X, problem, classes) if len(X) else np.zeros(0)
    out = pd.DataFrame({id_column: ids.to_numpy()})
    if problem == "regression":
        out["prediction"] = pred.astype(float)
        out["probability"] = np.full(len(out), np.nan)
    elif problem == "binary":
        out["prediction"] = (pred >= threshold).astype("int64")
        out["probability"] = pred
    else:
        pred = pred.reshape(len(out), len(classes))
        labels = np.asarray(class_labels, dtype=object)
        out["prediction"] = pd.Series(labels[pred.argmax(axis=1)] if len(out) else [], dtype="str")
        out["probability"] = pred.max(axis=1) if len(out) else np.zeros(0)
        taken: set[str] = set(out.columns)
        for j, label in enumerate(class_labels):
            out[_class_column(label, taken)] = pred[:, j]
    out["threshold"] = float(threshold) if threshold is not None else np.nan
    out["run_id"] = run_id
    out["model_name"] = model_name
    out["scored_at"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    return out


def scoring_metadata(
    data: TaskData, run_id: str, model_name: str, threshold: float | None, seed: int
) -> dict[str, Any]:
    """What ml.predict needs to validate and score new rows with a model trained on `data`."""
    return {
        "task": data.spec.name,
        "run_id": run_id,
        "model_name": model_name,
        "problem": data.spec.problem,
        "relation": data.spec.relation,
        "target": data.spec.target,
        "id_column": data.id_column,
        "features": data.features.columns,
        "numeric_features": list(data.features.numeric),
        "categorical_features": list(data.features.categorical),
        "dropped_columns": data.features.dropped,
        "dtypes": {c: str(data.frame[c].dtype) for c in data.features.columns},
        "categories": {
            c: sorted(map(str, data.frame[c].dropna().unique()))[:200]
            for c in data.features.categorical
        },
        "classes": data.classes,
        "class_labels": data.class_labels,
        "target_mapping": data.target_mapping,
        "threshold": threshold,
        "seed": seed,
        "versions": library_versions(),
        "data_fingerprint": data.fingerprint,
    }


def metadata_for(result: TaskResult, candidate: Candidate, seed: int) -> dict[str, Any]:
    """What ml.predict needs to validate and score new rows, and what a person wants to know."""
    return {
        **scoring_metadata(result.data, result.run_id, candidate.name, candidate.threshold, seed),
        "refit_on_all_labelled_rows": candidate.refit_seconds is not None,
        "metrics": {"val": candidate.val, "test": candidate.test},
        "params": candidate.params,
    }


def registry_rows(result: TaskResult, seed: int) -> pd.DataFrame:
    """One `ml.model_runs` row per candidate; saves every candidate's artifact on the way."""
    data = result.data
    trained_at = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    rows = []
    for c in result.candidates:
        path, digest = save_model(
            c.model, metadata_for(result, c, seed), data.spec.name, result.run_id, c.name
        )
        cv = c.cv()
        row: dict[str, Any] = {
            "run_id": result.run_id,
            "task": data.spec.name,
            "model_name": c.name,
            "problem": data.spec.problem,
            "primary_metric": data.spec.metric(data.spec.problem),
            "params": json.dumps(c.params, default=str, sort_keys=True),
        }
        for m in evaluate.ALL_METRICS:
            row[f"cv_{m}_mean"] = cv.get(m, (np.nan, np.nan))[0]
            row[f"cv_{m}_std"] = cv.get(m, (np.nan, np.nan))[1]
            row[f"val_{m}"] = c.val.get(m, np.nan)
            row[f"test_{m}"] = c.test.get(m, np.nan)
            row[f"oracle_{m}"] = result.oracle.get(m, np.nan)
        row.update(
            selection_score=c.selection,
            threshold=c.threshold if c.threshold is not None else np.nan,
            val_confusion=json.dumps(c.val_confusion) if c.val_confusion else None,
            test_confusion=json.dumps(c.test_confusion) if c.test_confusion else None,
            cv_folds=result.split_sizes["folds"],
            fit_seconds=round(c.fit_seconds, 3),
            n_train=result.split_sizes["train"],
            fit_rows=len(data.y) if c.refit_seconds is not None else result.split_sizes["train"],
            refit_seconds=c.refit_seconds,
            n_val=result.split_sizes["val"],
            n_test=result.split_sizes["test"],
            n_features=len(data.features.columns),
            is_champion=c.name == result.champion,
            artifact_path=str(path),
            artifact_sha256=digest,
            relation=data.spec.relation,
            target=data.spec.target,
            id_column=data.id_column,
            target_mapping=json.dumps(data.target_mapping) if data.target_mapping else None,
            seed=seed,
            library_versions=json.dumps(library_versions(), sort_keys=True),
            data_fingerprint=data.fingerprint,
            trained_at=trained_at,
        )
        rows.append(row)
    write_run_summary(
        data.spec.name,
        result.run_id,
        {
            "task": data.spec.name,
            "run_id": result.run_id,
            "champion": result.champion,
            "oracle": result.oracle,
            "split_sizes": result.split_sizes,
            "candidates": {
                c.name: {
                    "artifact": Path(r["artifact_path"]).name,
                    "artifact_sha256": r["artifact_sha256"],
                    "selection_score": c.selection,
                    "val": c.val,
                    "test": c.test,
                }
                for c, r in zip(result.candidates, rows, strict=True)
            },
        },
    )
    return pd.DataFrame(rows)


def builtin_or_custom(
    task: str | None, table: str | None, target: str | None, id_column: str | None, problem: str
) -> config.TaskSpec:
    """The spec of a built-in task, or of a bring-your-own task over `table`."""
    if table is None:
        if task not in config.BUILTIN_TASKS:
            known = ", ".join(config.BUILTIN_TASKS)
            raise UserError(f"unknown task {task!r}: built-in tasks are {known} (or use --table)")
        return config.BUILTIN_TASKS[task]
    if not isinstance(table, str) or not _RELATION_NAME.fullmatch(table.strip()):
        raise UserError(
            f"invalid table name {table!r}: use schema.table with letters, digits and _ only"
        )
    schema, name = parse_relation(table)
    if not target or not target.strip():
        raise UserError("--table needs --target COLUMN")
    if id_column is not None and not id_column.strip():
        raise UserError("--id needs a column name")
    return config.TaskSpec(
        name=validate_task_name(task or name.lower()),
        relation=f"{schema}.{name}",
        target=target,
        problem=problem,
        id_column=id_column,
    )
