"""Reading a Great Expectations result as people read it: one outcome per expectation with a
one-line observation, and the gate's report (one line per suite, one per failure)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ml.quality.outcomes import ExpectationOutcome, GateResult
from ml.quality.suites import SuiteSpec, columns_named


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


def outcome(
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
    absent = [c for c in columns_named(config_) if c not in table_columns]
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
