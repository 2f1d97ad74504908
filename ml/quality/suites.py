"""The gate's suites: Great Expectations 1.x `ExpectationSuite` files in `expectations/`, one per
table (`meta.table`), loaded, checked and selected by name, raw before marts."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.core import config
from ml.core.errors import UserError
from ml.core.names import parse_relation

SUITES_DIR = config.PROJECT_ROOT / "expectations"

_LAYERS = {"raw": 0, "staging": 1, "intermediate": 2, "marts": 3}
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)


class SuiteError(UserError):
    """A suite that does not exist, or a suite file that cannot be read as an ExpectationSuite."""


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
        parse_relation(table)
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


#: The first day of the simulated world (docs/data_contract.md): day counts cannot exceed the
#: days from it to the as-of date.
WORLD_START = dt.date(2018, 1, 1)


def suite_parameters(as_of_date: str | None = None) -> dict[str, str | float]:
    """Values for the `$PARAMETER`s the suites use: `as_of_date` (the dbt var by default; the
    latest load once batches are appended) and `world_span_days`, the days from the world's start
    to it (the largest tenure or recency a row can have)."""
    day = as_of_date or config.as_of_date()
    span = (dt.date.fromisoformat(day) - WORLD_START).days
    return {"as_of_date": f"{day}T00:00:00", "world_span_days": float(span)}


def columns_named(expectation: Mapping[str, Any]) -> tuple[str, ...]:
    """The columns an expectation configuration names (`column`, `column_list`, ...)."""
    kwargs = expectation.get("kwargs") or {}
    names = [kwargs[k] for k in _COLUMN_KWARGS if isinstance(kwargs.get(k), str)]
    for key in _COLUMN_LIST_KWARGS:
        names.extend(kwargs.get(key) or [])
    return tuple(dict.fromkeys(names))
