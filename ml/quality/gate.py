"""Running the gate: validate each suite's table in the warehouse, opened read-only.

Schema expectations (column set, column types) run on the table's schema alone (zero rows);
value expectations run column by column on frames read with only the column they name, so
neither time nor memory grows with the table's width. Nothing is written here (`results`
stores a run).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ml.core.errors import RelationNotFoundError
from ml.core.warehouse import Warehouse, open_warehouse
from ml.quality.describe import outcome
from ml.quality.frames import read_columns, read_schema
from ml.quality.outcomes import GateResult, SuiteOutcome
from ml.quality.suites import (
    SuiteSpec,
    columns_named,
    load_suites,
    select_suites,
    suite_parameters,
)
from ml.quality.validator import Validator

#: Expectations about the table's shape; they run on a zero-row frame with the table's schema.
SCHEMA_EXPECTATIONS = frozenset(
    {
        "expect_column_to_exist",
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_of_type",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_columns_to_match_set",
    }
)


def _latest_load(warehouse: Warehouse, table: str, schema: pd.DataFrame) -> str | None:
    """The as-of date once batches are appended (rows carry `loaded_at`): the date of the table's
    latest load, or for a table without `loaded_at` (a feature mart) the latest load of any raw
    table; None (the dbt var as_of_date) when nothing carries a load time. A later batch's rows
    are then not "in the future": dbt checks each row against its own batch's load."""
    if "loaded_at" in schema.columns:
        sources = [table]
    else:
        sources = [
            r.relation
            for r in warehouse.relations("raw")
            if "loaded_at" in warehouse.describe(r.relation).names
        ]
    if not sources:
        return None
    union = " union all ".join(f"select max(loaded_at) as latest from {s}" for s in sources)
    latest = warehouse.query(f"select max(latest) as latest from ({union}) as loads")["latest"]
    value = latest.iloc[0]
    return None if pd.isna(value) else pd.Timestamp(value).date().isoformat()


def validate_suite(
    warehouse: Warehouse,
    spec: SuiteSpec,
    validator: Validator,
    parameters: Mapping[str, Any] | None = None,
) -> SuiteOutcome:
    """Read the suite's table and validate it; one outcome per expectation, in suite order.

    Schema expectations see the table's schema (zero rows). Value expectations run in groups,
    one per column, each on a frame read with just that column: GX's pandas engine copies the
    frame it validates for every expectation, and one column at a time also bounds memory by the
    largest column rather than the table. Table-level ones (row count) see a column-less frame
    with the table's number of rows.
    """
    start = time.perf_counter()
    schema = read_schema(warehouse, spec.table)
    params = (
        suite_parameters(_latest_load(warehouse, spec.table, schema))
        if parameters is None
        else parameters
    )
    rows = warehouse.row_count(spec.table)
    expectations = spec.expectations
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for i, exp in enumerate(expectations):
        key = None if exp["type"] in SCHEMA_EXPECTATIONS else columns_named(exp)
        groups.setdefault(key, []).append(i)
    results: dict[int, dict[str, Any]] = {}
    for key, indices in groups.items():
        if key is None:
            frame = schema
        else:
            present = [c for c in key if c in schema.columns]
            frame = (
                read_columns(warehouse, spec.table, present)
                if present
                else pd.DataFrame(index=pd.RangeIndex(rows))
            )
        batch = [expectations[i] for i in indices]
        results.update(
            zip(indices, validator.validate(spec.name, batch, frame, params), strict=True)
        )
        del frame  # free this column before the next one is read
    columns = set(schema.columns)
    outcomes = [outcome(spec, exp, results[i], columns) for i, exp in enumerate(expectations)]
    return SuiteOutcome(
        suite=spec.name,
        table=spec.table,
        rows=rows,
        seconds=time.perf_counter() - start,
        outcomes=outcomes,
    )


def run_gate(
    suites: Sequence[SuiteSpec],
    path: str | Path | None = None,
    *,
    validator: Validator | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> GateResult:
    """Validate every suite against the warehouse, opened read-only; nothing is written.

    All tables are checked to exist before any is read, so a missing table fails fast.
    """
    checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = uuid.uuid4().hex[:12]
    with open_warehouse(path, read_only=True) as warehouse:
        missing = [s.table for s in suites if not warehouse.exists(s.table)]
        if missing:
            raise RelationNotFoundError(
                f"{'tables' if len(missing) > 1 else 'table'} {', '.join(missing)} "
                f"{'do' if len(missing) > 1 else 'does'} not exist in the warehouse "
                "(run the simulator and `dbt build` first)"
            )
        gx_validator = validator or Validator()
        outcomes = [validate_suite(warehouse, s, gx_validator, parameters) for s in suites]
    return GateResult(run_id=run_id, checked_at=checked_at, suites=outcomes)


def check(names: Iterable[str] | None = None, path: str | Path | None = None) -> GateResult:
    """Run the suites named (all when none are) from `expectations/`, quietly: the library's
    warnings are chatter, the result says what matters. Nothing is stored."""
    suites = select_suites(load_suites(), names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_gate(suites, path)
