"""The fairness gate: gaps over the groups large enough to count, against the limits."""

from __future__ import annotations

import pandas as pd
import pytest

from ml.fairness.gate import (
    ODDS_DIFFERENCE,
    PARITY_RATIO,
    FairnessLimits,
    check_fairness,
    default_limits,
    gaps_of_large_groups,
)


def _rows(groups: dict[str, dict[str, float]], attribute="gender", run="r1", model="xgboost"):
    out = []
    for group, metrics in groups.items():
        for metric, value in metrics.items():
            out.append((run, model, "test", attribute, "group", group, metric, value))
    return pd.DataFrame(
        out,
        columns=["run_id", "model_name", "split", "attribute", "kind", "group_value", "metric",
                 "value"],
    )  # fmt: skip


def _group(n, rate, tpr, fpr):
    return {"count": n, "selection_rate": rate, "true_positive_rate": tpr,
            "false_positive_rate": fpr}  # fmt: skip


def test_gaps_are_fairlearns_over_the_large_groups() -> None:
    rows = _rows(
        {
            "female": _group(400, 0.20, 0.70, 0.10),
            "male": _group(500, 0.25, 0.78, 0.12),
            "other": _group(10, 0.90, 0.10, 0.90),  # too small to count
        }
    )
    gaps, n = gaps_of_large_groups(rows, min_group_size=50)
    assert n == 2
    assert gaps[PARITY_RATIO] == pytest.approx(0.20 / 0.25)
    assert gaps[ODDS_DIFFERENCE] == pytest.approx(0.08)
    gaps_all, n_all = gaps_of_large_groups(rows, min_group_size=0)
    assert n_all == 3 and gaps_all[PARITY_RATIO] == pytest.approx(0.20 / 0.90)


def test_the_gate_passes_and_fails_on_its_limits() -> None:
    rows = _rows({"female": _group(400, 0.20, 0.70, 0.10), "male": _group(500, 0.25, 0.78, 0.12)})
    ok = check_fairness(rows, "r1", "xgboost", FairnessLimits(("gender",)))
    assert ok.passed and len(ok.checks) == 2 and not ok.failures
    strict = check_fairness(
        rows, "r1", "xgboost", FairnessLimits(("gender",), min_parity_ratio=0.9)
    )
    assert not strict.passed
    assert strict.failures == ["gender demographic_parity_ratio 0.800 >= 0.9 FAILS"]
    odds = check_fairness(
        rows, "r1", "xgboost", FairnessLimits(("gender",), max_odds_difference=0.05)
    )
    assert not odds.passed and "equalized_odds_difference 0.080" in odds.failures[0]


def test_an_attribute_that_cannot_be_measured_fails_the_gate_with_a_note() -> None:
    rows = _rows({"female": _group(400, 0.2, 0.7, 0.1), "male": _group(20, 0.25, 0.78, 0.12)})
    result = check_fairness(rows, "r1", "xgboost", FairnessLimits(("gender", "region")))
    assert not result.passed
    assert len(result.notes) == 2 and "gender" in result.notes[0] and "region" in result.notes[1]


def test_other_models_rows_are_not_read() -> None:
    rows = pd.concat(
        [
            _rows({"f": _group(400, 0.2, 0.7, 0.1), "m": _group(500, 0.25, 0.78, 0.12)}),
            _rows({"f": _group(400, 0.1, 0.7, 0.1), "m": _group(500, 0.5, 0.78, 0.12)}, run="r2"),
        ]
    )
    assert check_fairness(rows, "r1", "xgboost", FairnessLimits(("gender",))).passed
    assert not check_fairness(rows, "r2", "xgboost", FairnessLimits(("gender",))).passed


def test_defaults_gate_the_loan_decision_only() -> None:
    assert default_limits("loan_repayment").attributes == ("gender",)
    assert default_limits("customer_satisfaction").attributes == ()
    report_only = check_fairness(pd.DataFrame(), "r", "m", default_limits("customer_segment"))
    assert report_only.passed and not report_only.checks
