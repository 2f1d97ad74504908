"""What a gate run found: one outcome per expectation, grouped by suite, for one run."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


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
