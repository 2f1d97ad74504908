"""ml.bench.scoring: bench.scoring_input built through the warehouse interface (either engine)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from ml.bench.scoring import SCORING_INPUT, build_scoring_input, repeated
from ml.core.warehouse import open_warehouse


def _features(rows: int) -> pa.Table:
    ids = list(range(rows, 0, -1))  # stored out of order: the copies follow loan_id order
    return pa.table(
        {
            "loan_id": pa.array([100 + i for i in ids], pa.int32()),
            "amount": pa.array([float(i) for i in ids]),
            "purpose": pa.array([f"p{i % 3}" for i in ids]),
        }
    )


def test_repeated_copies_the_rows_in_order_with_new_ids() -> None:
    base = _features(4).sort_by("loan_id")
    tables = list(repeated(base, 10, batch_rows=3))
    assert all(t.num_rows <= 3 for t in tables)
    out = pa.concat_tables(tables)
    assert out.column_names == ["loan_id", "amount", "purpose"]  # loan_id stays in place
    assert out.schema.field("loan_id").type == pa.int64()
    assert out["loan_id"].to_pylist() == list(range(1, 11))
    assert out["amount"].to_pylist() == [1.0, 2.0, 3.0, 4.0] * 2 + [1.0, 2.0]
    assert list(repeated(base, 0)) == []


def test_build_scoring_input_streams_copies_into_the_warehouse(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    with open_warehouse(path, engine="duckdb") as wh:
        wh.replace_table("marts.loan_features", _features(7))
    built = build_scoring_input(path, 30)
    assert built["rows"] == 30 and built["base_rows"] == 7 and built["seconds"] > 0
    with open_warehouse(path, engine="duckdb", read_only=True) as wh:
        frame = wh.read_frame(SCORING_INPUT, order_by="loan_id")
        assert wh.sql_types(SCORING_INPUT) == {
            "loan_id": "BIGINT",
            "amount": "DOUBLE",
            "purpose": "VARCHAR",
        }
    assert frame["loan_id"].tolist() == list(range(1, 31))
    # four whole copies, then the first two rows in loan id order
    assert frame["amount"].tolist() == [float(i) for i in range(1, 8)] * 4 + [1.0, 2.0]


def test_an_empty_feature_table_is_refused(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    with open_warehouse(path, engine="duckdb") as wh:
        wh.replace_table("marts.loan_features", _features(0))
    with pytest.raises(RuntimeError, match="marts.loan_features is empty"):
        build_scoring_input(path, 10)
