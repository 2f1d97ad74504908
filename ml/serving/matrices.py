"""Model matrices straight from Arrow: the fitted preprocessing of ml.train's pipelines, reproduced.

The pipelines ml.train makes start with one fitted `ColumnTransformer` (`ml.estimators.
preprocessing`): numeric columns median-imputed with missing-value indicators, then scaled;
text columns given a missing level, then one-hot encoded. For big tables, going through pandas
costs far more than the model. `Preprocessing` builds the same float64 matrix from Arrow columns:

- numbers: element by element the float64 operations scikit-learn applies (missing -> the
  fitted statistic, then `- mean_`, then `/ scale_`), so the values are identical;
- text: each column is dictionary-encoded by Arrow, only its distinct values go through the
  model's own preparation (`ml.serving.prepare`) and the fitted encoder (cached across batches),
  and their rows are gathered by code.

Only public scikit-learn attributes are read (`statistics_`, `indicator_.features_`, `mean_`,
`scale_`, `categories_`, `infrequent_categories_`, `drop_idx_`, `transformers_`), and what
cannot be read that way is checked by calling the fitted objects: the one-hot widths must add up
to `get_feature_names_out()`, and the transformer must return a NumPy array. A model with any
other part raises `Unsupported`, and batch scoring uses the pipeline itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from ml.estimators.preprocessing import MAX_ABS_VALUE, fill_missing_category

#: Distinct values of a categorical column whose one-hot rows are kept between batches.
MAX_CACHED_CATEGORIES = 100_000


class Unsupported(Exception):
    """The model has a part the fast path does not reproduce: use the generic path."""


def require(condition: bool, why: str) -> None:
    """Raise `Unsupported(why)` unless `condition`."""
    if not condition:
        raise Unsupported(why)


NUMERIC_ARROW = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_null)
TEXT_ARROW = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)


def missing_numbers(values: np.ndarray) -> np.ndarray:
    """Where a float64 column is missing to the models: NaN, infinite or beyond MAX_ABS_VALUE."""
    with np.errstate(invalid="ignore"):
        return ~(np.abs(values) <= MAX_ABS_VALUE)


def one_hot_widths(encoder: OneHotEncoder) -> list[int]:
    """Output columns per input column of a fitted one-hot encoder, from its public attributes
    (categories, infrequent categories, dropped category), checked against its feature names."""
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(
        encoder.categories_
    )
    drop = getattr(encoder, "drop_idx_", None)
    widths = []
    for j, categories in enumerate(encoder.categories_):
        width = len(categories)
        if infrequent[j] is not None:
            width -= len(infrequent[j]) - 1  # the infrequent ones share one column
        if drop is not None and drop[j] is not None:
            width -= 1
        widths.append(width)
    require(sum(widths) == len(encoder.get_feature_names_out()), "unknown one-hot layout")
    return widths


class NumericBlock:
    """SimpleImputer(median, add_indicator) + StandardScaler over float64 columns."""

    def __init__(self, pipe: Pipeline, columns: list[str]) -> None:
        require(isinstance(pipe, Pipeline) and len(pipe.steps) == 2, "numeric part has 2 steps")
        imputer, scaler = pipe.steps[0][1], pipe.steps[1][1]
        require(type(imputer) is SimpleImputer, "numeric imputer is not a SimpleImputer")
        require(type(scaler) is StandardScaler, "numeric scaler is not a StandardScaler")
        missing = imputer.missing_values
        require(isinstance(missing, float) and np.isnan(missing), "imputer missing_values != NaN")
        require(not imputer.keep_empty_features, "imputer keeps empty features")
        self.columns = list(columns)
        self.stats = np.asarray(imputer.statistics_, dtype=np.float64)
        self.valid = np.flatnonzero(~np.isnan(self.stats))  # the columns SimpleImputer keeps
        if imputer.add_indicator:
            indicator = getattr(imputer, "indicator_", None)
            require(indicator is not None, "imputer has no fitted indicator")
            require(indicator.features == "missing-only", "indicator over all features")
            require(not indicator.error_on_new, "indicator errors on new missing features")
            self.indicator = np.asarray(indicator.features_, dtype=int)
        else:
            self.indicator = np.zeros(0, dtype=int)
        self.width = len(self.valid) + len(self.indicator)
        require(scaler.n_features_in_ == self.width, "scaler width != imputer output width")
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
            missing = missing_numbers(row)
            masks[j] = missing
            if missing.any():
                row[missing] = self.stats[j]
        n_valid = len(self.valid)
        for k, j in enumerate(self.indicator):
            mask = masks.get(j)
            rows[n_valid + k] = (
                mask if mask is not None else missing_numbers(numeric[self.columns[j]])
            )
        for k in range(self.width):
            row = rows[k]
            if self.mean is not None:
                np.subtract(row, self.mean[k], out=row)
            if self.scale is not None:
                np.divide(row, self.scale[k], out=row)


#: (column -> distinct raw values) -> the model frame of those values (TrainedModel.prepare).
Converter = Callable[[dict[str, list]], pd.DataFrame]


class CategoricalBlock:
    """Missing-category fill + OneHotEncoder, applied to each distinct value once."""

    def __init__(self, pipe: Pipeline, columns: list[str]) -> None:
        require(isinstance(pipe, Pipeline) and len(pipe.steps) == 2, "text part has 2 steps")
        fill, encoder = pipe.steps[0][1], pipe.steps[1][1]
        require(
            type(fill) is FunctionTransformer
            and fill.func is fill_missing_category
            and not fill.kw_args
            and not fill.validate,
            "text fill is not the missing-category fill of ml.estimators.preprocessing",
        )
        require(type(encoder) is OneHotEncoder, "text encoder is not a OneHotEncoder")
        require(not encoder.sparse_output, "one-hot encoder has sparse output")
        n_outs = one_hot_widths(encoder)
        require(len(n_outs) == len(columns), "unknown one-hot layout")
        self.pipe = pipe
        self.encoder = encoder
        self.columns = list(columns)
        self.n_outs = [int(n) for n in n_outs]
        self.offsets = np.concatenate([[0], np.cumsum(self.n_outs)]).astype(int)
        self.width = int(self.offsets[-1])
        self.convert: Converter | None = None  # set by the batch scorer
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
        require(table.shape == (longest, self.width), "one-hot output has an unexpected shape")
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


def _check_output(
    ct: ColumnTransformer, numeric: list[str], categorical: list[str], width: int
) -> None:
    """The fitted transformer must hand its estimator a dense float NumPy matrix `width` wide
    (not a DataFrame, as `set_output(transform="pandas")` would): checked on one empty row."""
    probe = pd.DataFrame({**{c: [np.nan] for c in numeric}, **{c: [None] for c in categorical}})
    try:
        out = ct.transform(probe.astype({c: object for c in categorical}))
    except Exception as err:  # any surprise: leave this model to its own pipeline
        raise Unsupported(f"preprocessing refuses an empty row: {err}") from None
    require(type(out) is np.ndarray, f"preprocessing returns {type(out).__name__}")
    require(out.shape == (1, width), "preprocessing output has an unexpected width")


class Preprocessing:
    """A fitted ColumnTransformer ([numeric, text], remainder dropped, dense) reproduced."""

    def __init__(self, ct: ColumnTransformer) -> None:
        require(type(ct) is ColumnTransformer, "preprocessing is not a ColumnTransformer")
        require(not ct.sparse_output_, "preprocessing has sparse output")
        self.blocks: list[NumericBlock | CategoricalBlock] = []
        for name, transformer, columns in ct.transformers_:
            if isinstance(transformer, str):
                require(transformer == "drop", f"transformer {name!r} is {transformer!r}")
                continue
            columns = list(columns)
            require(all(isinstance(c, str) for c in columns), "columns not selected by name")
            steps = getattr(transformer, "steps", None) or [(None, None)]
            if type(steps[0][1]) is SimpleImputer:
                self.blocks.append(NumericBlock(transformer, columns))
            else:
                self.blocks.append(CategoricalBlock(transformer, columns))
        self.width = sum(b.width for b in self.blocks)
        self.numeric = [c for b in self.blocks if isinstance(b, NumericBlock) for c in b.columns]
        self.categorical = [
            c for b in self.blocks if isinstance(b, CategoricalBlock) for c in b.columns
        ]
        self.key = hashlib.sha256(b"||".join(b.key() for b in self.blocks)).hexdigest()
        _check_output(ct, self.numeric, self.categorical, self.width)
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
            if isinstance(block, NumericBlock):
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
