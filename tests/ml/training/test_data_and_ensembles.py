"""Ensembles over frozen bases, target resolution and task data, on small in-memory data."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.tree import DecisionTreeClassifier

from ml.core.errors import UserError
from ml.core.tasks import TaskSpec
from ml.core.warehouse import open_warehouse
from ml.training import data as task_data
from ml.training.ensemble import (
    build_stacking,
    build_voting,
    selection_oof,
    selection_weights,
    stacking_oof,
    voting_oof,
)


def test_ensembles_from_frozen_bases_refit_nothing() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 4))
    y = (X[:, 0] - X[:, 2] + rng.normal(0, 0.5, 500) > 0).astype(int)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    bases = {"lr": LogisticRegression(), "tree": DecisionTreeClassifier(max_depth=3)}
    oof = [cross_val_predict(b, X, y, cv=cv, method="predict_proba") for b in bases.values()]
    fitted = {k: b.fit(X, y) for k, b in bases.items()}
    coef = fitted["lr"].coef_.copy()
    vote = build_voting("binary", fitted, X, y)
    stack = build_stacking("binary", fitted, oof, X, y, seed=0)
    np.testing.assert_array_equal(fitted["lr"].coef_, coef)  # bases untouched
    expected = (fitted["lr"].predict_proba(X) + fitted["tree"].predict_proba(X)) / 2
    np.testing.assert_allclose(vote.predict_proba(X), expected)
    assert stack.predict_proba(X).shape == (500, 2)
    fold_ids = np.zeros(500, int)
    for k, (_, held) in enumerate(cv.split(X, y)):
        fold_ids[held] = k
    assert stacking_oof("binary", oof, y, fold_ids, 0).shape == (500,)
    assert voting_oof("binary", [o[:, 1] for o in oof]).shape == (500,)


def _noisy_views(n: int = 2000, seed: int = 0):
    """A binary target and three probability forecasts of it: good, weaker, pure noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int)
    good = 1 / (1 + np.exp(-2 * (signal + rng.normal(0, 0.5, n))))
    weaker = 1 / (1 + np.exp(-2 * (signal + rng.normal(0, 1.5, n))))
    noise = rng.random(n)
    return y, [noise, weaker, good]


def test_ensemble_selection_weights_the_better_forecasts_and_skips_noise() -> None:
    y, oof = _noisy_views()
    weights = selection_weights("binary", oof, y, "roc_auc")
    assert weights.sum() == 25 and weights[0] == 0  # the noise is never picked
    assert weights[2] > weights[1]  # the better forecast weighs more
    assert np.array_equal(weights, selection_weights("binary", oof, y, "roc_auc"))
    # lower-is-better metrics are minimised: brier also prefers the good forecast
    assert selection_weights("binary", oof, y, "brier").argmax() == 2


def test_ensemble_selection_oof_chooses_each_folds_weights_without_it() -> None:
    y, oof = _noisy_views()
    fold_ids = np.arange(len(y)) % 4
    nested = selection_oof("binary", oof, y, fold_ids, "roc_auc")
    for k in range(4):
        held = fold_ids == k
        w = selection_weights("binary", [p[~held] for p in oof], y[~held], "roc_auc")
        expected = sum(wi * p[held] for wi, p in zip(w / w.sum(), oof, strict=True))
        assert np.allclose(nested[held], expected)


def test_weighted_voting_predicts_the_weighted_mean_and_drops_zero_weights() -> None:
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    y = (X["a"] + rng.normal(0, 0.5, 300) > 0).astype(int).to_numpy()
    bases = {
        "linear": LogisticRegression().fit(X, y),
        "tree": DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y),
        "deep": DecisionTreeClassifier(max_depth=6, random_state=0).fit(X, y),
    }
    voting = build_voting("binary", bases, X, y, np.array([3, 1, 0]))
    assert [name for name, _ in voting.estimators] == ["linear", "tree"]
    expected = (3 * bases["linear"].predict_proba(X) + bases["tree"].predict_proba(X)) / 4
    assert np.allclose(voting.predict_proba(X), expected)


@pytest.mark.parametrize(
    ("values", "requested", "problem", "mapping"),
    [
        (["Y", "N", "Y", None], "auto", "binary", {"Y": 1, "N": 0}),
        (["Yes", "no", "yes", "No"], "auto", "binary", {"Yes": 1, "no": 0, "yes": 1, "No": 0}),
        ([0, 1, 1, 0], "auto", "binary", None),
        ([1.5, 2.5, 3.25, 4.0, 7.0, 9.0, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0], "auto", "regression", None),
        (["a", "b", "c", "a"], "auto", "multiclass", None),
        ([1, 2, 3, 1], "auto", "multiclass", None),
        ([1, 2, 3, 1], "regression", "regression", None),
    ],
)
def test_target_resolution(values, requested, problem, mapping) -> None:
    resolved, target, got_mapping = task_data.resolve_target(pd.Series(values, name="t"), requested)
    assert resolved == problem
    assert got_mapping == mapping
    assert target.notna().sum() == pd.Series(values).notna().sum()


def test_text_target_cannot_be_regression() -> None:
    with pytest.raises(UserError, match="text"):
        task_data.resolve_target(pd.Series(["a", "b"], name="t"), "regression")


def test_task_data_does_not_depend_on_physical_row_order(tmp_path) -> None:
    """dbt builds marts with parallel queries: their row order changes from build to build."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"loan_id": np.arange(1, 201), "x": rng.normal(size=200), "y": rng.integers(0, 2, 200)}
    )
    with open_warehouse(tmp_path / "w.duckdb") as wh:
        wh.replace_tables(
            {"marts.a": frame, "marts.b": frame.sort_values("loan_id", ascending=False)}
        )
        a = task_data.prepare_task(wh, TaskSpec("t", "marts.a", "y", "binary", id_column="loan_id"))
        b = task_data.prepare_task(wh, TaskSpec("t", "marts.b", "y", "binary", id_column="loan_id"))
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.fingerprint == b.fingerprint


def test_dropped_features_are_not_features_and_unknown_ones_are_refused(tmp_path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "loan_id": np.arange(1, 101),
            "Customer_Age": rng.integers(18, 80, 100),
            "x": rng.normal(size=100),
            "y": rng.integers(0, 2, 100),
        }
    )
    with open_warehouse(tmp_path / "w.duckdb") as wh:
        wh.replace_tables({"marts.a": frame})
        spec = TaskSpec("t", "marts.a", "y", "binary", id_column="loan_id")
        whole = task_data.prepare_task(wh, spec)
        # names match ignoring case, as every column name the user gives
        without = task_data.prepare_task(wh, replace(spec, dropped=("customer_age",)))
        with pytest.raises(UserError, match="--drop-feature column 'nope' is not in marts.a"):
            task_data.prepare_task(wh, replace(spec, dropped=("nope",)))
    assert "Customer_Age" in whole.features.columns
    assert without.features.columns == [c for c in whole.features.columns if c != "Customer_Age"]
    assert without.spec.dropped == ("Customer_Age",)
