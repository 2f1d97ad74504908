"""Categories with many levels are target-encoded, cross-fitted, explained and scored like the rest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.estimators.preprocessing import (
    MAX_ONEHOT_COLUMNS,
    build_preprocessor,
    select_features,
    to_model_frame,
)
from ml.explanation import shap as explain
from ml.training.zoo import base_estimator, make_pipeline


def _frame(n: int = 1500, levels: int = 80, seed: int = 0):
    rng = np.random.default_rng(seed)
    city_effect = rng.normal(0, 1.5, levels)
    city = rng.integers(0, levels, n)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 10, n),
            "city": pd.Series([f"c{c:03d}" for c in city], dtype="str"),
            "grade": pd.Series(rng.choice(list("ABC"), n), dtype="str"),
        }
    )
    signal = 0.05 * (frame["income"] - 50) + city_effect[city]
    y = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(int)
    return frame, np.asarray(y)


def test_only_the_columns_with_many_levels_are_target_encoded() -> None:
    frame, _ = _frame()
    features = select_features(frame)
    assert features.target_encoded == ("city",)
    assert frame["grade"].nunique() <= MAX_ONEHOT_COLUMNS < frame["city"].nunique()
    prep = build_preprocessor(features)
    assert [name for name, *_ in prep.transformers] == ["num", "cat", "te"]


def test_training_rows_are_encoded_without_their_own_label() -> None:
    frame, y = _frame()
    features = select_features(frame)
    X = to_model_frame(frame, features)
    prep = build_preprocessor(features, seed=3)
    fitted = prep.fit_transform(X, y)
    again = prep.transform(X)
    column = list(prep.get_feature_names_out()).index("te__city")
    # cross-fitting: a training row's encoding comes from the other folds, so it differs from
    # the encoding learnt on every row, which is what new rows get
    assert not np.allclose(fitted[:, column], again[:, column])
    assert np.corrcoef(fitted[:, column], again[:, column])[0, 1] > 0.8


@pytest.mark.parametrize("problem", ["binary", "regression", "multiclass"])
def test_target_encoded_models_learn_and_their_explanations_add_up(problem) -> None:
    frame, y = _frame()
    if problem == "regression":
        y = y + np.random.default_rng(1).normal(0, 0.1, len(y))
    elif problem == "multiclass":
        y = y + (frame["income"].to_numpy() > 55)
    features = select_features(frame)
    X = to_model_frame(frame, features)
    model = make_pipeline(features, base_estimator("lightgbm", problem, y, 0), seed=0)
    model.set_params(model__n_estimators=40, model__n_jobs=1)
    model.fit(X, y)
    rows = X.iloc[:100]
    e = explain.explain(model, rows, X.iloc[:200])
    assert np.allclose(e.base_value + e.values.sum(axis=1), e.output, atol=1e-9)
    assert e.columns == list(X.columns)
    # the city carries most of the signal, and the encoded column folds back into it
    assert (
        np.abs(e.values[:, e.columns.index("city")]).mean()
        > np.abs(e.values[:, e.columns.index("grade")]).mean()
    )


def test_a_small_multiclass_table_with_many_levels_cross_validates() -> None:
    """Stratified folds would need 5 rows of each class inside every training fold: plain K-fold
    cross-fitting does not (8 classes of 6 rows: 4 of each in each training fold)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    rng = np.random.default_rng(2)
    n = 48
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "name": pd.Series([f"n{i:02d}" for i in range(n)], dtype="str"),
        }
    )
    y = np.repeat(np.arange(8), 6)
    features = select_features(frame)
    assert features.target_encoded == ("name",)
    model = make_pipeline(features, base_estimator("linear", "multiclass", y, 0))
    X = to_model_frame(frame, features)
    scores = cross_val_score(model, X, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert np.isfinite(scores).all()
