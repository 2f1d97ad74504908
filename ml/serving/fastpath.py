"""The fast path of batch scoring: ml.train's pipelines fed matrices built straight from Arrow.

`BatchScorer` scores Arrow record batches with a `TrainedModel` in one of two ways that give the
same results:

- the generic path: the batch as pandas, the model's own preparation (`ml.serving.prepare`),
  then the fitted pipeline;
- the fast path, for the models ml.train makes (a Pipeline of our ColumnTransformer and an
  estimator, or Voting / Stacking ensembles of such pipelines): each distinct fitted
  preprocessing (`ml.serving.matrices.Preprocessing`) builds one matrix per batch, shared by the
  ensemble members that have it (the usual case: the same training rows), and each fitted
  estimator gets the matrix its pipeline would give it. xgboost members are evaluated by the
  compiled trees of `ml.serving.trees` once they have matched xgboost bit for bit.

The fast path checks itself: special numbers must come out of `prepare` as `missing_numbers`
says, and on the first batch its predictions of up to `VERIFY_ROWS` rows must equal the generic
path's exactly; otherwise the run scores on the generic path and `fallback_reason` says why.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.tree import BaseDecisionTree
from xgboost import XGBClassifier, XGBModel, XGBRegressor

from ml.estimators.nets import KerasMLPClassifier, KerasMLPRegressor
from ml.serving import trees
from ml.serving.matrices import (
    NUMERIC_ARROW,
    TEXT_ARROW,
    CategoricalBlock,
    Preprocessing,
    Unsupported,
    missing_numbers,
    require,
)
from ml.serving.model import TrainedModel
from ml.serving.output import predict_values

#: Rows of the first batch the fast path is checked on against the generic path.
VERIFY_ROWS = 2_048
#: Values the numeric conversion is checked on when a model is compiled.
_PROBE_NUMBERS = np.array(
    [0.0, 1.5, -2.25, np.nan, np.inf, -np.inf, 1e15, -1e15, 1.000001e15, -1e16, 1e300, 5e-324]
)


class Clock:
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


def _layout(estimator: Any) -> str:
    """The matrix layout an estimator gets: "F" where it gives the same results for either
    layout and copies (or reads as float32) anyway: xgboost, decision trees, our Keras net;
    "C" (as scikit-learn hands it over) for the rest, e.g. BLAS products of linear models,
    whose rounding may depend on the layout."""
    fast_layouts = (BaseDecisionTree, KerasMLPClassifier, KerasMLPRegressor, XGBModel)
    return "F" if isinstance(estimator, fast_layouts) else "C"


def _compiled_trees(estimator: Any) -> tuple[Any, str | None]:
    """`trees.CompiledTrees` of an xgboost estimator, or (None, why not)."""
    if type(estimator) not in (XGBClassifier, XGBRegressor):
        return None, None
    try:
        compiled = trees.CompiledTrees.of(estimator)
    except trees.Unsupported as why:
        return None, str(why)
    trees.warm_up()  # numba loads in the background; xgboost predicts until it is ready
    return compiled, None


class Member:
    """A pipeline's final estimator, fed the matrix of its (shared) preprocessing.

    An xgboost estimator's trees are evaluated by `ml.serving.trees.CompiledTrees` instead, from the
    first call after the kernel has loaded in the background (until then, e.g. for a small
    table, xgboost predicts: loading numba takes about a second), once that call has matched
    xgboost's own predictions (up to VERIFY_ROWS rows) bit for bit. Otherwise (or where the
    model is not one it reproduces) xgboost predicts, and `compiled_reason` says why.
    """

    def __init__(self, estimator: Any, prep: Preprocessing, name: str, timings: dict) -> None:
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
        if not trees.kernel_ready():
            error = trees.kernel_error()
            if error is not None:
                self.compiled, self.compiled_reason = None, f"kernel did not load: {error}"
            return None
        wanted = "predict_proba" if self.compiled.objective == "binary:logistic" else "predict"
        return getattr(self.compiled, method) if method == wanted else None

    def _call(self, method: str, matrices: dict[str, dict[str, np.ndarray]]):
        clock = Clock()
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
    estimator: Any, name: str, preps: dict[str, Preprocessing], timings: dict, members: list
) -> Any:
    """A stand-in for `estimator` that takes {preprocessing key: matrices} instead of a frame.

    Ensembles are shallow copies whose fitted members are replaced; everything else (voting
    weights, the stacking meta-learner, label encoders) is the fitted object's own. Each
    `Member` made is appended to `members`.
    """
    if isinstance(estimator, FrozenEstimator):
        return _compile(estimator.estimator, name, preps, timings, members)
    if isinstance(estimator, Pipeline):
        require(len(estimator.steps) == 2, f"pipeline {name!r} is not preprocessing + model")
        prep = Preprocessing(estimator.steps[0][1])
        prep = preps.setdefault(prep.key, prep)
        final = estimator.steps[1][1]
        require(not isinstance(final, str), f"pipeline {name!r} has no model")
        members.append(Member(final, prep, name, timings))
        return members[-1]
    if isinstance(estimator, _ENSEMBLES):
        require(not getattr(estimator, "passthrough", False), "stacking passes the input through")
        names = [n for n, e in estimator.estimators if not (isinstance(e, str) and e == "drop")]
        require(len(names) == len(estimator.estimators_), "ensemble members do not line up")
        stand_in = copy.copy(estimator)
        stand_in.estimators_ = [
            _compile(member, member_name, preps, timings, members)
            for member_name, member in zip(names, estimator.estimators_, strict=True)
        ]
        return stand_in
    raise Unsupported(f"{type(estimator).__name__} is not a pipeline or a known ensemble")


def model_frame(model: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The model frame of `frame` as `TrainedModel.predict` makes it."""
    return model.prepare(frame)[0].reset_index(drop=True)


class BatchScorer:
    """Scores Arrow record batches with a `TrainedModel`, on the fast path when it can."""

    def __init__(self, model: TrainedModel, schema: pa.Schema, fast: bool = True) -> None:
        self.model = model
        self.schema = schema
        self.problem = model.output.problem
        self.classes = model.output.classes
        self.numeric_features = list(model.contract.numeric)
        self.categorical_features = list(model.contract.categorical)
        self.timings: dict[str, list[float]] = {}
        self.fallback_reason: str | None = None if fast else "fast path not requested"
        self.stand_in: Any = None
        self.preps: dict[str, Preprocessing] = {}
        self.members: list[Member] = []
        self._fast = False
        if fast:
            try:
                self._compile()
                self._fast = True
            except Unsupported as why:
                self.stand_in, self.preps, self.fallback_reason = None, {}, str(why)
                self.members = []

    def _compile(self) -> None:
        for col in self.numeric_features:
            kind = self.schema.field(col).type
            require(any(t(kind) for t in NUMERIC_ARROW), f"number column {col!r} is {kind}")
        for col in self.categorical_features:
            kind = self.schema.field(col).type
            if pa.types.is_dictionary(kind):
                kind = kind.value_type
            require(any(t(kind) for t in TEXT_ARROW), f"text column {col!r} is {kind}")
        preps: dict[str, Preprocessing] = {}
        members: list[Member] = []
        self.stand_in = _compile(
            self.model.pipeline, self.model.model_name, preps, self.timings, members
        )
        self.members = members
        self.preps = preps
        for prep in preps.values():
            require(set(prep.numeric) <= set(self.numeric_features), "reads other numbers")
            require(set(prep.categorical) <= set(self.categorical_features), "reads other text")
            for block in prep.blocks:
                if isinstance(block, CategoricalBlock):
                    block.convert = self._convert_categories
        self._check_numbers()

    def _check_numbers(self) -> None:
        """`prepare` must turn special numbers into what `missing_numbers` says."""
        if not self.numeric_features:
            return
        n = len(_PROBE_NUMBERS)
        columns = {c: pa.array(_PROBE_NUMBERS) for c in self.numeric_features}
        for c in self.categorical_features:
            columns[c] = pa.array(["x"] * n)
        try:
            X = model_frame(self.model, pa.table(columns).to_pandas())
        except Exception as err:  # any surprise means: use the generic path
            raise Unsupported(f"prepare refuses the number probe: {err}") from None
        expected = np.where(missing_numbers(_PROBE_NUMBERS), np.nan, _PROBE_NUMBERS)
        for c in self.numeric_features:
            got = X[c].to_numpy(dtype=np.float64)
            require(
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
        return self._fast

    def release(self) -> None:
        """Free the buffers kept between batches."""
        for prep in self.preps.values():
            prep.release()

    # -- the two paths ------------------------------------------------------------------------

    def generic_values(self, batch: pa.RecordBatch | pa.Table) -> np.ndarray:
        """Predictions of a batch through pandas, `TrainedModel.prepare` and the pipeline."""
        X = model_frame(self.model, batch.to_pandas())
        clock = Clock()
        values = predict_values(self.model.pipeline, X, self.problem, self.classes)
        _add_time(self.timings, self.model.model_name, clock.lap())
        return values

    def _arrow_inputs(self, batch: pa.RecordBatch | pa.Table) -> tuple[dict, dict]:
        numeric: dict[str, np.ndarray] = {}
        for col in self.numeric_features:
            arr = batch.column(col)
            if isinstance(arr, pa.ChunkedArray):
                arr = arr.combine_chunks()
            # nulls become NaN; `missing_numbers` decides what else is missing
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
        sample = batch.slice(0, min(VERIFY_ROWS, batch.num_rows))
        try:
            fast = self.fast_values(sample)
        except Unsupported as why:
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
        """Score the batches not yet prepared through the generic path, saying why.

        The reader thread may call this while the scoring thread predicts a batch it prepared
        before: the stand-in stays, so that batch is still predicted from its matrices.
        """
        self._fast, self.fallback_reason = False, why
