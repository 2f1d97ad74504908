"""Names that reach SQL or the file system: relations, identifiers, and columns matched by name.

User text never reaches SQL unquoted: relation names given on the command line must be plain
identifiers, and every identifier is quoted. Column names match as SQL matches them: exactly,
else ignoring case (and, for files people typed, surrounding blanks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from ml.core.errors import UserError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (double quotes, embedded quotes doubled)."""
    if not isinstance(name, str) or name == "" or "\x00" in name:
        raise UserError(f"invalid identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def parse_relation(relation: str, default_schema: str = "main", flag: str = "") -> tuple[str, str]:
    """Split `schema.table` (or `table`) into validated parts; refuse anything else.

    `flag` names the option the name came from, for the message (`--table`).
    """
    parts = relation.strip().split(".") if isinstance(relation, str) else []
    if len(parts) == 1:
        parts = [default_schema, parts[0]]
    if len(parts) != 2 or not all(_IDENT.fullmatch(p) for p in parts):
        where = f" for {flag}" if flag else ""
        raise UserError(
            f"invalid table name {relation!r}{where}: "
            "use schema.table with letters, digits and _ only"
        )
    return parts[0], parts[1]


def qualified(relation: str, default_schema: str = "main") -> str:
    """`schema.table` as a quoted SQL reference, validated by `parse_relation`."""
    schema, table = parse_relation(relation, default_schema)
    return f"{quote_ident(schema)}.{quote_ident(table)}"


def _key(name: object) -> str:
    return str(name).strip().casefold()


def find_column(columns: Sequence[str], name: str) -> str | None:
    """The column called `name`: the same name, else the one equal to it ignoring case and
    surrounding blanks (SQL names are case-insensitive: `loan_status` finds `Loan_Status`).
    None when there is no such column or more than one."""
    if name in columns:
        return name
    matches = [c for c in columns if _key(c) == _key(name)]
    return matches[0] if len(matches) == 1 else None


def require_column(columns: Sequence[str], name: str, what: str, where: str) -> str:
    """`find_column`, or a `UserError` naming the `what` column and a few of `where`'s columns."""
    found = find_column(columns, name)
    if found is not None:
        return found
    shown = ", ".join(repr(c) for c in columns[:8]) + (", ..." if len(columns) > 8 else "")
    raise UserError(f"{what} column {name!r} is not in {where} (its columns: {shown})")


def match_columns(columns: Sequence[object], wanted: Iterable[str]) -> dict[str, object]:
    """wanted name -> the input's column, by `find_column`'s rule; absent names are left out.

    Refuses (`UserError`) a wanted name that two columns would match, or that is itself
    repeated: which column is meant would be a guess.
    """
    names = list(columns)
    by_key: dict[str, list[object]] = {}
    for name in names:
        by_key.setdefault(_key(name), []).append(name)
    found: dict[str, object] = {}
    for want in wanted:
        if want in names:
            if names.count(want) > 1:
                raise UserError(f"input has more than one column named {want!r}")
            found[want] = want
            continue
        candidates = by_key.get(_key(want), [])
        if len(candidates) > 1:
            shown = " and ".join(repr(str(c)) for c in candidates[:2])
            raise UserError(f"input has columns {shown}: which one is {want!r} is ambiguous")
        if candidates:
            found[want] = candidates[0]
    return found
