"""The data-quality gate: validate warehouse tables against the Great Expectations suites.

`python -m scripts.check_quality [--suite NAME ...]` reads the table of each suite in
`expectations/` from the warehouse (`WAREHOUSE_PATH`, opened read-only), validates it with Great
Expectations on pandas, prints one line per suite and one indented line per failed expectation,
and appends one row per expectation to `quality.check_results` (one transaction, after the
validation, on a fresh read-write connection).

Exit codes: 0 every expectation passed, 1 at least one failed, 2 a user error (warehouse or table
missing, warehouse locked, unknown suite, unreadable suite file), printed as one line.

A suite is a Great Expectations 1.x `ExpectationSuite` serialised as JSON whose `meta.table` names
the table. Schema expectations (column set, column types) run on the table's schema alone (zero
rows); value expectations run column by column on frames read with only the column they name,
so neither time nor memory grows with the table's width. The suite parameter `as_of_date` is filled from `ml.config.AS_OF_DATE`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from ml import config, warehouse
from ml.cli import ArgumentParser, run
from ml.errors import RelationNotFoundError, UserError

SUITES_DIR = config.PROJECT_ROOT / "expectations"
RESULTS_TABLE = "quality.check_results"

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
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)
_LAYERS = {"raw": 0, "staging": 1, "intermediate": 2, "marts": 3}
_INDEX_KEY = "check_quality_index"

_RESULTS_DDL = f"""
create table if not exists {RESULTS_TABLE} (
    run_id varchar not null,
    checked_at timestamp not null,
    suite varchar not null,
    table_name varchar not null,
    column_name varchar,
    expectation_type varchar not null,
    success boolean not null,
    observed_value varchar,
    observed_number double,
    expected varchar,
    details json
)
"""


class SuiteError(UserError):
    """A suite that does not exist, or a suite file that cannot be read as an ExpectationSuite."""


# --------------------------------------------------------------------------------------- suites


@dataclass(frozen=True)
class SuiteSpec:
    """One suite file: its name, the table it checks and the ExpectationSuite JSON document."""

    name: str
    table: str
    path: Path
    document: Mapping[str, Any]

    @property
    def expectations(self) -> list[dict[str, Any]]:
        """The expectation configurations (type, kwargs, ...) in file order."""
        return list(self.document.get("expectations", []))


def _suite_order(spec: SuiteSpec) -> tuple[int, str]:
    return _LAYERS.get(spec.table.split(".")[0], len(_LAYERS)), spec.name


def load_suite(path: Path) -> SuiteSpec:
    """Read one suite file; the suite's `meta.table` (or its name) is the table it checks."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SuiteError(f"cannot read suite {path}: {err}") from None
    if not isinstance(document, dict) or not isinstance(document.get("expectations"), list):
        raise SuiteError(f"suite {path} is not an ExpectationSuite (no `expectations` list)")
    name = document.get("name") or path.stem
    table = (document.get("meta") or {}).get("table") or name
    try:
        warehouse.parse_relation(table)
    except UserError:
        raise SuiteError(
            f"suite {path}: `meta.table` {table!r} is not a schema.table name"
        ) from None
    for i, exp in enumerate(document["expectations"]):
        if not isinstance(exp, dict) or not isinstance(exp.get("type"), str):
            raise SuiteError(f"suite {path}: expectation #{i + 1} has no `type`")
    return SuiteSpec(name=str(name), table=table, path=path, document=document)


def load_suites(directory: Path = SUITES_DIR) -> dict[str, SuiteSpec]:
    """All suites in `directory` (`*.json`), keyed by suite name, raw before marts."""
    specs = [load_suite(p) for p in sorted(Path(directory).glob("*.json"))]
    if not specs:
        raise SuiteError(f"no suites (*.json) in {directory}")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SuiteError(f"suite names used twice in {directory}: {', '.join(dupes)}")
    return {s.name: s for s in sorted(specs, key=_suite_order)}


def select_suites(suites: Mapping[str, SuiteSpec], names: Iterable[str] | None) -> list[SuiteSpec]:
    """The suites named (all when `names` is empty), in gate order; unknown names raise."""
    wanted = list(dict.fromkeys(n.strip() for n in names or [] if n.strip()))
    if not wanted:
        return list(suites.values())
    unknown = [n for n in wanted if n not in suites]
    if unknown:
        raise SuiteError(
            f"unknown suite {', '.join(map(repr, unknown))}; available: {', '.join(suites)}"
        )
    return [s for s in suites.values() if s.name in wanted]


# -------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ExpectationOutcome:
    """The result of one expectation, with a one-line reading of what was observed."""

    suite: str
    table: str
    column: str | None
    expectation_type: str
    success: bool
    observed: str
    observed_number: float | None
    expected: str
    description: str | None
    details: dict[str, Any]

    @property
    def target(self) -> str:
        """`schema.table.column`, or `schema.table` for table-level expectations."""
        return f"{self.table}.{self.column}" if self.column else self.table

    def line(self) -> str:
        """The failure line the CLI prints (without indentation)."""
        text = f"{self.target} {self.expectation_type}: {self.observed}"
        return f"{text} [{self.description}]" if self.description else text


@dataclass(frozen=True)
class SuiteOutcome:
    """The outcomes of one suite on one table."""

    suite: str
    table: str
    rows: int
    seconds: float
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        """True when every expectation passed."""
        return all(o.success for o in self.outcomes)

    @property
    def passed(self) -> int:
        """Number of expectations that passed."""
        return sum(o.success for o in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        """The expectations that failed, in suite order."""
        return [o for o in self.outcomes if not o.success]


@dataclass(frozen=True)
class GateResult:
    """One run of the gate over several suites."""

    run_id: str
    checked_at: dt.datetime
    suites: list[SuiteOutcome] = field(default_factory=list)

    @property
    def success(self) -> bool:
        """True when every suite passed."""
        return all(s.success for s in self.suites)


# --------------------------------------------------------------------------- reading the table


def read_schema(con: duckdb.DuckDBPyConnection, relation: str) -> pd.DataFrame:
    """The table's columns and types as a zero-row frame (see `_schema_frame`)."""
    if not warehouse.relation_exists(con, relation):
        raise RelationNotFoundError(f"table {relation} does not exist in the warehouse")
    rel = con.sql(f"select * from {warehouse.qualified(relation)} limit 0")
    return _schema_frame(rel.df(), [str(t) for t in rel.types])


def read_columns(
    con: duckdb.DuckDBPyConnection, relation: str, columns: Sequence[str]
) -> pd.DataFrame:
    """Only the named columns of a table, with the dtypes of `_value_frame`."""
    cols = ", ".join(warehouse.quote_ident(c) for c in columns)
    return _value_frame(
        con.sql(f"select {cols} from {warehouse.qualified(relation)}").to_arrow_table()
    )


def row_count(con: duckdb.DuckDBPyConnection, relation: str) -> int:
    """Number of rows in a table."""
    rows = con.execute(f"select count(*) from {warehouse.qualified(relation)}").fetchall()
    return int(rows[0][0])


def _schema_frame(frame: pd.DataFrame, sql_types: Sequence[str]) -> pd.DataFrame:
    """The zero-row frame the schema expectations see: VARCHAR columns as `StringDtype`.

    DuckDB hands an empty VARCHAR column over as `object`, and pandas 3 a filled one as `str`;
    Great Expectations 1.24 can match neither in a type list (it passes an `object` column
    vacuously), while `StringDtype` it matches. Other columns keep the dtype DuckDB maps their
    SQL type to (INTEGER int32, BIGINT int64, DOUBLE float64, DATE/TIMESTAMP datetime64, ...).
    """
    for name, sql_type in zip(frame.columns, sql_types, strict=True):
        if sql_type.upper() == "VARCHAR":
            frame[name] = frame[name].astype(pd.StringDtype())
    return frame


def _value_frame(table: pa.Table) -> pd.DataFrame:
    """The frame the value expectations see, with dtypes on which GX's pandas metrics are fast.

    Read through Arrow (several times faster than DuckDB's `.df()` for text). GX's pandas
    `between` is vectorised only for int64, float64 and datetime64[ns] columns and loops over
    values in Python otherwise, so: integers become int64 (float64 when they hold NULLs, as
    Arrow does), decimals float64, dates and timestamps datetime64[ns] when in range. Column
    types are checked on the schema frame, so none of this changes a verdict.
    """
    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.float64()))
    frame = table.to_pandas(date_as_object=False, types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    for name in frame.columns:
        dtype = frame[name].dtype
        if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            frame[name] = frame[name].astype("int64")
        elif pd.api.types.is_datetime64_dtype(dtype) and dtype != "datetime64[ns]":
            with contextlib.suppress(ValueError, OverflowError):  # out of ns range: keep as is
                frame[name] = frame[name].astype("datetime64[ns]")
    return frame


# ---------------------------------------------------------------------------------- validation


class Validator:
    """An ephemeral Great Expectations context that validates DataFrames against suites.

    Nothing is written to disk (no `gx/` folder), analytics and progress bars are off. Creating
    one imports Great Expectations, which takes a few seconds. Each `validate` call adds a suite
    and a validation definition and deletes them afterwards, and empties the execution engine's
    metric cache: GX keeps every metric it computed (columns and masks as long as the frame) for
    the life of the data source, which would hold every column of every table in memory.
    """

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self._gx = gx
        project = DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        )
        self._context = gx.get_context(mode="ephemeral", project_config=project)
        self._source = self._context.data_sources.add_pandas("warehouse")
        asset = self._source.add_dataframe_asset("table")
        self._batch = asset.add_batch_definition_whole_dataframe("whole_table")
        self._runs = 0

    def suite(self, name: str, expectations: Sequence[Mapping[str, Any]]) -> Any:
        """Build a `gx.ExpectationSuite`; configurations GX rejects raise `SuiteError`."""
        try:
            return self._gx.ExpectationSuite(
                name=name, expectations=[dict(e) for e in expectations]
            )
        except Exception as err:  # GX raises many types for a bad configuration
            raise SuiteError(f"suite {name}: invalid expectation: {err}") from None

    def validate(
        self,
        name: str,
        expectations: Sequence[Mapping[str, Any]],
        frame: pd.DataFrame,
        parameters: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """Validate `frame`; one JSON-ready result dict per expectation, in the given order."""
        if not expectations:
            return []
        tagged = []
        for i, exp in enumerate(expectations):
            tagged.append({**exp, "meta": {**(exp.get("meta") or {}), _INDEX_KEY: i}})
        self._runs += 1
        run_name = f"{name}#{self._runs}"
        suite = self._context.suites.add(self.suite(run_name, tagged))
        definition = self._context.validation_definitions.add(
            self._gx.ValidationDefinition(name=run_name, data=self._batch, suite=suite)
        )
        try:
            result = definition.run(
                batch_parameters={"dataframe": frame}, expectation_parameters=dict(parameters)
            )
        finally:
            self._context.validation_definitions.delete(run_name)
            self._context.suites.delete(run_name)
            # GX 1.24 has no public way to drop cached metrics; a new data source per call
            # would, but triples the per-call overhead (11 -> 30 ms, about 100 calls a run).
            cache = getattr(self._source.get_execution_engine(), "_metric_cache", None)
            if isinstance(cache, dict):
                cache.clear()
        ordered: list[dict[str, Any] | None] = [None] * len(expectations)
        for res in result.results:
            doc = res.to_json_dict()
            index = doc["expectation_config"]["meta"].pop(_INDEX_KEY)
            ordered[index] = doc
        missing = [expectations[i]["type"] for i, r in enumerate(ordered) if r is None]
        if missing:  # pragma: no cover - GX returns one result per expectation
            raise RuntimeError(f"no result for {missing}")
        return [r for r in ordered if r is not None]


def suite_parameters(as_of_date: str = config.AS_OF_DATE) -> dict[str, str]:
    """Values for the `$PARAMETER`s the suites use."""
    return {"as_of_date": f"{as_of_date}T00:00:00"}


def _columns_named(expectation: Mapping[str, Any]) -> tuple[str, ...]:
    kwargs = expectation.get("kwargs") or {}
    names = [kwargs[k] for k in _COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
    for key in _COLUMN_LIST_KWARGS:
        names.extend(kwargs.get(key) or [])
    return tuple(dict.fromkeys(names))


def validate_suite(
    con: duckdb.DuckDBPyConnection,
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
    params = suite_parameters() if parameters is None else parameters
    schema = read_schema(con, spec.table)
    rows = row_count(con, spec.table)
    expectations = spec.expectations
    groups: dict[tuple[str, ...] | None, list[int]] = {}
    for i, exp in enumerate(expectations):
        key = None if exp["type"] in SCHEMA_EXPECTATIONS else _columns_named(exp)
        groups.setdefault(key, []).append(i)
    results: dict[int, dict[str, Any]] = {}
    for key, indices in groups.items():
        if key is None:
            frame = schema
        else:
            present = [c for c in key if c in schema.columns]
            frame = (
                read_columns(con, spec.table, present)
                if present
                else pd.DataFrame(index=pd.RangeIndex(rows))
            )
        batch = [expectations[i] for i in indices]
        results.update(
            zip(indices, validator.validate(spec.name, batch, frame, params), strict=True)
        )
        del frame  # free this column before the next one is read
    columns = set(schema.columns)
    outcomes = [_outcome(spec, exp, results[i], columns) for i, exp in enumerate(expectations)]
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
    with warehouse.session(path, read_only=True) as con:
        con.execute("set enable_progress_bar = false")
        missing = [s.table for s in suites if not warehouse.relation_exists(con, s.table)]
        if missing:
            raise RelationNotFoundError(
                f"{'tables' if len(missing) > 1 else 'table'} {', '.join(missing)} "
                f"{'do' if len(missing) > 1 else 'does'} not exist in the warehouse "
                "(run the simulator and `dbt build` first)"
            )
        gx_validator = validator or Validator()
        outcomes = [validate_suite(con, s, gx_validator, parameters) for s in suites]
    return GateResult(run_id=run_id, checked_at=checked_at, suites=outcomes)


# ---------------------------------------------------------------------- reading a GX result


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:.4g}"
    text = str(value)
    return text[:-9] if text.endswith("T00:00:00") else text


def _range(kwargs: Mapping[str, Any], low: str = "min_value", high: str = "max_value") -> str:
    lo, hi = kwargs.get(low), kwargs.get(high)
    if isinstance(lo, dict) or isinstance(hi, dict):  # an unresolved $PARAMETER
        return "?"
    strict_lo, strict_hi = kwargs.get("strict_min"), kwargs.get("strict_max")
    if lo is not None and hi is not None:
        return f"{'(' if strict_lo else '['}{_num(lo)}, {_num(hi)}{')' if strict_hi else ']'}"
    if lo is not None:
        return f"{'>' if strict_lo else '>='} {_num(lo)}"
    if hi is not None:
        return f"{'<' if strict_hi else '<='} {_num(hi)}"
    return "any"


def _values(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(repr(v) if isinstance(v, str) else _num(v) for v in list(values)[:limit])
    return "{" + shown + (", ..." if len(values) > limit else "") + "}"


def _examples(result: Mapping[str, Any], limit: int = 3) -> str:
    counts = result.get("partial_unexpected_counts") or []
    values = [c.get("value") for c in counts] or result.get("partial_unexpected_list") or []
    unique: list[Any] = []
    for value in values:
        if value is not None and value not in unique:
            unique.append(value)
    values = unique[:limit]
    if not values:
        return ""
    return ", e.g. " + ", ".join(repr(v) if isinstance(v, str) else _num(v) for v in values)


def _exception_message(info: Mapping[str, Any]) -> str | None:
    """The first error message in a GX `exception_info` (flat, or keyed by metric)."""
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "error")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "error")
    return None


_MAP_NOUNS = {
    "expect_column_values_to_not_be_null": lambda kw: "null",
    "expect_column_values_to_be_null": lambda kw: "not null",
    "expect_column_values_to_be_unique": lambda kw: "duplicated",
    "expect_column_values_to_be_between": lambda kw: f"outside {_range(kw)}",
    "expect_column_values_to_be_in_set": lambda kw: f"not in {_values(kw.get('value_set', []))}",
    "expect_column_values_to_not_be_in_set": lambda kw: f"in {_values(kw.get('value_set', []))}",
    "expect_column_values_to_match_regex": lambda kw: f"not matching {kw.get('regex')}",
    "expect_column_values_to_not_match_regex": lambda kw: f"matching {kw.get('regex')}",
    "expect_column_value_lengths_to_be_between": lambda kw: f"with length outside {_range(kw)}",
}


def describe_result(
    expectation_type: str, kwargs: Mapping[str, Any], result: Mapping[str, Any]
) -> tuple[str, float | None, str]:
    """Read a GX result as (observed text, observed number, expected text).

    Column-map expectations report the share of unexpected rows (of non-null rows, except for
    the null check itself) against the share `mostly` allows; aggregate expectations report the
    observed statistic against its range.
    """
    if "unexpected_percent" in result or expectation_type in _MAP_NOUNS:
        noun = _MAP_NOUNS.get(expectation_type, lambda kw: "unexpected")(kwargs)
        mostly = float(kwargs.get("mostly", 1) or 1)
        pct = result.get("unexpected_percent")
        count = result.get("unexpected_count") or 0
        examples = "" if expectation_type.endswith("not_be_null") else _examples(result)
        if pct is None:
            return f"no non-null values to check ({noun} cannot be measured)", None, ""
        if mostly < 1:
            expected = f"max {(1 - mostly) * 100:.1f} %"
            return f"{pct:.1f} % {noun} ({expected}){examples}", pct / 100, expected
        shown = f"{pct:.2f}" if 0 < pct < 0.1 else f"{pct:.1f}"
        rows = "row" if count == 1 else "rows"
        return f"{count:,} {rows} {noun} ({shown} %; expected none){examples}", pct / 100, "none"
    observed = result.get("observed_value")
    if expectation_type == "expect_table_row_count_to_be_between":
        expected = _range(kwargs)
        return f"{_num(observed)} rows (expected {expected})", _float(observed), expected
    if expectation_type in {
        "expect_column_values_to_be_in_type_list",
        "expect_column_values_to_be_of_type",
    }:
        types = kwargs.get("type_list") or [kwargs.get("type_")]
        expected = ", ".join(map(str, types))
        return f"dtype {observed} (expected one of {expected})", None, expected
    if expectation_type in {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
    }:
        mismatch = (result.get("details") or {}).get("mismatched") or {}
        parts = []
        if isinstance(mismatch, dict):
            if mismatch.get("missing"):
                parts.append("missing " + ", ".join(map(str, mismatch["missing"])))
            if mismatch.get("unexpected"):
                parts.append("unexpected " + ", ".join(map(str, mismatch["unexpected"])))
        elif mismatch:
            parts.append(f"out of order: {mismatch}")
        text = "; ".join(parts) or f"{len(observed or [])} columns as expected"
        return text, None, "the contract's columns"
    if expectation_type == "expect_column_to_exist":
        return "present", None, "present"
    if expectation_type.startswith("expect_column_") and expectation_type.endswith(
        "_to_be_between"
    ):
        stat = expectation_type[len("expect_column_") : -len("_to_be_between")].replace("_", " ")
        expected = _range(kwargs)
        return f"{stat} {_num(observed)} (expected {expected})", _float(observed), expected
    if expectation_type.startswith("expect_table_") and expectation_type.endswith("_to_be_between"):
        expected = _range(kwargs)
        return f"{_num(observed)} (expected {expected})", _float(observed), expected
    return json.dumps(observed, default=str), _float(observed), ""


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _outcome(
    spec: SuiteSpec,
    config_: Mapping[str, Any],
    result: Mapping[str, Any],
    table_columns: set[str],
) -> ExpectationOutcome:
    """Turn one GX result dict into an `ExpectationOutcome`; a missing column is named as such."""
    exp_type = str(config_["type"])
    kwargs = dict(result.get("expectation_config", {}).get("kwargs") or config_.get("kwargs") or {})
    kwargs.pop("batch_id", None)
    body = result.get("result") or {}
    error = _exception_message(result.get("exception_info") or {})
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ",".join(map(str, kwargs["column_list"]))
    absent = [c for c in _columns_named(config_) if c not in table_columns]
    if error:
        if absent:
            observed = f"column {', '.join(absent)} missing from {spec.table}"
        else:
            observed = "could not evaluate: " + error.splitlines()[0]
        number, expected = None, ""
        success = False
    else:
        observed, number, expected = describe_result(exp_type, kwargs, body)
        success = bool(result.get("success"))
    details = {
        "kwargs": kwargs,
        "result": body,
        "notes": config_.get("notes"),
        "error": error,
    }
    return ExpectationOutcome(
        suite=spec.name,
        table=spec.table,
        column=str(column) if column is not None else None,
        expectation_type=exp_type,
        success=success,
        observed=observed,
        observed_number=number,
        expected=expected,
        description=config_.get("description"),
        details=details,
    )


# ------------------------------------------------------------------------------ storing results


def results_frame(result: GateResult) -> pd.DataFrame:
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
    return pd.DataFrame(
        rows,
        columns=[
            "run_id",
            "checked_at",
            "suite",
            "table_name",
            "column_name",
            "expectation_type",
            "success",
            "observed_value",
            "observed_number",
            "expected",
            "details",
        ],
    )


def store_results(result: GateResult, path: str | Path | None = None) -> int:
    """Append the run's rows to `quality.check_results` in one transaction; returns rows added."""
    frame = results_frame(result)
    view = f"__quality_{uuid.uuid4().hex[:8]}"
    with warehouse.session(path) as con:
        con.register(view, frame)
        try:
            con.execute("begin transaction")
            try:
                con.execute("create schema if not exists quality")
                con.execute(_RESULTS_DDL)
                con.execute(
                    f"insert into {RESULTS_TABLE} by name "
                    f"select * replace (details::json as details) from {warehouse.quote_ident(view)}"
                )
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise
        finally:
            con.unregister(view)
    return len(frame)


# ---------------------------------------------------------------------------------------- CLI


def report_lines(result: GateResult) -> list[str]:
    """The gate's report: one line per suite, one indented line per failed expectation."""
    width = max((len(s.suite) for s in result.suites), default=0)
    lines = []
    for suite in result.suites:
        status = "PASS" if suite.success else "FAIL"
        lines.append(
            f"{status} {suite.suite.ljust(width)}  {suite.passed}/{len(suite.outcomes)} expectations"
            f"  ({suite.rows:,} rows, {suite.seconds:.1f} s)"
        )
        lines.extend(f"  {o.line()}" for o in suite.failures)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the gate, store the results, print the report; 0 all pass, 1 a failure.

    User errors raise `UserError`, which `ml.cli.run` turns into one line and exit code 2.
    """
    os.environ["GX_ANALYTICS_ENABLED"] = "False"  # no usage statistics (the context says so too)
    parser = ArgumentParser(
        prog="python -m scripts.check_quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--suite",
        dest="suites",
        metavar="NAME",
        nargs="+",
        action="extend",
        help="suite(s) to run, e.g. raw.customers marts.loan_features (default: all)",
    )
    args = parser.parse_args(argv)
    suites = select_suites(load_suites(), args.suites)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # library chatter; the report says what matters
        result = run_gate(suites)
    stored = store_results(result)
    for line in report_lines(result):
        print(line)
    failed = [s.suite for s in result.suites if not s.success]
    verdict = (
        f"{len(failed)} of {len(result.suites)} suites failed"
        if failed
        else f"all {len(result.suites)} suites passed"
    )
    print(f"{verdict}; {stored} results appended to {RESULTS_TABLE} (run_id {result.run_id})")
    return 1 if failed else 0


if __name__ == "__main__":
    run(main, "scripts.check_quality")
