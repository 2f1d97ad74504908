"""Engine-neutral checks on SQL text that users hand to a command (`scripts.query`).

    >>> first_keyword("-- latest\\n  WITH x AS (select 1) select * from x")
    'with'
    >>> is_query("select 1") and not is_query("drop table ml.model_runs")
    True

The engine has the last word (a read-only DuckDB connection refuses writes; the Spark engine
refuses a plan that is not a query), this module only gives the user a clear message first.
"""

from __future__ import annotations

import re

#: Statements that read and never change data, on both engines.
QUERY_KEYWORDS = frozenset(
    {"select", "with", "values", "table", "from", "show", "describe", "desc", "explain"}
    | {"summarize", "pivot", "unpivot"}
)
#: Words that make a statement starting with `with`, `from` or `explain` write: DuckDB and Spark
#: accept `with ... insert`, Spark `from t insert into ...`, and DuckDB's `explain analyze` runs
#: the statement it explains.
_WRITING = re.compile(
    r"\b(insert|update|delete|merge|create|drop|alter|truncate|copy|attach|detach|vacuum|"
    r"checkpoint|pragma|call)\b",
    re.IGNORECASE,
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRINGS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`")


def strip_comments_and_strings(sql: str) -> str:
    """`sql` without comments, and with every quoted string or identifier emptied."""
    return _STRINGS.sub("''", _COMMENTS.sub(" ", sql))


def first_keyword(sql: str) -> str:
    """The statement's first word, lower-case ('' for an empty statement)."""
    match = re.match(r"\s*\(*\s*([A-Za-z_]+)", strip_comments_and_strings(sql))
    return match.group(1).lower() if match else ""


def statements(sql: str) -> list[str]:
    """`sql` split at the semicolons outside strings and comments, empty statements dropped."""
    bare = strip_comments_and_strings(sql)
    return [part for part in bare.split(";") if part.strip()]


def is_query(sql: str) -> bool:
    """True for ONE statement that only reads: it starts with a query keyword and, when it starts
    with `with` or `from` (which may lead into an insert), no writing keyword follows."""
    parts = statements(sql)
    if len(parts) != 1:
        return False
    keyword = first_keyword(parts[0])
    if keyword not in QUERY_KEYWORDS:
        return False
    return keyword not in {"with", "from", "explain"} or not _WRITING.search(parts[0])
