"""The feature hash ml.score compares: the same values hash the same whatever their types."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.serving.hashing import feature_hashes


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": pd.array([31, None, 45], dtype="Int32"),
            "income": [52_000.0, np.nan, 61_500.5],
            "region": pd.Series(["north", None, "west"], dtype="str"),
            "applied_at": pd.to_datetime(["2025-01-02 03:04:05", None, "2025-12-31 00:00:00"]),
        }
    )


def test_the_same_values_hash_the_same_whatever_the_dtypes_and_column_order() -> None:
    a = _frame()
    b = pd.DataFrame(
        {
            "region": pd.Series(["north", None, "west"], dtype=object),
            "income": pd.array([52_000.0, None, 61_500.5], dtype="Float64"),
            "applied_at": a["applied_at"].astype("datetime64[ns]"),
            "age": [31.0, np.nan, 45.0],
        }
    )
    columns = ["age", "income", "region", "applied_at"]
    assert list(feature_hashes(a, columns)) == list(feature_hashes(b, columns[::-1]))
    assert all(isinstance(h, str) and len(h) == 16 for h in feature_hashes(a, columns))


def test_any_change_of_a_hashed_value_changes_the_hash_and_other_columns_do_not() -> None:
    a = _frame()
    before = feature_hashes(a, ["age", "income", "region"])
    for column, value in (("age", 32), ("income", 52_000.01), ("region", "south")):
        b = a.copy()
        b.loc[0, column] = value
        after = feature_hashes(b, ["age", "income", "region"])
        assert after[0] != before[0], column
        assert list(after[1:]) == list(before[1:])
    b = a.copy()
    b.loc[0, "applied_at"] = pd.Timestamp("2020-01-01")  # not a hashed column
    assert list(feature_hashes(b, ["age", "income", "region"])) == list(before)


def test_missing_is_not_a_value_and_names_matter() -> None:
    a = pd.DataFrame({"x": [0.0, np.nan], "s": pd.Series(["", None], dtype="str")})
    x, s = feature_hashes(a, ["x"]), feature_hashes(a, ["s"])
    assert x[0] != x[1] and s[0] != s[1]
    renamed = a.rename(columns={"x": "y"})
    assert list(feature_hashes(renamed, ["y"])) != list(x)
