"""The request row model built from an input contract, and the Arrow types the fast path gets:
without a server or a trained model."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest
from pydantic import ValidationError

from ml.api.live import _notes, _table, arrow_schema
from ml.api.schema import columns_of, field_specs, row_model, rows_adapter
from ml.serving.bundle import InputContract

CONTRACT = InputContract(
    id_column="loan_id",
    numeric=("amount", "term", "signed_up", "active"),
    categorical=("grade",),
    dtypes={
        "amount": "float64",
        "term": "Int32",
        "signed_up": "datetime64[us]",
        "active": "bool",
        "grade": "str",
    },  # fmt: skip
    categories={"grade": ["A", "B"]},
    ranges={"amount": [1000.0, 5000.0, 40000.0], "term": [36.0, 36.0, 60.0]},
)
GOOD = {"loan_id": 7, "amount": 1200.5, "term": "36", "signed_up": "2024-05-01",
        "active": True, "grade": "A", "label": 1}  # fmt: skip


def _errors(rows: list) -> list[dict]:
    with pytest.raises(ValidationError) as err:
        rows_adapter(row_model("t", CONTRACT)).validate_python(rows)
    return err.value.errors(include_url=False)


def test_fields_carry_kinds_ranges_and_categories() -> None:
    specs = {s["name"]: s for s in field_specs(CONTRACT)}
    assert [s["name"] for s in field_specs(CONTRACT)] == CONTRACT.features
    assert {n: s["kind"] for n, s in specs.items()} == {
        "amount": "number", "term": "integer", "signed_up": "datetime", "active": "boolean",
        "grade": "category",
    }  # fmt: skip
    assert (specs["amount"]["min"], specs["amount"]["median"]) == (1000.0, 5000.0)
    assert specs["grade"]["categories"] == ["A", "B"]


def test_a_good_row_validates_and_extra_fields_are_ignored() -> None:
    (row,) = rows_adapter(row_model("t", CONTRACT)).validate_python([GOOD])
    columns = columns_of([row], CONTRACT)
    assert columns == {"loan_id": [7], "amount": [1200.5], "term": [36.0],
                       "signed_up": ["2024-05-01"], "active": [True], "grade": ["A"]}  # fmt: skip
    null_row = {k: None for k in CONTRACT.features}  # every feature may be missing
    assert rows_adapter(row_model("t", CONTRACT)).validate_python([null_row])


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"amount": "lots"}, "amount", "float_parsing"),
        ({"amount": math.nan}, "amount", "finite_number"),
        ({"term": math.inf}, "term", "finite_number"),
        ({"active": "perhaps"}, "active", "bool_parsing"),
        ({"grade": ["A"]}, "grade", "string_type"),
    ],
)
def test_a_bad_value_names_its_row_and_field(change, field, kind) -> None:
    (error,) = _errors([GOOD, {**GOOD, **change}])
    assert error["loc"] == (1, field) and error["type"] == kind


def test_a_missing_field_is_named() -> None:
    row = {k: v for k, v in GOOD.items() if k != "term"}
    (error,) = _errors([row])
    assert error["loc"] == (0, "term") and error["type"] == "missing"


def test_arrow_types_and_notes() -> None:
    schema = arrow_schema(CONTRACT)
    assert schema.field("amount").type == pa.float64() == schema.field("active").type
    assert schema.field("grade").type == pa.string() == schema.field("signed_up").type
    rows = rows_adapter(row_model("t", CONTRACT)).validate_python(
        [GOOD, {**GOOD, "grade": "Z", "active": None}, {**GOOD, "grade": 3}]
    )
    columns = columns_of(rows, CONTRACT)
    table = _table(columns, schema)
    assert table.column("active").to_pylist() == [1.0, None, 1.0]
    assert table.column("grade").to_pylist() == ["A", "Z", "3"]  # numbers read as their text
    notes = _notes(columns, CONTRACT)
    assert notes == [
        "grade: 2 rows with a category not seen in training (scored as infrequent)",
        "loan_id: repeated ids",
    ]
