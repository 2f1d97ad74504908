"""The paired comparison of a challenger with the deployed model: DeLong and the paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from ml.governance.evidence import ALPHA, Comparison, compare, delong, paired_bootstrap


def _binary(n: int, seed: int = 0, noise: tuple[float, float] = (1.0, 1.0), decimals: int = 1):
    """Labels and two correlated score vectors (rounded, so that there are ties)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    shared = rng.normal(size=n)
    scores = [np.round(y + shared + rng.normal(0, s, n), decimals) for s in noise]
    return y, scores[0], scores[1]


def _slow_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong's variance of AUC(a) - AUC(b) and its p-value, from the structural components."""
    pos, neg = y == 1, y == 0
    m, n = pos.sum(), neg.sum()
    v10, v01 = [], []
    for s in (a, b):
        x, z = s[pos][:, None], s[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)  # m x n
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    s = np.cov(np.vstack(v10)) / m + np.cov(np.vstack(v01)) / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    diff = np.mean(v10[0]) - np.mean(v10[1])
    return float(var), float(2 * norm.sf(abs(diff) / math.sqrt(var)))


def test_delong_aucs_are_sklearns() -> None:
    y, a, b = _binary(500, decimals=1)
    result = delong(y, a, b)
    assert result.challenger == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result.deployed == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert result.difference == pytest.approx(result.challenger - result.deployed)
    assert result.test == "DeLong" and result.n_rows == 500 and result.alpha == ALPHA


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_delong_variance_and_p_value_match_the_direct_computation(seed: int) -> None:
    y, a, b = _binary(300, seed=seed, noise=(1.0, 1.3), decimals=0)  # many ties
    result = delong(y, a, b)
    var, p = _slow_delong(y, a, b)
    z = norm.ppf(1 - ALPHA / 2)
    assert ((result.ci_high - result.ci_low) / (2 * z)) ** 2 == pytest.approx(var, rel=1e-9)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert (result.ci_low + result.ci_high) / 2 == pytest.approx(result.difference)


def test_a_clearly_better_challenger_is_significant() -> None:
    y, strong, weak = _binary(2000, noise=(0.3, 3.0))
    better = delong(y, strong, weak)
    assert better.gain > 0 and better.p_value < 1e-6 and better.ci_low > 0
    assert better.significant
    worse = delong(y, weak, strong)
    assert worse.gain < 0 and worse.p_value < 1e-6
    assert not worse.significant


@pytest.mark.parametrize("use_delong", [True, False])
def test_the_same_model_is_not_significant(use_delong: bool) -> None:
    y, a, _ = _binary(1000)
    result = delong(y, a, a) if use_delong else paired_bootstrap("roc_auc", y, a, a.copy())
    assert result.difference == 0 and result.p_value == 1.0
    assert result.ci_low == 0 == result.ci_high
    assert not result.significant


def test_delong_and_the_bootstrap_agree_on_the_interval() -> None:
    y, a, b = _binary(2000, seed=4, noise=(1.0, 1.2), decimals=2)
    d = delong(y, a, b)
    boot = paired_bootstrap("roc_auc", y, a, b, seed=1)
    assert boot.difference == pytest.approx(d.difference, abs=1e-12)
    width = d.ci_high - d.ci_low
    assert boot.ci_low == pytest.approx(d.ci_low, abs=0.1 * width)
    assert boot.ci_high == pytest.approx(d.ci_high, abs=0.1 * width)
    assert boot.significant == d.significant


@pytest.mark.parametrize(
    ("metric", "sklearn_metric"),
    [("r2", r2_score), ("rmse", root_mean_squared_error), ("mae", mean_absolute_error)],
)
def test_bootstrap_regression_metrics_are_sklearns(metric: str, sklearn_metric) -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=400)
    good, bad = y + rng.normal(0, 0.5, 400), y + rng.normal(0, 0.7, 400)
    result = paired_bootstrap(metric, y, good, bad, n_resamples=300)
    assert result.challenger == pytest.approx(sklearn_metric(y, good))
    assert result.deployed == pytest.approx(sklearn_metric(y, bad))
    assert result.gain > 0 and result.significant  # rmse, mae: lower is better
    assert result.difference < 0 if metric in ("rmse", "mae") else result.difference > 0
    swapped = paired_bootstrap(metric, y, bad, good, n_resamples=300)
    assert swapped.gain < 0 and not swapped.significant


def test_bootstrap_is_seeded() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=300)
    a, b = y + rng.normal(size=300), y + rng.normal(size=300)
    first, again = (paired_bootstrap("r2", y, a, b, seed=7, n_resamples=500) for _ in range(2))
    assert first == again
    other = paired_bootstrap("r2", y, a, b, seed=8, n_resamples=500)
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)
    assert other.difference == first.difference
    assert first.test == "paired bootstrap (500 resamples)"


def test_bootstrap_macro_f1_and_accuracy_on_string_labels() -> None:
    rng = np.random.default_rng(0)
    labels = ["high", "low", "medium"]
    y = np.array(labels)[rng.integers(0, 3, 1500)]
    good = np.where(rng.random(1500) < 0.8, y, "low")
    bad = np.where(rng.random(1500) < 0.5, y, "low")
    f1 = compare("multiclass", "f1", y, good, bad, labels=labels)
    assert f1.challenger == pytest.approx(f1_score(y, good, labels=labels, average="macro"))
    assert f1.deployed == pytest.approx(f1_score(y, bad, labels=labels, average="macro"))
    assert f1.test.startswith("paired bootstrap") and f1.significant
    accuracy = paired_bootstrap("accuracy", y, bad, good)
    assert accuracy.challenger == pytest.approx(accuracy_score(y, bad))
    assert accuracy.gain < 0 and not accuracy.significant


def test_compare_picks_delong_for_a_binary_auc_only() -> None:
    y, a, b = _binary(400)
    assert compare("binary", "roc_auc", y, a, b) == delong(y, a, b)
    named = np.where(y == 1, "yes", "no")
    assert compare("binary", "roc_auc", named, a, b, labels=["no", "yes"]) == delong(y, a, b)
    assert compare("regression", "r2", a, a, b).test.startswith("paired bootstrap")
    with pytest.raises(ValueError, match="brier"):
        compare("binary", "brier", y, a, b)


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(lambda: delong([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]), id="one-class"),
        pytest.param(lambda: delong([], [], []), id="delong-empty"),
        pytest.param(lambda: paired_bootstrap("roc_auc", [0, 0], [0.1, 0.2], [0.2, 0.1]), id="auc"),
        pytest.param(lambda: paired_bootstrap("r2", [], [], []), id="bootstrap-empty"),
        pytest.param(lambda: paired_bootstrap("r2", [1.0, 1.0], [1.0, 2.0], [2, 3]), id="flat-y"),
    ],
)
def test_degenerate_inputs_are_nan_and_not_significant(result) -> None:
    comparison = result()
    assert isinstance(comparison, Comparison)
    assert math.isnan(comparison.difference) and math.isnan(comparison.p_value)
    assert not comparison.significant
    assert "nan" in comparison.line()


def test_line() -> None:
    result = Comparison("roc_auc", "DeLong", 0.05, 4279, 0.90312, 0.90261, 0.00051, -0.0021,
                        0.0031, 0.7123)  # fmt: skip
    assert result.line() == (
        "roc_auc 0.9031 vs 0.9026 deployed: +0.0005 (95% CI -0.0021 to +0.0031, p=0.71, "
        "DeLong, n=4,279)"
    )
    assert not result.significant
    rmse = Comparison("rmse", "t", 0.05, 10, 1.0, 1.2, -0.2, -0.3, -0.1, 0.001)
    assert rmse.gain == pytest.approx(0.2) and rmse.significant
