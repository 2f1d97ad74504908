"""Ensembles over frozen bases, target resolution and task data, on small in-memory data."""

from __future__ import annotations

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
from ml.training.ensemble import build_stacking, build_voting, stacking_oof, voting_oof


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
    resolved, target, got_mapping = task_data._resolve_target(
        pd.Series(values, name="t"), requested
    )
    assert resolved == problem
    assert got_mapping == mapping
    assert target.notna().sum() == pd.Series(values).notna().sum()


def test_text_target_cannot_be_regression() -> None:
    with pytest.raises(UserError, match="text"):
        task_data._resolve_target(pd.Series(["a", "b"], name="t"), "regression")


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
