"""The loan decision outside the warehouse says what marts.loan_decisions says: the macros
themselves (rendered with Jinja, run in DuckDB) against `ml.serving.decisions`."""

from __future__ import annotations

import math

import duckdb
import jinja2
import numpy as np
import pandas as pd
import pytest

from ml.core.config import DBT_PROJECT_DIR
from ml.core.errors import UserError
from ml.explanation.tables import value_text as stored_text
from ml.serving import decisions

MACROS = DBT_PROJECT_DIR / "macros"


def _macro_sql(call: str) -> str:
    """The SQL a call of the project's reason macros renders to."""
    source = "".join(
        (MACROS / f"{name}.sql").read_text() for name in ("feature_value_text", "reason_text")
    )
    return jinja2.Environment().from_string(source + "{{ " + call + " }}").render().strip()


VALUES = [
    0, 1, 36, 580.0, 0.52, 0.565, 0.005, 0.015, -0.005, -2.675, 12.5, 1234567.891, 1e-7,
    123456789.125, 1e15, -3.999, 2.345, 1.005, 99.995, float("nan"), None,
]  # fmt: skip
TEXTS = ["A", " home ", "", "debt_consolidation", "3", "nan", None]


@pytest.mark.parametrize("values", [VALUES, TEXTS], ids=["numbers", "texts"])
def test_value_text_matches_the_macro(values) -> None:
    numeric = values is VALUES
    series = pd.Series(values, dtype="float64" if numeric else "object")
    stored = stored_text(series)  # what ml.prediction_explanations.feature_value holds
    sql = _macro_sql("feature_value_text('v')")
    con = duckdb.connect()
    con.execute("create table t (i integer, v varchar)")
    con.executemany("insert into t values (?, ?)", list(enumerate(stored.tolist())))
    from_sql = [r[0] for r in con.execute(f"select {sql} from t order by i").fetchall()]
    from_python = [decisions.value_text(v) for v in values]
    assert from_python == from_sql


def test_reason_text_matches_the_macro() -> None:
    sql = _macro_sql("reason_text(\"'credit score'\", 'v', 'c')")
    con = duckdb.connect()
    cases = [("580", 0.3), ("0.565", -1.0), ("12.5", 0.0), (None, 2.0)]
    for value, contribution in cases:
        got = con.execute(f"select {sql} from (select ? as v, ? as c)", [value, contribution])
        expected = got.fetchone()[0]
        python_value = None if value is None else float(value)
        assert decisions.reason_text("credit score", python_value, contribution) == expected


def test_cutoffs_follow_the_dbt_vars_and_refuse_what_the_macro_refuses() -> None:
    default = decisions.Cutoffs.from_vars()
    assert default.at(0.4) == pytest.approx((0.2, 0.4))
    fixed = decisions.Cutoffs.from_vars(
        {"loan_approve_below": 0.1, "loan_decline_at_or_above": 0.5}
    )
    assert fixed.at(0.3) == (0.1, 0.5)
    for bad in (
        {"loan_approve_threshold_factor": "x"},
        {"loan_decline_threshold_factor": -1},
        {"loan_approve_below": 1.5},
        {"loan_approve_threshold_factor": 2, "loan_decline_threshold_factor": 1},
        {"loan_approve_below": 0.6, "loan_decline_at_or_above": 0.5},
    ):
        with pytest.raises(UserError):
            decisions.Cutoffs.from_vars(bad)
    with pytest.raises(UserError, match="cross"):  # absolute approve above a derived decline
        decisions.Cutoffs.from_vars({"loan_approve_below": 0.5}).at(0.2)


def test_decide_at_the_cutoffs() -> None:
    assert decisions.decide(0.1, 0.2, 0.4) == "approve"
    assert decisions.decide(0.2, 0.2, 0.4) == "review"
    assert decisions.decide(0.4, 0.2, 0.4) == "decline"
    assert decisions.decide(math.nan, 0.2, 0.4) is None


def test_reasons_pick_the_direction_of_the_decision_among_the_top_k() -> None:
    columns = ["a", "b", "c", "d"]
    shap = np.array([[0.5, -0.4, 0.3, -0.1], [0.5, -0.4, 0.3, -0.1], [0.0, 0.0, 0.0, -0.2]])
    rows = [{"a": 1, "b": 2.5, "c": "x", "d": None}] * 3
    got = decisions.reasons(
        shap, columns, rows, ["decline", "approve", "approve"], {"a": "alpha"}, top_k=3
    )
    assert got[0] == ["alpha 1 raises risk", "c x raises risk"]
    assert got[1] == ["b 2.5 lowers risk"]  # d lowers risk too, but is not in the top 3
    assert got[2] == ["d missing lowers risk"]
    assert decisions.reasons(shap[:1], columns, rows[:1], [None], {}) == [[]]


def test_feature_labels_are_the_seed() -> None:
    labels = decisions.feature_labels()
    assert labels["credit_score"] == "credit score"
    assert decisions.feature_labels(DBT_PROJECT_DIR / "no_such.csv") == {}
