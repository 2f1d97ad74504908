"""The data-quality gate: passes on a fresh build, fails loudly and precisely on broken data.

The tests call `ml.quality` in-process (Great Expectations takes seconds to import, so one shared
`Validator` serves them all); the command's contract (exit codes, one-line errors, no traceback):
tests/scripts/test_check_quality.py. Tests on the built warehouse run dbt once: `slow`.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.core.errors import RelationNotFoundError, WarehouseLockedError
from ml.quality.describe import describe_result
from ml.quality.gate import run_gate
from ml.quality.outcomes import GateResult
from ml.quality.results import store_results
from ml.quality.suites import SuiteError, SuiteSpec, load_suites, select_suites
from ml.quality.validator import Validator

SUITE_NAMES = [
    "raw.customers",
    "raw.loans",
    "raw.orders",
    "marts.customer_features",
    "marts.loan_features",
]


@pytest.fixture(scope="module")
def validator() -> Validator:
    """One ephemeral GX context for the module (importing GX is the slow part)."""
    return Validator()


@pytest.fixture(scope="module")
def suites() -> dict[str, SuiteSpec]:
    return load_suites()


def _execute(path: Path, *statements: str) -> None:
    con = duckdb.connect(str(path))
    try:
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def _failures(result: GateResult) -> set[tuple[str, str | None, str]]:
    return {(o.table, o.column, o.expectation_type) for s in result.suites for o in s.failures}


def _gate(
    suites: dict[str, SuiteSpec], path: Path, validator: Validator, *names: str
) -> GateResult:
    return run_gate(select_suites(suites, names), path, validator=validator)


# ------------------------------------------------------------------------------ suites on disk


def test_every_table_has_one_suite_in_gate_order(suites: dict[str, SuiteSpec]) -> None:
    assert list(suites) == SUITE_NAMES
    for name, spec in suites.items():
        assert spec.table == name
        assert spec.path.name == f"{name}.json"


def test_suites_are_native_gx_suites_that_round_trip(
    suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    for spec in suites.values():
        suite = validator.suite(spec.name, spec.expectations)
        assert len(suite.expectations) == len(spec.expectations) > 20, spec.name
        again = suite.to_json_dict()["expectations"]
        assert [e["type"] for e in again] == [e["type"] for e in spec.expectations]
        for parsed, written in zip(again, spec.expectations, strict=True):
            # GX leaves out kwargs at their default value (the files may spell them out)
            assert parsed["kwargs"].items() <= written["kwargs"].items(), written


def test_feature_suites_pin_the_exact_column_set(suites: dict[str, SuiteSpec]) -> None:
    for name in ("marts.customer_features", "marts.loan_features"):
        (schema,) = [
            e for e in suites[name].expectations if e["type"] == "expect_table_columns_to_match_set"
        ]
        assert schema["kwargs"]["exact_match"] is True
        typed = {
            e["kwargs"]["column"]
            for e in suites[name].expectations
            if e["type"] == "expect_column_values_to_be_in_type_list"
        }
        assert typed == set(schema["kwargs"]["column_set"]), name


def test_unknown_suite_is_a_user_error(suites: dict[str, SuiteSpec]) -> None:
    with pytest.raises(SuiteError, match="unknown suite 'raw.nope'.*available: raw.customers"):
        select_suites(suites, ["raw.customers", "raw.nope"])


def test_broken_suite_file_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "raw.x.json").write_text('{"name": "raw.x", "expectations": [{"kwargs": {}}]}')
    with pytest.raises(SuiteError, match="has no `type`"):
        load_suites(tmp_path)
    (tmp_path / "raw.x.json").write_text("{not json")
    with pytest.raises(SuiteError, match="cannot read suite"):
        load_suites(tmp_path)


@pytest.mark.parametrize(
    ("etype", "kwargs", "result", "text"),
    [
        (
            "expect_column_values_to_not_be_null",
            {"column": "age", "mostly": 0.97},
            {"unexpected_percent": 20.1, "unexpected_count": 603},
            "20.1 % null (max 3.0 %)",
        ),
        (
            "expect_column_values_to_be_unique",
            {"column": "customer_id"},
            {"unexpected_percent": 0.067, "unexpected_count": 2, "partial_unexpected_list": [7, 7]},
            "2 rows duplicated (0.07 %; expected none), e.g. 7",
        ),
        (
            "expect_column_mean_to_be_between",
            {"column": "defaulted", "min_value": 0.1, "max_value": 0.3},
            {"observed_value": 1.0},
            "mean 1 (expected [0.1, 0.3])",
        ),
        (
            "expect_column_values_to_be_between",
            {"column": "ordered_at", "max_value": "2026-01-01T00:00:00", "strict_max": True},
            {"unexpected_percent": 0.5, "unexpected_count": 5},
            "5 rows outside < 2026-01-01 (0.5 %; expected none)",
        ),
    ],
)
def test_results_read_as_one_line(etype: str, kwargs: dict, result: dict, text: str) -> None:
    assert describe_result(etype, kwargs, result)[0] == text


def test_validator_keeps_no_columns_from_earlier_validations(validator: Validator) -> None:
    # GX caches every metric (columns, masks) per data source; the gate must drop them, or a
    # run would hold every column of every table in memory at once.
    rows = 1237
    expectations = [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "a", "min_value": 0}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "a"}},
    ]
    for _ in range(3):
        results = validator.validate("t", expectations, pd.DataFrame({"a": np.arange(rows)}), {})
        assert [r["success"] for r in results] == [True, True, True]
    gc.collect()
    assert [o for o in gc.get_objects() if isinstance(o, pd.Series) and len(o) == rows] == []


# ------------------------------------------------------------------------- against a warehouse


@pytest.mark.slow
def test_gate_passes_on_a_fresh_build(
    built_warehouse: Path, suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    result = _gate(suites, built_warehouse, validator)
    assert [s.suite for s in result.suites] == SUITE_NAMES
    assert _failures(result) == set()
    for suite in result.suites:
        assert suite.rows > 0
        assert len(suite.outcomes) == len(suites[suite.suite].expectations)
        assert not [o for o in suite.outcomes if o.details["error"]], suite.suite


@pytest.mark.slow
def test_duplicated_customer_id_in_features_fails(
    built_copy: Path, suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    _execute(
        built_copy,
        # the mart is a view of the latest versions, which cannot repeat a customer: put a
        # table with a repeated customer in its place, as a broken build would
        "create table dup as select * from marts.customer_features "
        "union all (select * from marts.customer_features order by customer_id limit 1)",
        "drop view marts.customer_features",
        "create table marts.customer_features as select * from dup",
    )
    result = _gate(suites, built_copy, validator, "marts.customer_features")
    assert _failures(result) == {
        ("marts.customer_features", "customer_id", "expect_column_values_to_be_unique")
    }


@pytest.mark.slow
def test_broken_default_balance_fails(
    built_copy: Path, suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    _execute(built_copy, "update marts.loan_feature_versions set defaulted = 1")
    result = _gate(suites, built_copy, validator, "marts.loan_features")
    assert _failures(result) == {
        ("marts.loan_features", "defaulted", "expect_column_mean_to_be_between")
    }
    (failure,) = result.suites[0].failures
    assert failure.observed_number == 1.0
    assert "mean 1 (expected [0.1, 0.3])" in failure.line()


@pytest.mark.slow
def test_collapsed_segment_balance_fails(
    built_copy: Path, suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    _execute(
        built_copy,
        "update marts.customer_feature_versions set segment = 'loyal' where segment is not null",
    )
    result = _gate(suites, built_copy, validator, "marts.customer_features")
    failed = result.suites[0].failures
    assert {o.column for o in failed} == {"segment"}
    assert len(failed) == 4  # loyal above 60 %, the three others below 5 %


@pytest.mark.slow
def test_schema_drift_names_the_missing_column_and_the_wrong_type(
    built_copy: Path, suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    _execute(
        built_copy,
        "alter table raw.orders drop column is_returned",
        "alter table raw.orders alter items type varchar",
    )
    result = _gate(suites, built_copy, validator, "raw.orders")
    failures = {(o.column, o.expectation_type): o for o in result.suites[0].failures}
    assert failures[(None, "expect_table_columns_to_match_set")].observed == "missing is_returned"
    assert failures[("items", "expect_column_values_to_be_in_type_list")].observed.startswith(
        "dtype str"
    )
    missing = failures[("is_returned", "expect_column_values_to_not_be_null")]
    assert missing.observed == "column is_returned missing from raw.orders"


@pytest.mark.slow
def test_results_are_appended_one_row_per_expectation(
    built_copy: Path, suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    _execute(built_copy, "update marts.loan_feature_versions set defaulted = 1")
    first = _gate(suites, built_copy, validator)
    n = sum(len(s.outcomes) for s in first.suites)
    assert store_results(first, built_copy) == n
    second = _gate(suites, built_copy, validator, "raw.orders")
    store_results(second, built_copy)
    con = duckdb.connect(str(built_copy), read_only=True)
    try:
        per_run = con.execute(
            "select run_id, count(*), count(distinct suite), sum((not success)::int) "
            "from quality.check_results group by run_id order by count(*) desc"
        ).fetchall()
        row = con.execute(
            "select table_name, column_name, expectation_type, success, observed_value, "
            "observed_number, expected, details from quality.check_results "
            "where run_id = ? and not success",
            [first.run_id],
        ).fetchone()
    finally:
        con.close()
    assert per_run == [
        (first.run_id, n, 5, 1),
        (second.run_id, len(suites["raw.orders"].expectations), 1, 0),
    ]
    table, column, etype, success, observed, number, expected, details = row
    assert (table, column, etype, success) == (
        "marts.loan_features",
        "defaulted",
        "expect_column_mean_to_be_between",
        False,
    )
    assert observed.startswith("mean 1") and number == 1.0 and expected == "[0.1, 0.3]"
    assert json.loads(details)["result"]["observed_value"] == 1.0


@pytest.mark.slow
def test_missing_table_is_a_user_error_and_writes_nothing(
    raw_warehouse: Path, tmp_path: Path, suites: dict[str, SuiteSpec], validator: Validator
) -> None:
    path = tmp_path / "raw_only.duckdb"
    path.write_bytes(raw_warehouse.read_bytes())
    with pytest.raises(RelationNotFoundError, match="marts.customer_features, marts.loan_features"):
        _gate(suites, path, validator)
    con = duckdb.connect(str(path), read_only=True)
    try:
        schemas = {r[0] for r in con.execute("select schema_name from duckdb_schemas()").fetchall()}
    finally:
        con.close()
    assert "quality" not in schemas


@pytest.mark.slow
def test_locked_warehouse_is_a_user_error(
    built_copy: Path, suites: dict[str, SuiteSpec], monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
            " time.sleep(60)",
            str(built_copy),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        monkeypatch.setenv("WAREHOUSE_LOCK_TIMEOUT", "0.2")
        with pytest.raises(WarehouseLockedError, match="is locked"):
            run_gate(select_suites(suites, ["raw.orders"]), built_copy)
    finally:
        holder.kill()
        holder.wait()
