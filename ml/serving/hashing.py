"""A hash of each row's feature values: what `ml.score` compares to find the rows whose features
changed since they were scored.

The hash is over the model's input columns only (a column the model does not read may change
without a rescore), in name order, on canonical values: numbers as float64 (missing = NaN), text
as text (missing = one sentinel), times as microseconds. So the same values give the same hash
whichever engine or pandas dtype (nullable Int32, int64, float, str, object) they came in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: What a missing text value hashes as (not a value any column holds).
_MISSING_TEXT = "\x00<missing>"


def _canonical(series: pd.Series) -> pd.Series:
    types = pd.api.types
    if types.is_bool_dtype(series) or types.is_numeric_dtype(series):
        return pd.Series(pd.to_numeric(series, errors="coerce"), dtype="float64")
    if types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(series).dt.tz_localize(None) if series.dt.tz else series
        return pd.Series(stamps.astype("datetime64[us]").astype("int64"), dtype="float64").where(
            series.notna()
        )
    return series.astype("object").where(series.notna(), _MISSING_TEXT).map(str)


def feature_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """One 16-hex-digit text hash per row of `frame` over `columns` (see the module doc)."""
    names = sorted(columns)
    canonical = pd.DataFrame({name: _canonical(frame[name]).to_numpy() for name in names})
    canonical.columns = [f"c{i}" for i in range(len(names))]  # the hash does not read names
    # the column names are part of the hash: the same values under other names are other features
    salt = pd.util.hash_array(np.asarray(["\x1f".join(names)], dtype=object))[0]
    hashed = pd.util.hash_pandas_object(canonical, index=False).to_numpy() ^ np.uint64(salt)
    return np.char.mod("%016x", hashed.astype(np.uint64)).astype(object)
