"""Reading for the reports: one parameterised query, columns checked by name, seeded samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ml.reports.reading import (
    as_bool,
    json_value,
    missing_columns,
    open_read_only,
    sample_positions,
    select,
)
from tests.ml.reports.synthetic import write


def test_select_filters_orders_and_limits(tmp_path: Path) -> None:
    frame = pd.DataFrame({"task": ["a", "b", "a", "a"], "n": [3, 1, 2, 1], "x": [0.1] * 4})
    path = write(tmp_path / "w.duckdb", {"ml.t": frame})
    with open_read_only(path) as wh:
        got = select(wh, "ml.t", where={"task": "a"}, columns=["n"], order_by="n")
        assert got["n"].tolist() == [1, 2, 3]
        assert select(wh, "ml.t", order_by=["task", "n"], limit=2)["task"].tolist() == ["a", "a"]
        assert select(wh, "ml.t", where={"task": "it's; drop"}).empty  # a parameter, not SQL
        assert missing_columns(wh, "ml.t", ["TASK", "n", "absent"]) == ["absent"]


def test_sample_positions_are_bounded_sorted_and_seeded() -> None:
    assert sample_positions(5, 10, 0).tolist() == [0, 1, 2, 3, 4]
    a = sample_positions(1000, 50, 1)
    assert len(a) == 50 and len(set(a)) == 50 and (np.diff(a) > 0).all()
    assert (a == sample_positions(1000, 50, 1)).all()
    assert not (a == sample_positions(1000, 50, 2)).all()


def test_flags_and_json() -> None:
    flags = pd.Series([True, None, False, np.nan], dtype=object)
    assert as_bool(flags).tolist() == [True, False, False, False]
    assert json_value('{"a": [1, 2]}') == {"a": [1, 2]}
    assert json_value(None, []) == [] and json_value(np.nan) is None
    assert json_value("{not json", "fallback") == "fallback"
