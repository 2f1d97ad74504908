"""ml.fairness: metrics by group and gaps as fairlearn defines them, from evaluation rows, and
where a task's rows find their sensitive attributes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_ratio, equalized_odds_difference
from sklearn.metrics import mean_absolute_error, roc_auc_score

from ml.core.warehouse import open_warehouse
from ml.fairness.attributes import sensitive_attributes
from ml.fairness.metrics import COLUMNS, fairness_rows


def _evaluation(actual, predicted, threshold=0.5, model="xgboost", split="test") -> pd.DataFrame:
    n = len(actual)
    return pd.DataFrame(
        {
            "task": "t", "run_id": "r1", "model_name": model, "split": split,
            "entity_id": [str(i) for i in range(n)],
            "actual": np.asarray(actual, dtype=float),
            "predicted": np.asarray(predicted, dtype=float),
            "threshold": threshold, "is_champion": model == "xgboost",
        }
    )  # fmt: skip


def _value(rows: pd.DataFrame, attribute: str, metric: str, group=None) -> float:
    kind = "gap" if group is None else "group"
    if group == "(overall)":
        kind, group = "overall", None
    pick = (rows["attribute"] == attribute) & (rows["metric"] == metric) & (rows["kind"] == kind)
    pick &= rows["group_value"].isna() if group is None else rows["group_value"] == group
    (value,) = rows.loc[pick, "value"]
    return value


def test_binary_groups_and_gaps_are_fairlearns() -> None:
    rng = np.random.default_rng(0)
    n = 400
    gender = rng.choice(["f", "m"], n)
    actual = rng.integers(0, 2, n)
    score = np.clip(actual * 0.3 + rng.random(n) * 0.7 + (gender == "m") * 0.1, 0, 1)
    attributes = pd.DataFrame({"entity_id": [str(i) for i in range(n)], "gender": gender})
    rows = fairness_rows(_evaluation(actual, score, threshold=0.6), attributes, "binary")
    assert list(rows.columns) == list(COLUMNS)
    labels = (score >= 0.6).astype(int)
    for g in ("f", "m"):
        mask = gender == g
        assert _value(rows, "gender", "count", g) == mask.sum()
        assert _value(rows, "gender", "selection_rate", g) == pytest.approx(labels[mask].mean())
        positives = mask & (actual == 1)
        tpr = labels[positives].mean()
        assert _value(rows, "gender", "true_positive_rate", g) == pytest.approx(tpr)
        fpr = labels[mask & (actual == 0)].mean()
        assert _value(rows, "gender", "false_positive_rate", g) == pytest.approx(fpr)
        auc = roc_auc_score(actual[mask], score[mask])
        assert _value(rows, "gender", "roc_auc", g) == pytest.approx(auc)
    assert _value(rows, "gender", "count", "(overall)") == n
    ratio = demographic_parity_ratio(actual, labels, sensitive_features=gender)
    assert _value(rows, "gender", "demographic_parity_ratio") == pytest.approx(ratio)
    eod = equalized_odds_difference(actual, labels, sensitive_features=gender)
    assert _value(rows, "gender", "equalized_odds_difference") == pytest.approx(eod)
    assert 0 < ratio < 1 and eod > 0  # the score favours "m": the gaps are real


def test_a_group_with_one_class_has_nan_auc_and_missing_values_form_a_group() -> None:
    actual = [0, 1, 0, 1, 0, 0, 0]
    score = [0.1, 0.9, 0.4, 0.7, 0.2, 0.8, 0.3]
    region = ["n", "n", "n", "n", "s", "s", None]
    attributes = pd.DataFrame({"entity_id": [str(i) for i in range(7)], "region": region})
    rows = fairness_rows(_evaluation(actual, score), attributes, "binary")
    assert np.isnan(_value(rows, "region", "roc_auc", "s"))  # only negatives
    assert _value(rows, "region", "count", "missing") == 1
    counts = rows[(rows["metric"] == "count") & (rows["kind"] == "group")]
    assert counts["value"].sum() == 7


def test_regression_and_multiclass_measure_their_errors() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    predicted = np.array([1.5, 2.0, 2.0, 4.0, 7.0, 6.0])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    attributes = pd.DataFrame({"entity_id": [str(i) for i in range(6)], "age_group": groups})
    rows = fairness_rows(_evaluation(actual, predicted), attributes, "regression")
    mae = {g: mean_absolute_error(actual[groups == g], predicted[groups == g]) for g in "ab"}
    assert _value(rows, "age_group", "mean_absolute_error", "a") == pytest.approx(mae["a"])
    gap = _value(rows, "age_group", "mean_absolute_error_difference")
    assert gap == pytest.approx(abs(mae["a"] - mae["b"]))
    classes = np.array([0, 1, 2, 0, 1, 2])
    guessed = np.array([0, 1, 1, 0, 0, 0])
    rows = fairness_rows(_evaluation(classes, guessed), attributes, "multiclass")
    assert _value(rows, "age_group", "accuracy", "a") == pytest.approx(2 / 3)
    assert _value(rows, "age_group", "accuracy", "b") == pytest.approx(1 / 3)
    assert _value(rows, "age_group", "accuracy_difference") == pytest.approx(1 / 3)


def test_every_model_and_split_is_measured_and_nothing_without_attributes() -> None:
    actual, score = [0, 1, 0, 1], [0.2, 0.8, 0.6, 0.4]
    evaluation = pd.concat(
        [_evaluation(actual, score, model=m, split=s)
         for m in ("xgboost", "linear") for s in ("validation", "test")]
    )  # fmt: skip
    attributes = pd.DataFrame({"entity_id": ["0", "1", "2", "3"], "gender": list("ffmm")})
    rows = fairness_rows(evaluation, attributes, "binary")
    assert set(zip(rows["model_name"], rows["split"], strict=True)) == {
        ("xgboost", "validation"), ("xgboost", "test"), ("linear", "validation"),
        ("linear", "test"),
    }  # fmt: skip
    assert rows.loc[rows["model_name"] == "xgboost", "is_champion"].all()
    empty = fairness_rows(evaluation, attributes[["entity_id"]], "binary")
    assert empty.empty and list(empty.columns) == list(COLUMNS)


def test_attributes_come_from_the_relation_or_through_its_customer(tmp_path) -> None:
    path = tmp_path / "warehouse.duckdb"
    with open_warehouse(path) as wh:
        wh.execute("create schema marts")
        wh.execute(
            "create table marts.customer_features as select * from (values "
            "(1, '18-25', 'f', 'north'), (2, '65+', 'm', 'south')) "
            "as t(customer_id, age_group, gender, region)"
        )
        wh.execute(
            "create table marts.loans as select * from (values (10, 1), (11, 2), (12, 3)) "
            "as t(loan_id, customer_id)"
        )
        wh.execute("create table marts.other as select 1 as row_id, 2.0 as x")
        own = sensitive_attributes(wh, "marts.customer_features", "customer_id")
        through = sensitive_attributes(wh, "marts.loans", "loan_id")
        nothing = sensitive_attributes(wh, "marts.other", "row_id")
        unnumbered = sensitive_attributes(wh, "marts.loans", None)
    assert list(own.columns) == ["entity_id", "age_group", "gender", "region"]
    assert own["entity_id"].tolist() == ["1", "2"]
    through = through.sort_values("entity_id")
    assert through["entity_id"].tolist() == ["10", "11", "12"]
    assert through["gender"].tolist()[:2] == ["f", "m"] and pd.isna(through["gender"].iloc[2])
    assert list(nothing.columns) == list(unnumbered.columns) == ["entity_id"]
