"""Metrics and the decision threshold."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from ml.core.tasks import ALL_METRICS, METRICS, greater_is_better
from ml.training import evaluate


def test_regression_metrics_match_definitions() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    p = np.array([1.5, 2.0, 2.5, 5.0])
    m = evaluate.regression_metrics(y, p)
    assert m["mae"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 0.25 + 1) / 4))
    assert m["r2"] == pytest.approx(1 - 1.5 / 5.0)


def test_binary_metrics_at_threshold() -> None:
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.1, 0.6, 0.55, 0.9, 0.3, 0.2])
    m = evaluate.binary_metrics(y, p, threshold=0.5)
    # predicted positive: rows 1, 2, 3 -> tp=2, fp=1, fn=1
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert evaluate.confusion(y, (p >= 0.5).astype(int)) == {"tn": 2, "fp": 1, "fn": 1, "tp": 2}


def test_binary_metrics_on_one_class_are_nan_not_errors() -> None:
    m = evaluate.binary_metrics(np.zeros(5, int), np.linspace(0, 1, 5))
    assert np.isnan(m["roc_auc"])


def test_multiclass_metrics_macro() -> None:
    classes = [0, 1, 2]
    y = np.array([0, 1, 2, 2])
    proba = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    m = evaluate.multiclass_metrics(y, proba, classes)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(skm.f1_score(y, proba.argmax(1), average="macro"))
    assert 0 < m["log_loss"] < 2


def test_threshold_maximises_f1_on_validation() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    p = np.clip(0.35 * y + rng.normal(0.3, 0.2, 2000), 0, 1)
    t = evaluate.choose_threshold(y, p)
    best = max(np.unique(p), key=lambda c: skm.f1_score(y, (p >= c).astype(int)))
    assert skm.f1_score(y, (p >= t).astype(int)) == pytest.approx(
        skm.f1_score(y, (p >= best).astype(int))
    )


def test_threshold_with_costs_moves_the_right_way() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 3000)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 3000), 0, 1)
    cheap_fn = evaluate.choose_threshold(y, p, cost_fp=10.0, cost_fn=1.0)
    costly_fn = evaluate.choose_threshold(y, p, cost_fp=1.0, cost_fn=10.0)
    assert costly_fn < cheap_fn  # missing a default costs more: flag more applications


def test_metric_directions() -> None:
    assert greater_is_better("roc_auc")
    assert not greater_is_better("rmse")
    assert set(ALL_METRICS) >= {m for names in METRICS.values() for m in names}


@pytest.mark.parametrize(
    ("problem", "metric"),
    [("regression", "r2"), ("binary", "roc_auc"), ("multiclass", "f1"),
     ("multiclass", "accuracy"), ("binary", "brier")],
)  # fmt: skip
def test_primary_computes_the_same_number_as_score(problem, metric) -> None:
    rng = np.random.default_rng(4)
    n = 500
    if problem == "regression":
        y, pred, classes = rng.normal(size=n), rng.normal(size=n), None
    elif problem == "binary":
        y, pred, classes = rng.integers(0, 2, n), rng.random(n), None
    else:
        classes = [2, 5, 9, 11]  # labels that are not positions
        y = rng.choice(classes, n)
        pred = rng.dirichlet(np.ones(4), n)
        pred[:, 3] = 0.0  # a class never predicted: its F1 is 0 (zero_division)
        pred /= pred.sum(axis=1, keepdims=True)
    expected = evaluate.score(problem, y, pred, classes)[metric]
    assert evaluate.primary(problem, metric, y, pred, classes) == pytest.approx(expected, abs=1e-12)
