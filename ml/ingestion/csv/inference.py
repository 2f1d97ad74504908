"""The type of every column of a CSV, decided over every row (not a sample), in DuckDB.

- Missing: an empty or whitespace-only field and `NA`, `N/A`, `#N/A`, `NaN`, `NULL` (any case).
- BIGINT: integers without a leading zero or `+` (codes such as `0001` stay text); integers
  beyond BIGINT stay text (identifiers), among decimals they are DOUBLE.
- DOUBLE: decimals and infinities (kept, and counted in the summary).
- BOOLEAN only for `true`/`false`; DATE, TIMESTAMP, TIMESTAMP WITH TIME ZONE for ISO forms.
- Everything else is VARCHAR, exactly as in the file.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

#: Field texts that mean "missing" in every column (compared trimmed and case-insensitively).
MISSING_MARKERS = ("", "na", "n/a", "#n/a", "nan", "null")
# Regular expressions (RE2, full match) for the text of one field; DuckDB's casts ignore the
# surrounding blanks these allow.
_B = r"[ \t\r\n]*"
_MISSING_RE = _B + "((?i)" + "|".join(re.escape(m) for m in MISSING_MARKERS if m) + ")?" + _B
_EXP = r"([eE][+-]?[0-9]+)"
_SMALL_INT_RE = _B + r"-?(0|[1-9][0-9]{0,17})" + _B  # 18 digits always fit a BIGINT
_LONG_INT_RE = _B + r"-?[1-9][0-9]{18,}" + _B
_LEADING_ZERO_RE = _B + r"-?0[0-9]+(\.[0-9]*)?" + _EXP + "?" + _B
# A decimal point or an exponent, no leading zero: exclusive of the integer patterns above.
_DECIMAL_RE = _B + rf"-?(((0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+){_EXP}?|(0|[1-9][0-9]*){_EXP})" + _B
_INF_RE = _B + r"-?(?i)(inf|infinity)" + _B
_BOOL_RE = _B + r"(?i)(true|false)" + _B
_DATE_RE = _B + r"[0-9]{4}-[0-9]{2}-[0-9]{2}" + _B
_DATETIME_RE = _B + r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
_ZONED_RE = _DATETIME_RE + r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)" + _B
_DATETIME_RE += _B
#: Rows read to guess each column's kind before one pass over all rows checks the guess.
_SAMPLE_ROWS = 10_000

# Kinds of a single field, as bit flags OR-ed over a column.
_INT, _LEADING_ZERO, _HUGE_INT, _FLOAT, _INF, _BOOL, _DATE_K, _DATETIME_K, _ZONED, _TEXT = (
    1 << k for k in range(10)
)


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _match(c: str, regex: str) -> str:
    return f"regexp_full_match({c}, {sql_literal(regex)})"


def _branches(c: str) -> dict[int, str]:
    """SQL `when` branches that give field `c` its kind flag. Their patterns are mutually
    exclusive, so they may be tried in any order (the most common kind first is cheapest: a
    CASE evaluates a branch only on the rows no earlier branch took)."""

    def cast_or(duck_type: str, ok: int, failed: int) -> str:
        return f"case when try_cast({c} as {duck_type}) is null then {failed} else {ok} end"

    return {
        _INT: f"when {_match(c, _SMALL_INT_RE)} then {_INT}",
        _LEADING_ZERO: f"when {_match(c, _LEADING_ZERO_RE)} then {_LEADING_ZERO}",
        _HUGE_INT: f"when {_match(c, _LONG_INT_RE)} then {cast_or('bigint', _INT, _HUGE_INT)}",
        _FLOAT: f"when {_match(c, _DECIMAL_RE)} then "
        f"case when isinf(try_cast({c} as double)) then {_INF} else {_FLOAT} end",
        _INF: f"when {_match(c, _INF_RE)} then {_INF}",
        _BOOL: f"when {_match(c, _BOOL_RE)} then {_BOOL}",
        _DATE_K: f"when {_match(c, _DATE_RE)} then {cast_or('date', _DATE_K, _TEXT)}",
        _DATETIME_K: f"when {_match(c, _DATETIME_RE)} then "
        f"{cast_or('timestamp', _DATETIME_K, _TEXT)}",
        _ZONED: f"when {_match(c, _ZONED_RE)} then {cast_or('timestamptz', _ZONED, _TEXT)}",
    }


def _kind_sql(c: str, first: Sequence[int] = ()) -> str:
    """SQL: the kind flag of field `c`: 0 when missing, `_TEXT` when no other kind fits; the
    branches of the kinds in `first` are tried first."""
    branches = _branches(c)
    order = [k for k in first if k in branches] + [k for k in branches if k not in first]
    body = "\n        ".join(branches[k] for k in order)
    return f"case when {_is_missing(c)} then 0\n        {body}\n        else {_TEXT} end"


def _is_missing(c: str) -> str:
    return f"({c} is null or {_match(c, _MISSING_RE)})"


def _decide(mask: int) -> tuple[str, tuple[str, ...]]:
    """DuckDB type and notes for a column whose non-missing fields have the OR-ed kinds `mask`."""
    numeric = _INT | _HUGE_INT | _FLOAT | _INF
    if mask == 0:
        return "VARCHAR", ("no values (all missing)",)
    if mask == _BOOL:
        return "BOOLEAN", ()
    if mask == _INT:
        return "BIGINT", ()
    if mask & _LEADING_ZERO and not mask & ~(numeric | _LEADING_ZERO):
        return "VARCHAR", ("numbers with leading zeros: kept as text",)
    if mask & _HUGE_INT and not mask & ~(_INT | _HUGE_INT):
        return "VARCHAR", ("integers beyond the BIGINT range: kept as text",)
    if not mask & ~numeric:
        return "DOUBLE", ()
    if not mask & ~_DATE_K:
        return "DATE", ()
    if not mask & ~(_DATE_K | _DATETIME_K):
        return "TIMESTAMP", ()
    if mask == _ZONED:
        return "TIMESTAMP WITH TIME ZONE", ()
    return "VARCHAR", ()


def cast_sql(c: str, duck_type: str, has_markers: bool) -> str:
    """SQL: field `c` as `duck_type` (text and booleans are finished by `finish`).

    The inference checked that every value that is not missing casts, so a cast that fails
    is a missing marker. (No CASE here: DuckDB sets one up per column, which is slow for
    thousands of columns.)
    """
    if duck_type in ("VARCHAR", "BOOLEAN"):
        return c
    return f"{'try_cast' if has_markers else 'cast'}({c} as {duck_type})"


def finish(data: pa.ChunkedArray, duck_type: str, has_markers: bool) -> pa.ChunkedArray:
    """The column from `cast_sql` with missing markers as nulls and booleans as booleans."""
    if duck_type == "BOOLEAN":
        word = pc.utf8_lower(pc.utf8_trim_whitespace(data))
        return pc.if_else(
            pc.equal(word, "true"), True, pc.if_else(pc.equal(word, "false"), False, None)
        )
    if not has_markers:
        return data
    if duck_type == "VARCHAR":
        missing = pc.match_substring_regex(data, f"^(?:{_MISSING_RE})$")
    elif duck_type == "DOUBLE":
        missing = pc.is_nan(data)  # `NaN` is a marker; a value is never NaN
    else:
        return data
    return pc.if_else(missing, pa.scalar(None, data.type), data)


@dataclass(frozen=True)
class Inferred:
    duck_type: str
    notes: tuple[str, ...]
    has_markers: bool  # some non-null field is a missing marker or blank


def infer_types(con: duckdb.DuckDBPyConnection, width: int) -> list[Inferred]:
    """Type, notes and missing markers of every column `c0..` of `src`, over all rows.

    The fields are unpivoted into one long column (NULLs, the empty fields, drop out), so that
    one kind expression serves any number of columns. The first rows give each column's likely
    kinds; a column with text (or leading-zero codes) there is text whatever follows and only
    needs its missing markers found. The other columns get one pass over all rows, grouped by
    their likely kinds, which are tested first.
    """

    def by_column(columns: Sequence[int] | None, first: Sequence[int], aggs: str) -> list[tuple]:
        relation = (
            f"select * from src limit {_SAMPLE_ROWS}"
            if columns is None
            else f"select {', '.join(f'c{i}' for i in columns)} from src"
        )
        return con.execute(
            f"select col, {aggs} from (select col, v, {_kind_sql('v', first)} as k "
            f"from (unpivot ({relation}) on columns(*) into name col value v)) group by all"
        ).fetchall()

    counts: dict[int, dict[int, int]] = {i: {} for i in range(width)}
    for col, kind, n in by_column(None, (), "k, count(*)"):
        counts[int(col[1:])][int(kind)] = int(n)
    masks = dict.fromkeys(range(width), 0)  # 0 stays for a column without any value
    markers = dict.fromkeys(range(width), False)
    text: list[int] = []
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, seen in counts.items():
        mask = functools.reduce(operator.or_, seen, 0)
        if mask & (_TEXT | _LEADING_ZERO):
            masks[i] = mask
            text.append(i)
        else:
            first = tuple(sorted((k for k in seen if k), key=lambda k: -seen[k]))
            groups.setdefault(first, []).append(i)
    for first, columns in groups.items():
        for col, mask, blank in by_column(columns, first, "bit_or(k), bool_or(k = 0)"):
            masks[int(col[1:])], markers[int(col[1:])] = int(mask or 0), bool(blank)
    if text:
        for col, blank in by_column(text, (), f"bool_or({_is_missing('v')})"):
            markers[int(col[1:])] = bool(blank)
    return [Inferred(*_decide(masks[i]), markers[i]) for i in range(width)]
