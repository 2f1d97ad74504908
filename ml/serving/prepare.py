"""The one preparation step: rows to score -> the model frame the fitted pipeline takes.

`TrainedModel.predict`, `ml.predict` and batch scoring all go through `prepare`, driven by the
bundle's input contract, so a model scores the same rows the same way on every path:

- columns match by name (exactly, else ignoring case and surrounding blanks); a missing feature
  is refused, extra columns are ignored;
- numbers written as text are parsed (`1e3`, ` 42 `); text that is not a number becomes missing
  and is imputed when such values are a minority of the column, and the input is refused when
  they are the majority (the column holds text);
- infinities and numbers beyond +/-1e15 become missing: no real feature is that large and the
  models compute in float32;
- unseen categories are kept (the encoder scores them as infrequent) and reported;
- repeated or missing ids are kept and reported; without the id column rows are numbered 1..n.

What was adjusted comes back as notes (one short sentence each); refusals are `UserError`s.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from ml.core.errors import UserError
from ml.core.names import match_columns
from ml.core.tasks import ROW_NUMBER
from ml.core.text import plural, shown
from ml.estimators.preprocessing import (
    MAX_ABS_TEXT,
    MAX_ABS_VALUE,
    MISSING_TEXT,
    FeatureSet,
    finite_numbers,
    number_or_nan,
    plain_types,
    to_model_frame,
)
from ml.serving.bundle import InputContract

#: A numeric feature is refused when more than this share of its non-empty values are not numbers.
MAX_UNPARSEABLE_SHARE = 0.5
_YES = {"y", "yes", "true", "t", "1"}
_NO = {"n", "no", "false", "f", "0"}


class MissingColumnError(UserError):
    """The input lacks a column the model needs."""


class NoRowsError(UserError):
    """The input has no rows to score."""


def _as_frame(frame: Any) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    try:
        return pd.DataFrame(frame)
    except (TypeError, ValueError) as err:
        raise UserError(f"cannot score {type(frame).__name__}: expected a table of rows") from err


def _present(series: pd.Series) -> pd.Series:
    """True where a value is given: not null and not a missing marker (`NA`, `null`, blank...)."""
    given = series.notna()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        text = series.map(lambda v: v.strip().casefold() if isinstance(v, str) else None)
        given &= ~text.isin(MISSING_TEXT)
    return given


def _as_datetimes(series: pd.Series) -> pd.Series:
    """Dates and date-times as naive UTC timestamps; anything else NaT."""
    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series
    usable = series.map(lambda v: isinstance(v, str | dt.date | pd.Timestamp))
    values = series.where(usable & _present(series), None).astype(object)
    try:
        parsed = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    except (TypeError, ValueError, OverflowError):
        parsed = pd.Series(
            [_one_datetime(v) for v in values], index=series.index, dtype="datetime64[ns, UTC]"
        )
    return parsed.dt.tz_localize(None)


def _one_datetime(value: Any) -> pd.Timestamp:
    try:
        return pd.to_datetime(value, errors="coerce", utc=True)
    except (TypeError, ValueError, OverflowError):
        return pd.NaT


def _yes_no(value: Any) -> Any:
    if isinstance(value, str):
        word = value.strip().casefold()
        if word in _YES:
            return 1.0
        if word in _NO:
            return 0.0
    return value


def _raw_numbers(series: pd.Series, kind: str) -> pd.Series:
    """The column as float64 with infinities kept (NaN where a value is missing or no number)."""
    if kind == "datetime":
        series = _as_datetimes(series)
        days = (series - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86_400.0
        return days.astype("float64")
    if kind == "bool" and not pd.api.types.is_numeric_dtype(series):
        series = series.map(_yes_no)
    if pd.api.types.is_bool_dtype(series) and series.dtype != object:
        return series.astype("float64")
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series):
        return pd.to_numeric(series, errors="coerce").astype("float64")
    return series.astype(object).map(number_or_nan).astype("float64")


def _category_text(value: Any, known: set[str]) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    # a code column read as numbers with gaps arrives as floats: 3.0 means the category "3"
    if (
        isinstance(value, float | np.floating)
        and text not in known
        and float(value).is_integer()
        and abs(value) < 2**53
    ):
        return str(int(value))
    return text


def _ids(series: pd.Series) -> pd.Series:
    """Ids as given; whole numbers that arrived as floats (a column with gaps) as integers."""
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        if (
            len(values)
            and np.isfinite(values).all()
            and (values == np.round(values)).all()
            and (values.abs() < 2**53).all()
        ):
            return series.astype("Int64")
    return series


def _kind(contract: InputContract, column: str) -> str:
    dtype = str(contract.dtypes.get(column, ""))
    if dtype.startswith("datetime"):
        return "datetime"
    if dtype in ("bool", "boolean"):
        return "bool"
    return "number"


def prepare(contract: InputContract, frame: Any) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """(model frame, ids, notes) of `frame`: columns matched, types coerced, extras dropped.

    Raises `UserError` for a missing column, no rows, or a numeric column of mostly text;
    `notes` says what was adjusted (values made missing, unseen categories, repeated ids).
    """
    frame = _as_frame(frame)
    if len(frame) == 0:
        raise NoRowsError("no rows to score: the input has no rows")
    id_column = contract.id_column
    found = match_columns(list(frame.columns), [*contract.features, id_column])
    missing = [c for c in contract.features if c not in found]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise MissingColumnError(f"input is missing column {missing[0]!r}{more}")
    work = pd.DataFrame({want: frame[have].reset_index(drop=True) for want, have in found.items()})
    work = plain_types(work)
    notes: list[str] = []
    for col in contract.numeric:
        work[col] = _numeric(contract, work[col], col, notes)
    for col in contract.categorical:
        work[col] = _categorical(contract, work[col], col, notes)
    if id_column in found:
        ids = _ids(work[id_column]).rename(id_column)
        _check_ids(ids, notes)
    else:
        ids = pd.Series(np.arange(1, len(work) + 1), name=id_column)
        if id_column not in (ROW_NUMBER, f"__{ROW_NUMBER}"):  # trained with real ids
            notes.append(f"no {id_column!r} column: rows are numbered 1 to {len(work):,}")
    features = FeatureSet(contract.numeric, contract.categorical, {})
    return to_model_frame(work, features), ids.reset_index(drop=True), notes


def _numeric(contract: InputContract, series: pd.Series, col: str, notes: list[str]) -> pd.Series:
    present = _present(series)
    raw = _raw_numbers(series, _kind(contract, col))
    bad = present & raw.isna()
    n_present, n_bad = int(present.sum()), int(bad.sum())
    if n_bad and n_bad > MAX_UNPARSEABLE_SHARE * n_present:
        what = "dates" if _kind(contract, col) == "datetime" else "numbers"
        raise UserError(
            f"column {col!r} should hold {what} but {n_bad:,} of {n_present:,} values are "
            f"not {what}, such as {shown(series[bad].iloc[0])}"
            + (
                " (write plain numbers: a decimal point, no thousands separators or units)"
                if what == "numbers"
                else ""
            )
        )
    if n_present == 0:
        notes.append(f"{col}: no values (imputed in every row)")
    elif n_bad:
        notes.append(
            f"{col}: {plural(n_bad, 'value')} that {'is' if n_bad == 1 else 'are'} not "
            f"a number (e.g. {shown(series[bad].iloc[0])}) treated as missing"
        )
    extreme = raw.notna() & ~(np.isfinite(raw) & (raw.abs() <= MAX_ABS_VALUE))
    if extreme.any():
        notes.append(
            f"{col}: {plural(int(extreme.sum()), 'value')} infinite or beyond "
            f"+/-{MAX_ABS_TEXT} treated as missing"
        )
    return finite_numbers(raw)


def _categorical(
    contract: InputContract, series: pd.Series, col: str, notes: list[str]
) -> pd.Series:
    known_list = contract.categories.get(col) or []
    known = set(known_list)
    text = series.astype(object).map(lambda v: _category_text(v, known)).astype(object)
    if 0 < len(known_list) < contract.MAX_CATEGORIES:  # the full list of training categories
        unseen = text.notna() & ~text.isin(known)
        if unseen.any():
            notes.append(
                f"{col}: {plural(int(unseen.sum()), 'value')} not seen in training "
                f"(e.g. {shown(text[unseen].iloc[0])}) scored as an infrequent category"
            )
    return text


def _check_ids(ids: pd.Series, notes: list[str]) -> None:
    absent = int(ids.isna().sum())
    if absent:
        notes.append(f"{plural(absent, 'row')} without an id (scored; the id is left empty)")
    try:
        repeated = ids[ids.notna() & ids.duplicated(keep=False)]
    except TypeError:  # unhashable ids were made text by plain_types; be safe anyway
        return
    if len(repeated):
        notes.append(
            f"{plural(n_ids := repeated.nunique(), 'id')} "
            f"appear{'s' if n_ids == 1 else ''} more than once "
            f"(e.g. {shown(repeated.iloc[0])}): every row is scored"
        )
