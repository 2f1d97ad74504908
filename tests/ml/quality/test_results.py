"""The gate's stored verdicts: one row per expectation appended in one transaction, and the
refusal of a relation whose latest gate run failed (ml.train and ml.segment call it first)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb

from ml.core.errors import UserError
from ml.core.tables import GATE_RESULTS
from ml.core.warehouse import open_warehouse
from ml.quality.outcomes import ExpectationOutcome, GateResult, SuiteOutcome
from ml.quality.results import (
    RESULTS_SCHEMA,
    require_passing_gate,
    results_table,
    store_results,
)

FEATURES = "marts.loan_features"


def _outcome(table: str, success: bool, column: str | None = "x") -> ExpectationOutcome:
    return ExpectationOutcome(
        suite=table,
        table=table,
        column=column,
        expectation_type="expect_column_values_to_not_be_null",
        success=success,
        observed="1 row null (1.0 %; expected none)" if not success else "0 rows null",
        observed_number=0.01 if not success else None,
        expected="none",
        description=None,
        details={"kwargs": {"column": column}, "result": {"unexpected_count": int(not success)}},
    )


def _run(run_id: str, at: str, *outcomes: ExpectationOutcome) -> GateResult:
    by_table: dict[str, list[ExpectationOutcome]] = {}
    for o in outcomes:
        by_table.setdefault(o.table, []).append(o)
    suites = [SuiteOutcome(t, t, 10, 0.1, found) for t, found in by_table.items()]
    return GateResult(run_id, dt.datetime.fromisoformat(at), suites)


def _create_results_table(path: Path, columns: str, values: str = "") -> None:
    """`quality.check_results` as an earlier version (or another tool) made it."""
    with duckdb.connect(str(path)) as con:
        con.execute(f"create schema quality; create table {GATE_RESULTS} ({columns})")
        if values:
            con.execute(f"insert into {GATE_RESULTS} values {values}")


def _refusal(path: Path, relation: str) -> str | None:
    with open_warehouse(path, read_only=True) as warehouse:
        try:
            require_passing_gate(warehouse, relation)
        except UserError as err:
            return str(err)
    return None


def test_results_table_has_one_row_per_expectation_and_json_details() -> None:
    run = _run("r1", "2026-01-02 10:00", _outcome(FEATURES, True), _outcome(FEATURES, False, None))
    table = results_table(run)
    assert table.schema == RESULTS_SCHEMA
    rows = table.to_pylist()
    assert [(r["run_id"], r["success"], r["column_name"]) for r in rows] == [
        ("r1", True, "x"),
        ("r1", False, None),
    ]
    assert json.loads(rows[1]["details"])["result"] == {"unexpected_count": 1}
    assert results_table(GateResult("r0", dt.datetime(2026, 1, 1))).num_rows == 0


def test_store_results_creates_the_table_and_appends(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    first = _run("r1", "2026-01-01 10:00", _outcome(FEATURES, True), _outcome("raw.orders", True))
    assert store_results(first, path) == 2
    assert store_results(_run("r2", "2026-01-02 10:00", _outcome(FEATURES, False)), path) == 1
    with open_warehouse(path, read_only=True) as warehouse:
        assert warehouse.sql_types(GATE_RESULTS) == {
            "run_id": "VARCHAR",
            "checked_at": "TIMESTAMP",
            "suite": "VARCHAR",
            "table_name": "VARCHAR",
            "column_name": "VARCHAR",
            "expectation_type": "VARCHAR",
            "success": "BOOLEAN",
            "observed_value": "VARCHAR",
            "observed_number": "DOUBLE",
            "expected": "VARCHAR",
            "details": "VARCHAR",
        }
        stored = warehouse.read_frame(GATE_RESULTS, order_by="run_id")
    assert stored["run_id"].tolist() == ["r1", "r1", "r2"]
    assert json.loads(stored["details"].iloc[2])["kwargs"] == {"column": "x"}


def test_store_results_appends_to_a_table_of_the_earlier_layout(tmp_path) -> None:
    # warehouses built before the redesign have `details json` and NOT NULL constraints
    path = tmp_path / "w.duckdb"
    _create_results_table(
        path,
        "run_id varchar not null, checked_at timestamp not null, suite varchar not null, "
        "table_name varchar not null, column_name varchar, expectation_type varchar not null, "
        "success boolean not null, observed_value varchar, observed_number double, "
        "expected varchar, details json",
    )
    assert store_results(_run("r1", "2026-01-01 10:00", _outcome(FEATURES, False)), path) == 1
    with duckdb.connect(str(path), read_only=True) as con:
        (details,) = con.execute("select details from quality.check_results").fetchone()
    assert json.loads(details)["result"] == {"unexpected_count": 1}


def test_no_gate_table_passes(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    open_warehouse(path).close()
    assert _refusal(path, FEATURES) is None


def test_the_latest_gate_run_decides(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    store_results(_run("old", "2026-01-01 10:00", _outcome(FEATURES, False)), path)
    message = _refusal(path, FEATURES)
    assert message is not None
    assert message.startswith(f"the quality gate failed 1 expectation(s) on {FEATURES}")
    assert "(old)" in message and "--skip-gate" in message
    new = _run(
        "new",
        "2026-01-02 10:00",
        _outcome(FEATURES, True),
        _outcome(FEATURES, True),
        _outcome("marts.customer_features", False),
        _outcome("marts.customer_features", False),
    )
    store_results(new, path)
    assert _refusal(path, FEATURES) is None  # the latest run passed
    assert "failed 2 expectation(s) on marts.customer_features" in str(
        _refusal(path, "marts.customer_features")
    )
    assert _refusal(path, "raw.my_data") is None  # a relation the gate does not check


def test_a_minimal_gate_table_is_enough(tmp_path) -> None:
    # only the columns the verdict reads
    path = tmp_path / "w.duckdb"
    _create_results_table(
        path,
        "run_id varchar, checked_at timestamp, table_name varchar, success boolean",
        "('old', '2026-01-01 10:00', 'marts.loan_features', false), "
        "('new', '2026-01-02 10:00', 'marts.loan_features', true), "
        "('new', '2026-01-02 10:00', 'marts.customer_features', false)",
    )
    assert _refusal(path, "marts.loan_features") is None
    assert "failed 1 expectation(s) on marts.customer_features in its last run (new)" in str(
        _refusal(path, "marts.customer_features")
    )
