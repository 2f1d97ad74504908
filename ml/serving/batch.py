"""Batch scoring: a warehouse table in, a warehouse table of predictions out, in bounded memory.

    from ml.predict import load_model
    from ml.scoring import score_table
    from ml.warehouse import session

    with session() as con:
        model = load_model("loan_repayment", con)
        rows = score_table(con, model, "marts.loan_features", "ml.loan_scores")

`score_table` streams the source as Arrow record batches of at most `batch_rows` rows (never one
DataFrame of the whole table), scores each batch and appends it to the target table. The target
is built under a temporary name in ONE transaction and swapped in at the end (as
`ml.warehouse.write_tables` does), so a failure or a kill half-way leaves the previous table as it
was and no temporary one. The rows are the ones `TrainedModel.predict` returns for the whole
table: id, prediction, probability (+ one per class), threshold, run_id, model_name, scored_at
(one timestamp for the whole run); non-finite predictions are refused and probabilities clipped
to [0, 1], as there.

Two ways to turn a batch into predictions, with the same results:

- the generic path: the batch as pandas, `TrainedModel.prepare`, then the fitted pipeline;
- the fast path (the default, for the models ml.train makes: a Pipeline of our ColumnTransformer
  (median impute + indicators + scale; missing-category fill + one-hot) and an estimator, or
  Voting / Stacking ensembles of such pipelines): numeric columns go from Arrow into one float64
  matrix with the fitted medians, means and scales, element by element the same arithmetic as
  scikit-learn's; a categorical column is dictionary-encoded by Arrow and only its distinct
  values go through `TrainedModel.prepare` and the fitted one-hot encoder (cached across
  batches), whose rows are gathered by code; ensemble members whose fitted preprocessing is
  identical (the usual case: the same training rows) share one matrix instead of preprocessing
  the batch once each. The estimators are the fitted ones, called as the pipeline calls them.

The fast path checks itself: when the model is compiled, numbers that `prepare` treats specially
(infinities, huge values) must come out as it makes them; on the first batch, its predictions of
up to `VERIFY_ROWS` rows must equal the generic path's exactly. Otherwise the run scores on the
generic path and `ScoringStats.fallback_reason` says why.
"""

from __future__ import annotations

import copy
import hashlib
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ml import features as _features
from ml.errors import RelationNotFoundError, UserError
from ml.experiment import predict_values, prediction_frame
from ml.predict import MissingColumnError, TrainedModel
from ml.warehouse import parse_relation, quote_ident, relation_exists

#: Rows per Arrow record batch asked of DuckDB (it hands out at most this many, often fewer: one
#: row group of 122,880). Large enough that per-batch overhead is small, small enough that a
#: batch's matrices stay a few hundred MB.
DEFAULT_BATCH_ROWS = 262_144
#: DuckDB's memory limit while scoring. DuckDB caches the rows a transaction appends (and the
#: blocks it reads) up to its limit, 80 % of RAM by default, so the process's memory would grow
#: with the table; under this limit it is bounded (the appended rows are on disk already; at
#: 512 MB that cache was 471 of the 1,250 MB peak at 10M rows, see docs/design/scoring.md).
DEFAULT_MEMORY_LIMIT = "256MB"
#: Rows of the first batch the fast path is checked on against the generic path.
VERIFY_ROWS = 2_048
#: Distinct values of a categorical column whose one-hot rows are kept between batches.
MAX_CACHED_CATEGORIES = 100_000
#: Numbers with a larger magnitude are missing to the models (ml.features.MAX_ABS_VALUE).
MAX_ABS_VALUE = float(getattr(_features, "MAX_ABS_VALUE", np.inf))
#: Values the numeric conversion is checked on when a model is compiled.
_PROBE_NUMBERS = np.array(
    [0.0, 1.5, -2.25, np.nan, np.inf, -np.inf, 1e15, -1e15, 1.000001e15, -1e16, 1e300, 5e-324]
)

Progress = Callable[[int], None]
STAGES = ("read", "verify", "prepare", "predict", "write", "wait")


@dataclass
class ScoringStats:
    """Where the time of a `score_table` run went, and which path scored.

    `stage_s` / `stage_cpu_s`: busy wall and CPU seconds of reading the Arrow batches from
    DuckDB, checking the fast path on the first batch, turning batches into model matrices, the
    estimators, writing (output columns, queueing or inserting, the swap and the commit), and
    the scoring thread waiting for the next prepared batch. With background threads, reading
    and preparing overlap the rest (their CPU is the reader thread's own); the other stages'
    CPU is the whole process's during the stage (the estimators use their own threads), so it
    includes overlapping background work. `writer_s` / `writer_cpu_s`: the insert thread.
    `estimator_s`: wall seconds per ensemble member (the whole pipeline on the generic path).
    `compiled_trees`: per xgboost member, "compiled" when `ml.trees` evaluated its trees, else
    why xgboost did.
    """

    rows: int = 0
    batches: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    stage_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    stage_cpu_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    estimator_s: dict[str, float] = field(default_factory=dict)
    writer_s: float = 0.0
    writer_cpu_s: float = 0.0
    fast: bool = False
    fallback_reason: str | None = None
    compiled_trees: dict[str, str] = field(default_factory=dict)

    def add(self, stage: str, wall: float, cpu: float) -> None:
        """Add a lap to a stage."""
        self.stage_s[stage] += wall
        self.stage_cpu_s[stage] += cpu

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for JSON)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rows_per_s"] = self.rows / self.seconds if self.seconds > 0 else None
        return out


class _Clock:
    """Wall and CPU (process) seconds since the last lap."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self.wall, cpu - self.cpu)
        self.wall, self.cpu = wall, cpu
        return out


def _add_time(timings: dict[str, list[float]], name: str, lap: tuple[float, float]) -> None:
    wall, cpu = timings.get(name, (0.0, 0.0))
    timings[name] = [wall + lap[0], cpu + lap[1]]


# ---------------------------------------------------------------------------------------------
# the fast path: the fitted preprocessing, reproduced


class _Unsupported(Exception):
    """The model has a part the fast path does not reproduce: use the generic path."""


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise _Unsupported(why)


_NUMERIC_ARROW = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
_TEXT_ARROW = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)


def _missing_numbers(values: np.ndarray) -> np.ndarray:
    """Where a float64 column is missing to the models: NaN, infinite or beyond MAX_ABS_VALUE."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(values) <= MAX_ABS_VALUE)


class _NumericBlock:
    """SimpleImputer(median, add_indicator) + StandardScaler over float64 columns."""

    def __init__(self, pipe: Pipeline, columns: list[str]) -> None:
        _require(isinstance(pipe, Pipeline) and len(pipe.steps) == 2, "numeric part has 2 steps")
        imputer, scaler = pipe.steps[0][1], pipe.steps[1][1]
        _require(type(imputer) is SimpleImputer, "numeric imputer is not a SimpleImputer")
        _require(type(scaler) is StandardScaler, "numeric scaler is not a StandardScaler")
        missing = imputer.missing_values
        _require(isinstance(missing, float) and np.isnan(missing), "imputer missing_values != NaN")
        _require(not imputer.keep_empty_features, "imputer keeps empty features")
        self.columns = list(columns)
        self.stats = np.asarray(imputer.statistics_, dtype=np.float64)
        self.valid = np.flatnonzero(~np.isnan(self.stats))  # the columns SimpleImputer keeps
        if imputer.add_indicator:
            indicator = getattr(imputer, "indicator_", None)
            _require(indicator is not None, "imputer has no fitted indicator")
            _require(indicator.features == "missing-only", "indicator over all features")
            _require(not indicator.error_on_new, "indicator errors on new missing features")
            self.indicator = np.asarray(indicator.features_, dtype=int)
        else:
            self.indicator = np.zeros(0, dtype=int)
        self.width = len(self.valid) + len(self.indicator)
        _require(scaler.n_features_in_ == self.width, "scaler width != imputer output width")
        self.with_mean, self.with_std = bool(scaler.with_mean), bool(scaler.with_std)
        self.mean = np.asarray(scaler.mean_, dtype=np.float64) if self.with_mean else None
        self.scale = np.asarray(scaler.scale_, dtype=np.float64) if self.with_std else None

    def key(self) -> bytes:
        parts = [repr((self.columns, self.with_mean, self.with_std)).encode()]
        for array in (self.stats, self.indicator, self.mean, self.scale):
            parts.append(b"-" if array is None else array.tobytes())
        return b"|".join(parts)

    def fill(self, rows: np.ndarray, numeric: dict[str, np.ndarray]) -> None:
        """Write the block, transposed, into `rows` (width x n): one output column per row.

        Each element gets the float64 operations scikit-learn applies (missing -> the fitted
        statistic, then `- mean_`, then `/ scale_`), so the values are identical.
        """
        masks: dict[int, np.ndarray] = {}
        for k, j in enumerate(self.valid):
            row = rows[k]
            np.copyto(row, numeric[self.columns[j]])
            missing = _missing_numbers(row)
            masks[j] = missing
            if missing.any():
                row[missing] = self.stats[j]
        n_valid = len(self.valid)
        for k, j in enumerate(self.indicator):
            mask = masks.get(j)
            rows[n_valid + k] = (
                mask if mask is not None else _missing_numbers(numeric[self.columns[j]])
            )
        for k in range(self.width):
            row = rows[k]
            if self.mean is not None:
                np.subtract(row, self.mean[k], out=row)
            if self.scale is not None:
                np.divide(row, self.scale[k], out=row)


#: (column -> distinct raw values) -> the model frame of those values (TrainedModel.prepare).
Converter = Callable[[dict[str, list]], pd.DataFrame]


class _CategoricalBlock:
    """Missing-category fill + OneHotEncoder, applied to each distinct value once."""

    def __init__(self, pipe: Pipeline, columns: list[str]) -> None:
        _require(isinstance(pipe, Pipeline) and len(pipe.steps) == 2, "text part has 2 steps")
        fill, encoder = pipe.steps[0][1], pipe.steps[1][1]
        _require(
            type(fill) is FunctionTransformer
            and getattr(fill.func, "__module__", None) == "ml.features"
            and fill.func.__name__ == "_fill_missing_category"
            and not fill.kw_args
            and not fill.validate,
            "text fill is not ml.features' missing-category fill",
        )
        _require(type(encoder) is OneHotEncoder, "text encoder is not a OneHotEncoder")
        _require(not encoder.sparse_output, "one-hot encoder has sparse output")
        n_outs = getattr(encoder, "_n_features_outs", None)
        _require(n_outs is not None and len(n_outs) == len(columns), "unknown one-hot layout")
        self.pipe = pipe
        self.encoder = encoder
        self.columns = list(columns)
        self.n_outs = [int(n) for n in n_outs]
        self.offsets = np.concatenate([[0], np.cumsum(self.n_outs)]).astype(int)
        self.width = int(self.offsets[-1])
        self.convert: Converter | None = None  # set by BatchScorer
        self._cache: list[dict[Any, np.ndarray]] = [{} for _ in self.columns]

    def key(self) -> bytes:
        enc = self.encoder
        parts = [repr((self.columns, self.n_outs, enc.handle_unknown, enc.drop)).encode()]
        parts += [repr(list(c)).encode() for c in enc.categories_]
        parts.append(repr(getattr(enc, "infrequent_categories_", None)).encode())
        parts.append(repr(getattr(enc, "drop_idx_", None)).encode())
        return b"|".join(parts)

    def _encode(self, new: list[list]) -> None:
        """Convert values not seen yet as `prepare` does, encode them, cache each one's output."""
        longest = max(len(v) for v in new)
        # a column with fewer (or no) new values repeats one of them, or a known value
        padded = [v or [next(iter(self._cache[j]))] for j, v in enumerate(new)]
        values = {
            c: [v[min(r, len(v) - 1)] for r in range(longest)]
            for c, v in zip(self.columns, padded, strict=True)
        }
        frame = self.convert(values)
        table = np.asarray(self.pipe.transform(frame[self.columns]), dtype=np.float64)
        _require(table.shape == (longest, self.width), "one-hot output has an unexpected shape")
        for j, column_new in enumerate(new):
            lo, hi = self.offsets[j], self.offsets[j + 1]
            for r, value in enumerate(column_new):
                self._cache[j][value] = table[r, lo:hi].copy()

    def fill(self, rows: np.ndarray, categorical: dict[str, tuple[list, np.ndarray]]) -> None:
        """Write the one-hot block, transposed, into `rows` (width x n).

        `categorical[column]` is (distinct raw values, code of every row into them).
        """
        if not self.columns:
            return
        for j, cache in enumerate(self._cache):
            if len(cache) > MAX_CACHED_CATEGORIES:
                self._cache[j] = {}
        values = [categorical[c][0] for c in self.columns]
        new = [[v for v in vals if v not in self._cache[j]] for j, vals in enumerate(values)]
        if any(new):
            self._encode(new)
        for j, c in enumerate(self.columns):
            lo, hi = self.offsets[j], self.offsets[j + 1]
            if hi == lo:
                continue
            table = np.stack([self._cache[j][v] for v in values[j]])
            codes = categorical[c][1]
            for k in range(hi - lo):
                np.take(table[:, k], codes, out=rows[lo + k])


class _Prep:
    """A fitted ColumnTransformer ([numeric, text], remainder dropped, dense) reproduced."""

    def __init__(self, ct: ColumnTransformer) -> None:
        _require(type(ct) is ColumnTransformer, "preprocessing is not a ColumnTransformer")
        _require(not ct.sparse_output_, "preprocessing has sparse output")
        output = getattr(ct, "_sklearn_output_config", None) or {}
        _require(output.get("transform", "default") == "default", "preprocessing outputs pandas")
        self.blocks: list[_NumericBlock | _CategoricalBlock] = []
        for name, transformer, columns in ct.transformers_:
            if isinstance(transformer, str):
                _require(transformer == "drop", f"transformer {name!r} is {transformer!r}")
                continue
            columns = list(columns)
            _require(all(isinstance(c, str) for c in columns), "columns not selected by name")
            steps = getattr(transformer, "steps", None) or [(None, None)]
            if type(steps[0][1]) is SimpleImputer:
                self.blocks.append(_NumericBlock(transformer, columns))
            else:
                self.blocks.append(_CategoricalBlock(transformer, columns))
        self.width = sum(b.width for b in self.blocks)
        self.numeric = [c for b in self.blocks if isinstance(b, _NumericBlock) for c in b.columns]
        self.categorical = [
            c for b in self.blocks if isinstance(b, _CategoricalBlock) for c in b.columns
        ]
        self.key = hashlib.sha256(b"||".join(b.key() for b in self.blocks)).hexdigest()
        self.needs_c = False  # set when a member that reads it wants the C layout
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def transform(
        self, numeric: dict, categorical: dict, n: int, slot: int = 0, c_order: bool = True
    ) -> dict[str, np.ndarray]:
        """The n x width float64 matrix `ColumnTransformer.transform` returns, by layout:
        "F" (column-major, always) and "C" (row-major, as scikit-learn returns it, if `c_order`).

        Built column by column in a transposed buffer (contiguous writes): its transpose is the
        F matrix; the C matrix is one more copy. The buffers of each `slot` are kept for the next
        batch in that slot (fresh pages every batch cost more than the arithmetic), so the
        matrices are only valid until the slot is used again.
        """
        buffers = self._buffers.get(slot)
        if buffers is None or buffers[0].shape[1] < n:
            self._buffers.pop(slot, None)
            buffers = (np.empty((self.width, n)), np.empty((n, self.width)))
            self._buffers[slot] = buffers
        rows = buffers[0][:, :n]
        start = 0
        for block in self.blocks:
            part = rows[start : start + block.width]
            if isinstance(block, _NumericBlock):
                block.fill(part, numeric)
            else:
                block.fill(part, categorical)
            start += block.width
        out = {"F": rows.T}
        if c_order:
            out["C"] = buffers[1][:n]
            np.copyto(out["C"], rows.T)
        return out

    def release(self) -> None:
        """Free the batch buffers."""
        self._buffers = {}


def _layout(estimator: Any) -> str:
    """The matrix layout an estimator gets: "F" where it gives the same results for either
    layout and copies (or reads as float32) anyway: xgboost, decision trees, our Keras net;
    "C" (as scikit-learn hands it over) for the rest, e.g. BLAS products of linear models,
    whose rounding may depend on the layout."""
    from sklearn.tree import BaseDecisionTree

    from ml.nets import KerasMLPClassifier, KerasMLPRegressor

    try:
        from xgboost import XGBModel
    except ImportError:  # pragma: no cover - xgboost is a dependency
        XGBModel = ()  # noqa: N806
    fast_layouts = (BaseDecisionTree, KerasMLPClassifier, KerasMLPRegressor, XGBModel)
    return "F" if isinstance(estimator, fast_layouts) else "C"


def _compiled_trees(estimator: Any) -> tuple[Any, str | None]:
    """`ml.trees.CompiledTrees` of an xgboost estimator and the method it stands in for, or
    (None, why not)."""
    try:
        from xgboost import XGBClassifier, XGBRegressor
    except ImportError:  # pragma: no cover - xgboost is a dependency
        return None, "xgboost is not installed"
    if type(estimator) not in (XGBClassifier, XGBRegressor):
        return None, None
    from ml.trees import CompiledTrees, Unsupported, warm_up

    try:
        compiled = CompiledTrees.of(estimator)
    except Unsupported as why:
        return None, str(why)
    warm_up()  # numba loads in the background; xgboost predicts until it is ready
    return compiled, None


class _Member:
    """A pipeline's final estimator, fed the matrix of its (shared) preprocessing.

    An xgboost estimator's trees are evaluated by `ml.trees.CompiledTrees` instead, from the
    first call after the kernel has loaded in the background (until then, e.g. for a small
    table, xgboost predicts: loading numba takes about a second), once that call has matched
    xgboost's own predictions (up to VERIFY_ROWS rows) bit for bit. Otherwise (or where the
    model is not one it reproduces) xgboost predicts, and `compiled_reason` says why.
    """

    def __init__(self, estimator: Any, prep: _Prep, name: str, timings: dict) -> None:
        self.estimator = estimator
        self.prep_key = prep.key
        self.layout = _layout(estimator)
        prep.needs_c |= self.layout == "C"
        self.name = name
        self.timings = timings
        self.compiled, self.compiled_reason = _compiled_trees(estimator)
        self.compiled_checked = False
        self.compiled_rows = 0  # rows the compiled trees predicted

    @property
    def classes_(self):
        return self.estimator.classes_

    def _compiled_method(self, method: str) -> Callable | None:
        if self.compiled is None:
            return None
        from ml.trees import kernel_error, kernel_ready

        if not kernel_ready():
            error = kernel_error()
            if error is not None:
                self.compiled, self.compiled_reason = None, f"kernel did not load: {error}"
            return None
        wanted = "predict_proba" if self.compiled.objective == "binary:logistic" else "predict"
        return getattr(self.compiled, method) if method == wanted else None

    def _call(self, method: str, matrices: dict[str, dict[str, np.ndarray]]):
        clock = _Clock()
        X = matrices[self.prep_key][self.layout]
        compiled = self._compiled_method(method)
        if compiled is None:
            result = getattr(self.estimator, method)(X)
        else:
            result = compiled(X)
            if not self.compiled_checked:
                self.compiled_checked = True
                head = X[:VERIFY_ROWS]
                reference = getattr(self.estimator, method)(head)
                if not (
                    result.dtype == reference.dtype
                    and np.array_equal(result[: len(head)], reference, equal_nan=True)
                ):
                    self.compiled = None
                    self.compiled_reason = "compiled trees differ from xgboost on the first rows"
                    result = getattr(self.estimator, method)(X)
            if self.compiled is not None:
                self.compiled_rows += len(X)
        _add_time(self.timings, self.name, clock.lap())
        return result

    def predict(self, matrices):
        return self._call("predict", matrices)

    def predict_proba(self, matrices):
        return self._call("predict_proba", matrices)

    def decision_function(self, matrices):
        return self._call("decision_function", matrices)


_ENSEMBLES = (VotingClassifier, VotingRegressor, StackingClassifier, StackingRegressor)


def _compile(
    estimator: Any, name: str, preps: dict[str, _Prep], timings: dict, members: list
) -> Any:
    """A stand-in for `estimator` that takes {preprocessing key: matrices} instead of a frame.

    Ensembles are shallow copies whose fitted members are replaced; everything else (voting
    weights, the stacking meta-learner, label encoders) is the fitted object's own. Each
    `_Member` made is appended to `members`.
    """
    if isinstance(estimator, FrozenEstimator):
        return _compile(estimator.estimator, name, preps, timings, members)
    if isinstance(estimator, Pipeline):
        _require(len(estimator.steps) == 2, f"pipeline {name!r} is not preprocessing + model")
        prep = _Prep(estimator.steps[0][1])
        prep = preps.setdefault(prep.key, prep)
        final = estimator.steps[1][1]
        _require(not isinstance(final, str), f"pipeline {name!r} has no model")
        members.append(_Member(final, prep, name, timings))
        return members[-1]
    if isinstance(estimator, _ENSEMBLES):
        _require(not getattr(estimator, "passthrough", False), "stacking passes the input through")
        names = [n for n, e in estimator.estimators if not (isinstance(e, str) and e == "drop")]
        _require(len(names) == len(estimator.estimators_), "ensemble members do not line up")
        stand_in = copy.copy(estimator)
        stand_in.estimators_ = [
            _compile(member, member_name, preps, timings, members)
            for member_name, member in zip(names, estimator.estimators_, strict=True)
        ]
        return stand_in
    raise _Unsupported(f"{type(estimator).__name__} is not a pipeline or a known ensemble")


# ---------------------------------------------------------------------------------------------
# batch scorer


def model_frame(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The model frame of `frame` as `TrainedModel.predict` makes it."""
    prepare = getattr(model, "prepare", None)
    if prepare is not None:
        return prepare(frame)[0].reset_index(drop=True)
    return model.validate(frame).reset_index(drop=True)


class BatchScorer:
    """Scores Arrow record batches with a `TrainedModel`, on the fast path when it can."""

    def __init__(self, model: TrainedModel, schema: pa.Schema, fast: bool = True) -> None:
        self.model = model
        self.schema = schema
        meta = model.metadata
        self.problem = meta["problem"]
        self.classes = meta["classes"]
        self.numeric_features = list(meta["numeric_features"])
        self.categorical_features = list(meta["categorical_features"])
        self.timings: dict[str, list[float]] = {}
        self.fallback_reason: str | None = None if fast else "fast path not requested"
        self.stand_in: Any = None
        self.preps: dict[str, _Prep] = {}
        self.members: list[_Member] = []
        self.verified = False
        if fast:
            try:
                self._compile()
            except _Unsupported as why:
                self.stand_in, self.preps, self.fallback_reason = None, {}, str(why)
                self.members = []

    def _compile(self) -> None:
        for col in self.numeric_features:
            kind = self.schema.field(col).type
            _require(any(t(kind) for t in _NUMERIC_ARROW), f"number column {col!r} is {kind}")
        for col in self.categorical_features:
            kind = self.schema.field(col).type
            if pa.types.is_dictionary(kind):
                kind = kind.value_type
            _require(any(t(kind) for t in _TEXT_ARROW), f"text column {col!r} is {kind}")
        preps: dict[str, _Prep] = {}
        members: list[_Member] = []
        self.stand_in = _compile(
            self.model.pipeline, self.model.model_name, preps, self.timings, members
        )
        self.members = members
        self.preps = preps
        for prep in preps.values():
            _require(set(prep.numeric) <= set(self.numeric_features), "reads other numbers")
            _require(set(prep.categorical) <= set(self.categorical_features), "reads other text")
            for block in prep.blocks:
                if isinstance(block, _CategoricalBlock):
                    block.convert = self._convert_categories
        self._check_numbers()

    def _check_numbers(self) -> None:
        """`prepare` must turn special numbers into what `_missing_numbers` says."""
        if not self.numeric_features:
            return
        n = len(_PROBE_NUMBERS)
        columns = {c: pa.array(_PROBE_NUMBERS) for c in self.numeric_features}
        for c in self.categorical_features:
            columns[c] = pa.array(["x"] * n)
        try:
            X = model_frame(self.model, pa.table(columns).to_pandas())
        except Exception as err:  # any surprise means: use the generic path
            raise _Unsupported(f"prepare refuses the number probe: {err}") from None
        expected = np.where(_missing_numbers(_PROBE_NUMBERS), np.nan, _PROBE_NUMBERS)
        for c in self.numeric_features:
            got = X[c].to_numpy(dtype=np.float64)
            _require(
                np.array_equal(got, expected, equal_nan=True),
                f"prepare converts special numbers of {c!r} differently",
            )

    def _convert_categories(self, values: dict[str, list]) -> pd.DataFrame:
        """The model frame of rows holding `values` (other columns empty), via `prepare`."""
        n = max(len(v) for v in values.values())
        columns = {}
        for col in self.model.features:
            kind = self.schema.field(col).type
            if col in values:
                columns[col] = pa.array(values[col], type=kind)
            else:
                columns[col] = pa.nulls(n, type=kind)
        return model_frame(self.model, pa.table(columns).to_pandas())

    def compiled_trees(self) -> dict[str, str]:
        """Per xgboost member of the fast path: "compiled" (the compiled trees predicted rows),
        "not used: ..." or why xgboost predicts itself."""
        if not self.fast:
            return {}
        out = {}
        for member in self.members:
            if member.compiled is not None:
                out[member.name] = (
                    "compiled"
                    if member.compiled_rows
                    else "not used: xgboost scored every row while numba was loading"
                )
            elif member.compiled_reason:
                out[member.name] = member.compiled_reason
        return out

    @property
    def fast(self) -> bool:
        """True while batches are scored on the fast path."""
        return self.stand_in is not None

    def release(self) -> None:
        """Free the buffers kept between batches."""
        for prep in self.preps.values():
            prep.release()

    # -- the two paths ------------------------------------------------------------------------

    def generic_values(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Predictions of a batch through pandas, `TrainedModel.prepare` and the pipeline."""
        X = model_frame(self.model, batch.to_pandas())
        clock = _Clock()
        values = predict_values(self.model.pipeline, X, self.problem, self.classes)
        _add_time(self.timings, self.model.model_name, clock.lap())
        return values

    def _arrow_inputs(self, batch: pa.RecordBatch | pa.Table) -> tuple[dict, dict]:
        numeric: dict[str, np.ndarray] = {}
        for col in self.numeric_features:
            arr = batch.column(col)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            # nulls become NaN; `_missing_numbers` decides what else is missing
            values = pc.cast(arr, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
            numeric[col] = values
        categorical: dict[str, tuple[list, np.ndarray]] = {}
        for col in self.categorical_features:
            arr = batch.column(col)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            if pa.types.is_dictionary(arr.type):
                arr = arr.dictionary_decode()
            if pa.types.is_string_view(arr.type):
                arr = arr.cast(pa.string())
            encoded = pc.dictionary_encode(arr)
            values = encoded.dictionary.to_pylist()
            codes = encoded.indices
            if codes.null_count:
                codes = pc.fill_null(codes, len(values))
                values.append(None)
            categorical[col] = (values, codes.to_numpy(zero_copy_only=False).astype(np.intp))
        return numeric, categorical

    def prepare(self, batch: pa.RecordBatch | pa.Table, slot: int = 0) -> dict:
        """The model matrices of a batch on the fast path, in buffer set `slot`."""
        n = batch.num_rows
        numeric, categorical = self._arrow_inputs(batch)
        return {
            key: prep.transform(numeric, categorical, n, slot, prep.needs_c)
            for key, prep in self.preps.items()
        }

    def predict_prepared(self, matrices: dict) -> np.ndarray:
        """Predictions from `prepare`'s matrices."""
        return predict_values(self.stand_in, matrices, self.problem, self.classes)

    def fast_values(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Predictions of a batch on the fast path."""
        return self.predict_prepared(self.prepare(batch))

    def verify(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Check the fast path against the generic one on the first rows; fall back if differing."""
        self.verified = True
        sample = batch.slice(0, min(VERIFY_ROWS, batch.num_rows))
        try:
            fast = self.fast_values(sample)
        except _Unsupported as why:
            self.fall_back(str(why))
            return
        reference = self.generic_values(sample)
        if fast.shape != reference.shape or not np.array_equal(fast, reference, equal_nan=True):
            diff = np.abs(np.asarray(fast, float) - np.asarray(reference, float))
            self.fall_back(
                "fast path differs from the pipeline on the first batch "
                f"(max |difference| {np.nanmax(diff) if diff.size else float('nan'):.3g})"
            )
        self.timings.clear()

    def fall_back(self, why: str) -> None:
        """Score from now on through the generic path, saying why."""
        self.stand_in, self.fallback_reason = None, why


# ---------------------------------------------------------------------------------------------
# output rows

#: Columns every output row of a run holds the same value in.
CONSTANT_COLUMNS = ("threshold", "run_id", "model_name", "scored_at")


@dataclass(frozen=True)
class OutputLayout:
    """The columns `TrainedModel.predict` returns, in order, with their DuckDB types."""

    id_column: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    class_columns: tuple[str, ...]  # probability_<class> (multiclass)

    @classmethod
    def of(cls, model: TrainedModel, id_type: str = "BIGINT") -> OutputLayout:
        """The layout of `model`'s predictions (`id_type`: the DuckDB type of the ids)."""
        meta = model.metadata
        empty = prediction_frame(
            None,
            pd.DataFrame(),
            pd.Series([], dtype="int64"),
            meta["id_column"],
            meta["problem"],
            meta["classes"],
            meta["class_labels"],
            meta["threshold"],
            model.run_id,
            model.model_name,
        )
        columns = tuple(empty.columns)
        prediction = {"regression": "DOUBLE", "binary": "BIGINT"}.get(meta["problem"], "VARCHAR")
        known = {
            meta["id_column"]: id_type,
            "prediction": prediction,
            "run_id": "VARCHAR",
            "model_name": "VARCHAR",
            "scored_at": "TIMESTAMP",
        }
        types = tuple(known.get(c, "DOUBLE") for c in columns)
        fixed = {meta["id_column"], "prediction", "probability", *CONSTANT_COLUMNS}
        return cls(meta["id_column"], columns, types, tuple(c for c in columns if c not in fixed))

    def ddl(self, relation_sql: str) -> str:
        """`create table` of an empty table with these columns."""
        body = ", ".join(
            f"{quote_ident(c)} {t}" for c, t in zip(self.columns, self.types, strict=True)
        )
        return f"create table {relation_sql} ({body})"


def _probabilities(values: np.ndarray, what: str, first_row: int) -> pa.Array:
    """Probabilities as Arrow, clipped to [0, 1]; a non-finite one is refused."""
    values = np.asarray(values, dtype=np.float64)
    _check_finite(values, what, first_row)
    return pa.array(np.clip(values, 0.0, 1.0))


def _check_finite(values: np.ndarray, what: str, first_row: int) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise UserError(
            f"the model produced {int(bad.sum()):,} non-finite {what} (first at input row "
            f"{first_row + int(np.flatnonzero(bad)[0]) + 1:,}); nothing was written"
        )


def _repeated_text(value: str, n: int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def output_batch(
    model: TrainedModel,
    layout: OutputLayout,
    ids: pa.Array,
    values: np.ndarray,
    scored_at: datetime,
    first_row: int = 0,
) -> pa.Table:
    """A batch's output rows as Arrow, as `TrainedModel.predict` computes them (`first_row`:
    the batch's position in the input, for error messages)."""
    meta = model.metadata
    problem, threshold = meta["problem"], meta["threshold"]
    n = len(ids)
    data: dict[str, pa.Array] = {layout.id_column: ids}
    if problem == "regression":
        values = np.asarray(values, dtype=np.float64)
        _check_finite(values, "predictions", first_row)
        data["prediction"] = pa.array(values)
        data["probability"] = pa.nulls(n, pa.float64())
    elif problem == "binary":
        values = np.asarray(values, dtype=np.float64)
        data["prediction"] = pa.array((values >= threshold).astype(np.int64))
        data["probability"] = _probabilities(values, "probabilities", first_row)
    else:
        labels = np.asarray(meta["class_labels"], dtype=object)
        pred = np.asarray(values, dtype=np.float64).reshape(n, len(meta["classes"]))
        data["prediction"] = pa.array(labels[pred.argmax(axis=1)].astype(str), type=pa.string())
        data["probability"] = _probabilities(pred.max(axis=1), "probabilities", first_row)
        for j, name in enumerate(layout.class_columns):
            data[name] = _probabilities(pred[:, j], "probabilities", first_row)
    data["threshold"] = (
        pa.nulls(n, pa.float64())
        if threshold is None or not np.isfinite(threshold)
        else pa.array(np.full(n, float(threshold)))
    )
    data["run_id"] = _repeated_text(model.run_id, n)
    data["model_name"] = _repeated_text(model.model_name, n)
    data["scored_at"] = pa.array(np.full(n, np.datetime64(scored_at, "us")))
    return pa.table({c: data[c] for c in layout.columns})


# ---------------------------------------------------------------------------------------------
# score_table


class _Writer(threading.Thread):
    """Appends output batches to the staged table in the background, in order.

    DuckDB releases the GIL while it inserts, so the next batch is scored meanwhile.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, staged: str) -> None:
        super().__init__(name="ml.scoring writer", daemon=True)
        self.con, self.staged = con, staged
        self.queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.aborted = False
        self.busy_s = self.busy_cpu_s = 0.0
        self.start()

    def run(self) -> None:
        while True:
            table = self.queue.get()
            if table is None:
                return
            if self.error is not None or self.aborted:
                continue
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                self.con.from_arrow(table).insert_into(self.staged)
            except BaseException as err:  # handed over to the scoring thread
                self.error = err
            self.busy_s += time.perf_counter() - wall
            self.busy_cpu_s += time.thread_time() - cpu

    def put(self, table: pa.Table) -> None:
        """Queue a batch (waits while two are queued); raise an earlier insert's error."""
        if self.error is not None:
            raise self.error
        self.queue.put(table)

    def close(self) -> None:
        """Wait for every queued batch; raise the first insert error."""
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def abort(self) -> None:
        """Drop what is queued and stop (the transaction is rolled back after)."""
        self.aborted = True
        self.queue.put(None)
        self.join()


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


class _Failed:
    """An exception raised in the prefetch thread, handed to the scoring thread."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Prefetcher:
    """Yields (batch, matrices or None, slot): the next batches read and, on the fast path,
    prepared in a background thread while the current one is predicted and written.

    Two buffer slots alternate: a slot is prepared again only after `release(slot)`.
    Without `background`, batches are read and prepared in the calling thread instead.
    """

    def __init__(self, reader, scorer: BatchScorer, first, background: bool) -> None:
        self.reader, self.scorer, self.first = reader, scorer, first
        self.busy = {"read": [0.0, 0.0], "prepare": [0.0, 0.0]}  # wall, thread CPU
        self.items: queue.Queue = queue.Queue(maxsize=1)
        self.free: queue.Queue = queue.Queue()
        for slot in (0, 1):
            self.free.put(slot)
        self.stopped = threading.Event()
        self.thread = None
        if background:
            self.thread = threading.Thread(target=self._run, name="ml.scoring reader", daemon=True)
            self.thread.start()

    def _timed(self, stage: str, func, *args):
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return func(*args)
        finally:
            self.busy[stage][0] += time.perf_counter() - wall
            self.busy[stage][1] += time.thread_time() - cpu

    def _batches(self):
        batch = self.first
        while batch is not None:
            if batch.num_rows:
                yield batch
            batch = self._timed("read", _next_batch, self.reader)

    def _prepared(self, batch, slot: int):
        scorer = self.scorer
        if not scorer.fast:
            return None
        try:
            return self._timed("prepare", scorer.prepare, batch, slot)
        except _Unsupported as why:  # score the rest on the generic path
            scorer.fall_back(str(why))
            return None

    def _put(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for batch in self._batches():
                slot = None
                while slot is None and not self.stopped.is_set():
                    try:
                        slot = self.free.get(timeout=0.1)
                    except queue.Empty:
                        continue
                if slot is None or not self._put((batch, self._prepared(batch, slot), slot)):
                    return
        except BaseException as err:  # handed to the scoring thread
            self._put(_Failed(err))
        finally:
            self._put(None)

    def __iter__(self):
        if self.thread is None:  # in the calling thread
            for batch in self._batches():
                yield batch, self._prepared(batch, 0), 0
            return
        while True:
            item = self.items.get()
            if item is None:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def release(self, slot: int) -> None:
        """The scoring thread is done with `slot`'s matrices."""
        if self.thread is not None:
            self.free.put(slot)

    def abort(self) -> None:
        """Stop reading ahead (after a failure in the scoring thread)."""
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()


def _setting_text(value: str) -> str:
    """A memory size such as `1GB` or `18.6 GiB`, checked before it goes into SQL."""
    text = str(value).strip()
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?\s*[A-Za-z]*", text):
        raise UserError(f"invalid memory limit {value!r}: use a size such as 1GB")
    return text


def _restore_memory_limit(con: duckdb.DuckDBPyConnection, previous: str) -> None:
    """Back to the limit shown before: the default exactly, another one as DuckDB showed it."""
    con.execute("reset memory_limit")
    if con.execute("select current_setting('memory_limit')").fetchall()[0][0] != previous:
        con.execute(f"set memory_limit = '{_setting_text(previous)}'")


def _source_columns(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    schema, table = parse_relation(relation)
    rows = con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_catalog = current_database() and table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [schema, table],
    ).fetchall()
    return {name: dtype for name, dtype in rows}


def _match(columns: list[str], wanted: str) -> str | None:
    """The source column for `wanted`: the same name, else the one equal ignoring case."""
    if wanted in columns:
        return wanted
    matches = [c for c in columns if c.strip().casefold() == wanted.strip().casefold()]
    return matches[0] if len(matches) == 1 else None


def score_table(
    con: duckdb.DuckDBPyConnection,
    model: TrainedModel,
    source_relation: str,
    target_relation: str,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    *,
    fast: bool = True,
    allow_empty: bool = False,
    background: bool = True,
    memory_limit: str | None = DEFAULT_MEMORY_LIMIT,
    progress: Progress | None = None,
    stats: ScoringStats | None = None,
) -> int:
    """Score every row of `source_relation` with `model` into `target_relation`; return the rows.

    The source is read in Arrow batches of at most `batch_rows` rows through a second cursor of
    `con`; the target is created under a temporary name, filled batch by batch and swapped in
    with one commit, so until then readers (and a failed or killed run) see the old table.

    `fast=False` scores on the generic path only. An empty source is refused like
    `TrainedModel.predict` refuses no rows, unless `allow_empty` (then the target is replaced by
    an empty table). With `background` (the default), the next batch is read and prepared in one
    background thread and the previous one inserted in another, while the current one is
    predicted (numpy, Arrow, DuckDB and the estimators release the GIL). `memory_limit` is
    DuckDB's memory limit while scoring (restored after; None: leave it), which bounds what
    DuckDB caches. `progress(rows_done)` is called after every batch; `stats`, if given, is
    filled in.
    """
    from ml.predict import NoRowsError

    if batch_rows < 1:
        raise UserError("batch_rows must be at least 1")
    started, cpu_started = time.perf_counter(), time.process_time()
    stats = stats if stats is not None else ScoringStats()
    src_schema, src_table = parse_relation(source_relation)
    out_schema, out_table = parse_relation(target_relation)
    if (src_schema.casefold(), src_table.casefold()) == (
        out_schema.casefold(),
        out_table.casefold(),
    ):
        raise UserError(f"cannot score {source_relation} into itself")
    if not relation_exists(con, source_relation):
        raise RelationNotFoundError(f"table {source_relation} does not exist in the warehouse")
    source_types = _source_columns(con, source_relation)
    names = list(source_types)
    id_column = model.metadata["id_column"]
    found = {c: _match(names, c) for c in model.features}
    missing = [c for c, have in found.items() if have is None]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingColumnError(f"input is missing column {missing[0]!r}{more}")
    id_source = _match(names, id_column)
    select = []
    for want, have in ([(id_column, id_source)] if id_source else []) + [
        (c, found[c]) for c in model.features if c != id_column
    ]:
        # DECIMAL arrives in Arrow as Python Decimals: read it as DOUBLE, as `.df()` does
        expr = quote_ident(have)
        if source_types[have].upper().startswith("DECIMAL"):
            expr = f"cast({expr} as double)"
        select.append(f"{expr} as {quote_ident(want)}")
    catalog = con.execute("select current_database()").fetchall()[0][0]
    source_sql = (
        f"select {', '.join(select)} from "
        f"{quote_ident(catalog)}.{quote_ident(src_schema)}.{quote_ident(src_table)}"
    )
    id_type = "BIGINT"
    if id_source:
        id_type = source_types[id_source]
        id_type = "DOUBLE" if id_type.upper().startswith("DECIMAL") else id_type
    layout = OutputLayout.of(model, id_type)
    scored_at = datetime.now(UTC).replace(tzinfo=None)
    staged_name = f"__tmp_{out_table}_{uuid.uuid4().hex[:8]}"
    staged = f"{quote_ident(out_schema)}.{quote_ident(staged_name)}"
    target = f"{quote_ident(out_schema)}.{quote_ident(out_table)}"

    previous_limit = None
    if memory_limit is not None:
        setting = _setting_text(memory_limit)
        previous_limit = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
        con.execute(f"set memory_limit = '{setting}'")
    # The reader is a second cursor: a streaming result on `con` itself would be cut off by the
    # inserts. Batches go in through the relation API, not con.register: a view registered and
    # dropped per batch stays referenced (with its Arrow data) while the reader's snapshot lives.
    reader_con = con.cursor()
    scorer: BatchScorer | None = None
    writer: _Writer | None = None
    feeder: _Prefetcher | None = None
    rows = 0
    try:
        reader = reader_con.sql(source_sql).to_arrow_reader(batch_rows)
        scorer = BatchScorer(model, reader.schema, fast=fast)
        con.execute("begin transaction")
        try:
            con.execute(f"create schema if not exists {quote_ident(out_schema)}")
            con.execute(layout.ddl(staged))
            clock = _Clock()
            # the first batch: checks the fast path before anything else is prepared with it
            first = _next_batch(reader)
            while first is not None and first.num_rows == 0:
                first = _next_batch(reader)
            stats.add("read", *clock.lap())
            if first is not None and scorer.fast:
                scorer.verify(first)
                stats.add("verify", *clock.lap())
            feeder = _Prefetcher(reader, scorer, first, background)
            writer = _Writer(con, staged) if background else None
            clock.lap()
            for batch, matrices, slot in feeder:
                stats.add("wait", *clock.lap())
                n = batch.num_rows
                if matrices is not None:
                    values = scorer.predict_prepared(matrices)
                else:
                    values = scorer.generic_values(batch)
                feeder.release(slot)
                wall, cpu = clock.lap()
                for name, (member_wall, member_cpu) in scorer.timings.items():
                    stats.estimator_s[name] = stats.estimator_s.get(name, 0.0) + member_wall
                    stats.add("predict", member_wall, member_cpu)
                    wall, cpu = wall - member_wall, cpu - member_cpu
                stats.add("prepare", wall, cpu)  # the generic path's pandas part
                scorer.timings.clear()
                if id_source:
                    ids = batch.column(id_column)
                else:
                    ids = pa.array(np.arange(rows + 1, rows + n + 1, dtype=np.int64))
                out = output_batch(model, layout, ids, values, scored_at, rows)
                if writer is None:
                    con.from_arrow(out).insert_into(staged)
                else:
                    writer.put(out)
                del out, values, batch, ids, matrices
                rows += n
                stats.batches += 1
                stats.add("write", *clock.lap())
                if progress is not None:
                    progress(rows)
                clock.lap()
            if writer is not None:
                writer.close()
                stats.writer_s, stats.writer_cpu_s = writer.busy_s, writer.busy_cpu_s
            for stage in ("read", "prepare"):
                stats.add(stage, *feeder.busy[stage])
                if feeder.thread is None:  # read and prepared while the scoring thread waited
                    stats.add("wait", *(-t for t in feeder.busy[stage]))
            if rows == 0 and not allow_empty:
                raise NoRowsError(f"no rows to score: {source_relation} is empty")
            con.execute(f"drop table if exists {target}")
            con.execute(f"alter table {staged} rename to {quote_ident(out_table)}")
            con.execute("commit")
            stats.add("write", *clock.lap())
        except BaseException:
            if feeder is not None:
                feeder.abort()
            if writer is not None and writer.is_alive():
                writer.abort()
            con.execute("rollback")
            raise
    finally:
        reader_con.close()
        if scorer is not None:
            scorer.release()
        if previous_limit is not None:
            _restore_memory_limit(con, previous_limit)
    stats.rows = rows
    stats.fast = bool(scorer and scorer.fast)
    stats.fallback_reason = scorer.fallback_reason if scorer else None
    stats.compiled_trees = scorer.compiled_trees() if scorer else {}
    stats.seconds = time.perf_counter() - started
    stats.cpu_s = time.process_time() - cpu_started
    return rows
