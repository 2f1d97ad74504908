"""The pieces saved models are made of: feature selection, preprocessing, the Keras wrapper."""

from __future__ import annotations

import io

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.linear_model import Ridge

from ml.estimators.nets import KerasMLPClassifier, KerasMLPRegressor
from ml.estimators.preprocessing import (
    build_preprocessor,
    select_features,
    source_column,
    to_model_frame,
)
from ml.training.zoo import make_pipeline


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "age": rng.integers(18, 80, n).astype(float),
            "income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 10, n)),
            "gender": pd.Series(rng.choice(["female", "male", None], n), dtype="str"),
            "signed_up": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
            "flag": rng.random(n) < 0.5,
            "free_text": [f"note {i}" for i in range(n)],
        }
    )


def test_select_features_types_and_drops() -> None:
    fs = select_features(_frame(), exclude={"id"})
    assert set(fs.numeric) == {"age", "income", "signed_up", "flag"}
    assert fs.categorical == ("gender",)
    assert "free_text" in fs.dropped


def test_preprocessor_handles_missing_and_unseen_categories() -> None:
    frame = _frame()
    fs = select_features(frame, exclude={"id"})
    prep = build_preprocessor(fs).fit(to_model_frame(frame, fs))
    new = frame.head(3).copy()
    new["gender"] = pd.Series(["martian", None, "female"], dtype="str")
    new.loc[0, "age"] = np.nan
    out = prep.transform(to_model_frame(new, fs))
    assert np.isfinite(out).all()
    names = list(prep.get_feature_names_out())
    assert {source_column(n, fs) for n in names} == set(fs.columns)
    assert "num__missingindicator_income" in names


def test_keras_wrapper_is_a_scikit_learn_estimator() -> None:
    assert is_classifier(KerasMLPClassifier()) and is_regressor(KerasMLPRegressor())
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = KerasMLPClassifier(epochs=5, random_state=3).fit(X, y)
    again = clone(model).fit(X, y)
    np.testing.assert_allclose(model.predict_proba(X), again.predict_proba(X), atol=1e-6)
    buf = io.BytesIO()
    joblib.dump(model, buf)
    buf.seek(0)
    np.testing.assert_allclose(joblib.load(buf).predict_proba(X), model.predict_proba(X))
    assert model.predict_proba(X).shape == (400, 2)


def test_a_rows_prediction_does_not_depend_on_the_rows_scored_with_it() -> None:
    """One row, 50 rows, the whole table, across a step of the forward pass: the same value to
    1e-12 (the server scores a few rows where ml.predict scores a table: they agree to 1e-9),
    and the network's own (TensorFlow, float32) output to float32 precision."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(5_000, 12))
    y = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5])  # three classes
    model = KerasMLPClassifier(epochs=2, units=32, random_state=0).fit(X, y)
    whole = model.predict_proba(X)
    network = np.asarray(model.model_(X.astype(np.float32), training=False))
    np.testing.assert_allclose(whole, network, atol=1e-6)
    for start, stop in ((0, 1), (17, 67), (2_310, 2_330), (4_990, 5_000)):
        np.testing.assert_allclose(model.predict_proba(X[start:stop]), whole[start:stop],
                                   rtol=0, atol=1e-12)  # fmt: skip
    regressor = KerasMLPRegressor(epochs=2, units=16, random_state=0).fit(X[:500], X[:500, 0])
    values = regressor.predict(X)
    np.testing.assert_allclose(regressor.predict(X[5:6]), values[5:6], rtol=0, atol=1e-12)
    raw = np.asarray(regressor.model_(X.astype(np.float32), training=False)).ravel()
    np.testing.assert_allclose(values, raw * regressor.y_scale_ + regressor.y_mean_, atol=1e-5)


def test_pipeline_roundtrip_on_str_columns() -> None:
    frame = _frame()
    fs = select_features(frame, exclude={"id"})
    model = make_pipeline(fs, Ridge()).fit(to_model_frame(frame, fs), frame["age"].to_numpy())
    assert model.predict(to_model_frame(frame.head(5), fs)).shape == (5,)
