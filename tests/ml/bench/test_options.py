"""ml.bench.options: the sizes and tasks a benchmark run takes."""

from __future__ import annotations

import pytest

from ml.bench.options import parse_sizes, parse_tasks
from ml.core.errors import UserError


@pytest.mark.parametrize(
    ("text", "sizes"),
    [("100000,1e6,10_000_000", [100_000, 1_000_000, 10_000_000]), ("50, 20,50", [20, 50])],
)
def test_parse_sizes(text, sizes) -> None:
    assert parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "abc", "5", "1.5e3.2", "100.5", "inf"])
def test_parse_sizes_refuses_nonsense(text) -> None:
    with pytest.raises(UserError, match="--sizes"):
        parse_sizes(text)


def test_parse_tasks_trains_the_scoring_task_first() -> None:
    """Scoring needs the loan_repayment models, so that task trains first."""
    assert parse_tasks("customer_segment, loan_repayment") == [
        "loan_repayment",
        "customer_segment",
    ]
    assert parse_tasks("customer_satisfaction") == ["customer_satisfaction"]


def test_parse_tasks_refuses_an_unknown_task() -> None:
    with pytest.raises(UserError, match="unknown task 'nope'"):
        parse_tasks("loan_repayment,nope")
