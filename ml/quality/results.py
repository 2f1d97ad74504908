"""The gate's verdicts in the warehouse: every expectation of every run is appended to
`quality.check_results`, and a step refuses a relation whose latest run failed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from ml.core.errors import UserError
from ml.core.tables import GATE_RESULTS
from ml.core.warehouse import Warehouse, open_warehouse
from ml.quality.outcomes import GateResult

#: The layout of `quality.check_results` (`details` is JSON text).
RESULTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("checked_at", pa.timestamp("us")),
        pa.field("suite", pa.string()),
        pa.field("table_name", pa.string()),
        pa.field("column_name", pa.string()),
        pa.field("expectation_type", pa.string()),
        pa.field("success", pa.bool_()),
        pa.field("observed_value", pa.string()),
        pa.field("observed_number", pa.float64()),
        pa.field("expected", pa.string()),
        pa.field("details", pa.string()),
    ]
)


def results_table(result: GateResult) -> pa.Table:
    """One row per expectation of the run, in the layout of `quality.check_results`."""
    rows = [
        {
            "run_id": result.run_id,
            "checked_at": result.checked_at,
            "suite": o.suite,
            "table_name": o.table,
            "column_name": o.column,
            "expectation_type": o.expectation_type,
            "success": o.success,
            "observed_value": o.observed,
            "observed_number": o.observed_number,
            "expected": o.expected,
            "details": json.dumps(o.details, default=str, sort_keys=True),
        }
        for suite in result.suites
        for o in suite.outcomes
    ]
    return pa.Table.from_pylist(rows, schema=RESULTS_SCHEMA)


def store_results(result: GateResult, path: str | Path | None = None) -> int:
    """Append the run's rows to `quality.check_results` in one transaction; returns rows added."""
    with open_warehouse(path) as warehouse:
        return warehouse.append_rows(GATE_RESULTS, results_table(result))


def require_passing_gate(warehouse: Warehouse, relation: str) -> None:
    """Refuse (`UserError`) to use a relation whose latest quality-gate run failed.

    dbt publishes a model before its tests run, so a failed `dbt build` or gate can leave bad data
    in a feature table; the gate's stored verdict is what tells. Relations the gate does not
    check (your own tables), and every relation before the gate's first run, pass.
    """
    if not warehouse.exists(GATE_RESULTS):
        return
    verdict = warehouse.query(
        f"select sum(case when success then 0 else 1 end) as failed, count(*) as total, "
        f"max(run_id) as run_id from {GATE_RESULTS} "
        f"where table_name = ? and checked_at = "
        f"(select max(checked_at) from {GATE_RESULTS} where table_name = ?)",
        [relation, relation],
    )
    failed, total, run_id = verdict.iloc[0]
    if total and failed:
        raise UserError(
            f"the quality gate failed {int(failed)} expectation(s) on {relation} in its last run "
            f"({run_id}): fix the data and rerun `python -m scripts.check_quality`, "
            "or go ahead anyway with --skip-gate"
        )
