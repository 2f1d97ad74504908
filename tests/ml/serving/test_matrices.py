"""The fast path reads only public scikit-learn attributes, and checks what they cannot say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder

from ml.estimators.preprocessing import build_preprocessor, select_features, to_model_frame
from ml.serving.matrices import Preprocessing, Unsupported, one_hot_widths


def _frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
            "colour": pd.Series(rng.choice(["red", "blue", "green", "rare", None], n), dtype="str"),
        }
    )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"min_frequency": 60, "handle_unknown": "infrequent_if_exist"},
        {"max_categories": 2, "handle_unknown": "infrequent_if_exist"},
        {"drop": "first"},
        {"drop": "if_binary"},
    ],
)
def test_one_hot_widths_add_up_to_the_encoders_output(options) -> None:
    values = _frame()[["colour"]].fillna("none").astype(object)
    encoder = OneHotEncoder(sparse_output=False, **options).fit(values)
    widths = one_hot_widths(encoder)
    assert sum(widths) == encoder.transform(values).shape[1]


def test_the_projects_preprocessing_is_reproduced_exactly() -> None:
    frame = _frame()
    features = select_features(frame)
    X = to_model_frame(frame, features)
    ct = build_preprocessor(features).fit(X)
    prep = Preprocessing(ct)
    numeric = {"x": X["x"].to_numpy(dtype=float)}
    values = list(pd.unique(X["colour"]))
    codes = np.array([values.index(v) for v in X["colour"]], dtype=np.intp)
    for block in prep.blocks:  # what the batch scorer sets: the model's own preparation
        block.convert = lambda cols: pd.DataFrame(cols).astype(object)
    got = prep.transform(numeric, {"colour": (values, codes)}, len(X))
    np.testing.assert_array_equal(got["C"], ct.transform(X))


def test_a_transformer_that_outputs_pandas_is_left_to_its_pipeline() -> None:
    frame = _frame()
    features = select_features(frame)
    ct = build_preprocessor(features).set_output(transform="pandas")
    ct.fit(to_model_frame(frame, features))
    with pytest.raises(Unsupported, match="returns DataFrame"):
        Preprocessing(ct)
