"""The promotion decision: modes, evidence and gates, and its stored row."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from ml.fairness.gate import GateCheck, GateResult
from ml.governance.evidence import delong
from ml.governance.promotion import COLUMNS, Decision, Evidence, decide

DEPLOYED = {"deployment_id": 1, "run_id": "r1", "model_name": "linear"}
PASSED = GateResult([GateCheck("gender", "demographic_parity_ratio", 0.9, ">=", 0.8, 2, True)])
FAILED = GateResult([GateCheck("gender", "demographic_parity_ratio", 0.7, ">=", 0.8, 2, False)])


def _evidence(better: bool) -> Evidence:
    y = [0, 1] * 200
    strong = [0.1 + 0.8 * v for v in y]
    weak = [0.5 + (0.01 if i % 3 else -0.01) for i in range(len(y))]
    challenger, deployed = (strong, weak) if better else (weak, weak)
    return Evidence(delong(y, challenger, deployed), n_rows=len(y))


def _decision(mode="auto", better=True, quality=True, fairness=PASSED, deployed=DEPLOYED):
    return decide(
        Decision(
            "loan_repayment",
            {"run_id": "r2", "model_name": "xgboost"},
            deployed,
            mode,
            "roc_auc",
            _evidence(better),
            quality,
            "" if quality else "the gate failed",
            fairness,
        )  # fmt: skip
    )


def test_auto_promotes_only_a_significant_gain_with_both_gates_passed() -> None:
    assert _decision().promoted
    no_gain = _decision(better=False)
    assert not no_gain.promoted and no_gain.reason == "no significant gain"
    unfair = _decision(fairness=FAILED)
    assert not unfair.promoted and unfair.reason == "the fairness gate failed"
    bad_data = _decision(quality=False)
    assert not bad_data.promoted and "quality" in bad_data.reason


def test_never_force_and_first() -> None:
    assert not _decision("never").promoted
    forced = _decision("force", better=False, fairness=FAILED)
    assert forced.promoted and "no significant gain" in forced.reason
    assert "fairness" in forced.reason
    first = _decision("first", better=False, deployed=None)
    assert first.promoted and "first" in first.reason


def test_no_evidence_is_no_gain() -> None:
    d = decide(
        Decision(
            "t",
            {"run_id": "r2", "model_name": "m"},
            DEPLOYED,
            "auto",
            "roc_auc",
            Evidence(None, 12, 0, "12 labelled rows held out by both models"),
            True,
            "",
            PASSED,
        )  # fmt: skip
    )
    assert not d.promoted and d.reason.startswith("12 labelled rows")
    row = d.frame(datetime(2026, 12, 6))
    assert pd.isna(row["p_value"].iloc[0]) and not row["significant"].iloc[0]


def test_the_stored_row_holds_the_evidence() -> None:
    d = _decision()
    row = d.frame(datetime(2026, 12, 6, 10), deployment_id=2)
    assert list(row.columns) == list(COLUMNS) and len(row) == 1
    r = row.iloc[0]
    c = d.evidence.comparison
    assert r["challenger_score"] == pytest.approx(c.challenger)
    assert r["difference"] == pytest.approx(c.challenger - c.deployed)
    assert r["ci_low"] < r["difference"] < r["ci_high"] and r["p_value"] < 0.05
    assert r["test"] == "DeLong" and r["promoted"] and r["deployment_id"] == 2
    assert r["deployed_deployment_id"] == 1 and r["fairness_passed"]
    assert "gender demographic_parity_ratio 0.900 >= 0.8 ok" in r["fairness_checks"]
    lines = d.lines()
    assert lines[0].startswith("loan_repayment: challenger r2/xgboost PROMOTED (auto)")
    assert any(line.startswith("  evidence: roc_auc") for line in lines)
