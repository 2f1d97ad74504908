"""Preprocessing: which columns are features and how they become numbers.

Everything here is fitted inside a scikit-learn Pipeline, so cross-validation fits it on the
training folds only. Numeric columns: median imputation with missing-value indicators, then
standard scaling. Categorical columns: constant imputation, then one-hot encoding in which unseen
and rare categories share an "infrequent" column, so new data never breaks scoring; a column of
more than MAX_ONEHOT_COLUMNS levels is target-encoded instead, cross-fitted (unseen levels get the
target's mean).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    StandardScaler,
    TargetEncoder,
)

from ml.core.errors import UserError

#: A text column with more distinct values than this (and mostly unique) is an identifier or
#: free text, not a category: it is left out of the features.
MAX_CATEGORY_LEVELS = 200
#: One-hot columns per categorical feature at most. A categorical feature with more levels than
#: this is target-encoded instead (scikit-learn's TargetEncoder, cross-fitted: each training row's
#: encoding is learnt on the other folds, so the model cannot read its own label through it).
MAX_ONEHOT_COLUMNS = 30
#: Folds of the target encoder's cross-fitting.
TARGET_ENCODER_FOLDS = 5
MISSING_CATEGORY = "__missing__"
#: Numbers beyond +/- this (and infinities) are treated as missing. No real feature is that large,
#: and the models compute in float32 (xgboost, Keras), where a scaled 1e308 overflows to inf.
MAX_ABS_VALUE = 1e15
MAX_ABS_TEXT = "1e15"
#: Text that means "missing" in a numeric or id column (compared trimmed, case-insensitively);
#: the same markers scripts.load_csv turns into NULL, plus Python's `None`.
MISSING_TEXT = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "none", "<na>", "nat"})


@dataclass(frozen=True)
class FeatureSet:
    """The feature columns of a task, split by how they are encoded, and what was left out."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    dropped: dict[str, str]  # column -> why it is not a feature
    #: the categorical columns with more than MAX_ONEHOT_COLUMNS levels (target-encoded)
    target_encoded: tuple[str, ...] = ()

    @property
    def columns(self) -> list[str]:
        """All feature columns, numeric first."""
        return [*self.numeric, *self.categorical]


def select_features(
    frame: pd.DataFrame,
    exclude: set[str] | frozenset[str] = frozenset(),
    features: list[str] | tuple[str, ...] | None = None,
) -> FeatureSet:
    """Split `features` (default: every column not in `exclude`) into numeric and categorical.

    Booleans count as numeric, datetimes become numeric (days since 1970) in `to_model_frame`,
    text columns are categorical unless they look like identifiers or free text.
    """
    if features is not None:
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise UserError(f"feature column {missing[0]!r} is not in the data")
        candidates = list(features)
    else:
        candidates = [c for c in frame.columns if c not in exclude]
    numeric: list[str] = []
    categorical: list[str] = []
    many_levels: list[str] = []
    dropped: dict[str, str] = {}
    n = max(len(frame), 1)
    for col in candidates:
        series = frame[col]
        if series.isna().all():
            dropped[col] = "entirely missing"
        elif _is_numeric_like(series):
            if not finite_numbers(series).notna().any():
                dropped[col] = f"no finite values within +/-{MAX_ABS_TEXT}"
            else:
                numeric.append(col)
        else:
            try:
                levels = series.nunique(dropna=True)
            except TypeError:  # lists, dicts: not hashable, not a feature
                dropped[col] = "values that are lists or structs"
                continue
            if levels > MAX_CATEGORY_LEVELS and levels > 0.5 * n:
                dropped[col] = f"text with {levels} distinct values (an identifier or free text)"
            elif levels <= 1:
                dropped[col] = "a single value"
            else:
                categorical.append(col)
                if levels > MAX_ONEHOT_COLUMNS:
                    many_levels.append(col)
    if not numeric and not categorical:
        raise UserError("no usable feature columns: every candidate column was left out")
    return FeatureSet(tuple(numeric), tuple(categorical), dropped, tuple(many_levels))


def _is_numeric_like(series: pd.Series) -> bool:
    types = pd.api.types
    return (
        types.is_bool_dtype(series)
        or (types.is_numeric_dtype(series) and not types.is_complex_dtype(series))
        or types.is_datetime64_any_dtype(series)
    )


def plain_types(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the column types models take: durations as days, nested values and other
    objects (lists, structs, bytes, UUIDs, times) as text. Plain columns are left alone."""
    out = {}
    changed = False
    for col in frame.columns:
        series = frame[col]
        if pd.api.types.is_timedelta64_dtype(series):
            out[col] = series.dt.total_seconds() / 86_400.0
            changed = True
        elif series.dtype == object and series.map(_is_exotic).any():
            out[col] = series.map(_as_text)
            changed = True
        else:
            out[col] = series
    if not changed:
        return frame
    result = pd.DataFrame(out, index=frame.index)
    result.columns = frame.columns
    return result


_PLAIN = (str, bool, int, float, np.number, np.bool_, decimal.Decimal, dt.date, pd.Timestamp)


def _is_exotic(value: Any) -> bool:
    return (
        value is not None
        and value is not pd.NA
        and value is not pd.NaT
        and not isinstance(value, _PLAIN)
    )


def _as_text(value: Any) -> Any:
    if not _is_exotic(value):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return str(value)


_NUMBER_TEXT = re.compile(
    r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|infinity)", re.I
)


def number_or_nan(value: Any) -> float:
    """One value as a float; NaN when it is missing or not a number.

    Text is parsed strictly: ASCII digits with an optional sign, decimal point and exponent, or
    `inf`/`infinity`; thousands separators, decimal commas, currency signs and `1_000` are not
    numbers.
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return np.nan
    if isinstance(value, str):
        text = value.strip()
        return float(text) if _NUMBER_TEXT.fullmatch(text) else np.nan
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | np.integer | decimal.Decimal):
        try:
            return float(value)
        except OverflowError:  # an int beyond the double range
            return np.inf if value > 0 else -np.inf
    if isinstance(value, float | np.floating):
        return float(value)
    return np.nan


def finite_numbers(series: pd.Series) -> pd.Series:
    """A numeric-like column as float64, with NaN for infinities and |x| > MAX_ABS_VALUE.

    Booleans are 0/1, datetimes days since 1970 (time zones converted to UTC).
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        days = (series - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86_400.0
        values = days.astype("float64")
    elif pd.api.types.is_bool_dtype(series) and series.dtype != object:
        values = series.astype("float64")
    elif pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series):
        values = pd.to_numeric(series, errors="coerce").astype("float64")
    else:
        values = series.map(number_or_nan).astype("float64")
    return values.where(np.isfinite(values) & (values.abs() <= MAX_ABS_VALUE))


def to_model_frame(frame: pd.DataFrame, features: FeatureSet) -> pd.DataFrame:
    """The feature columns with types the preprocessor accepts: numbers as float, text as object.

    Datetimes become days since 1970; booleans 0/1; infinities and numbers beyond
    +/-MAX_ABS_VALUE become missing (imputed), so the models never see them; text keeps None for
    missing values (pandas 3 `str` columns are converted to object so scikit-learn's imputers see
    plain Python strings).
    """
    out = {}
    for col in features.numeric:
        out[col] = finite_numbers(frame[col])
    for col in features.categorical:
        series = frame[col]
        text = series.astype("object").where(series.notna(), None)
        out[col] = text.map(lambda v: v if v is None else str(v))
    return pd.DataFrame(out, index=frame.index)[features.columns]


def build_preprocessor(
    features: FeatureSet, *, regression: bool = False, seed: int = 0
) -> ColumnTransformer:
    """The ColumnTransformer for a feature set (unfitted): "num" (median imputation with missing
    indicators, scaling), "cat" (one-hot) and "te" (cross-fitted target encoding of the
    categorical columns with many levels: the mean target, or each class's share; `seed`
    shuffles its folds)."""
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True)),
            ("scale", StandardScaler()),
        ]
    )
    categorical = Pipeline(
        [
            (
                "as_text",
                FunctionTransformer(fill_missing_category, feature_names_out="one-to-one"),
            ),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=MAX_ONEHOT_COLUMNS,
                    min_frequency=5,
                    sparse_output=False,
                ),
            ),
        ]
    )
    encoded = Pipeline(
        [
            (
                "as_text",
                FunctionTransformer(fill_missing_category, feature_names_out="one-to-one"),
            ),
            (
                "target",
                TargetEncoder(
                    target_type="continuous" if regression else "auto",
                    # plain K-fold: stratified folds need 5 rows of every class, which the
                    # tuning folds of a small multiclass table do not always have
                    cv=KFold(TARGET_ENCODER_FOLDS, shuffle=True, random_state=seed),
                ),
            ),
        ]
    )
    one_hot = [c for c in features.categorical if c not in features.target_encoded]
    transformers = []
    if features.numeric:
        transformers.append(("num", numeric, list(features.numeric)))
    if one_hot:
        transformers.append(("cat", categorical, one_hot))
    if features.target_encoded:
        transformers.append(("te", encoded, list(features.target_encoded)))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)


def fill_missing_category(frame: pd.DataFrame) -> pd.DataFrame:
    """Missing categories become their own level (kept as a module function so it pickles)."""
    return pd.DataFrame(frame).astype("object").where(pd.DataFrame(frame).notna(), MISSING_CATEGORY)


def source_column(transformed_name: str, features: FeatureSet) -> str:
    """The relation column a transformed feature comes from (`cat__gender_female` -> `gender`).

    One-hot parts and missing-value indicators fold back into their source column.
    """
    _, _, name = transformed_name.partition("__")
    if name.startswith("missingindicator_"):
        name = name[len("missingindicator_") :]
    if name in features.numeric or name in features.categorical:
        return name
    # one-hot: "<column>_<category>"; the longest matching column name wins
    matches = [c for c in features.categorical if name.startswith(f"{c}_")]
    if matches:
        return max(matches, key=len)
    return name
