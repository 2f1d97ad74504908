"""`TrainedModel.predict` on generated hostile frames: one finite row per input row, or a UserError.

The models are tiny pipelines fitted here on synthetic loan-like rows (no warehouse needed): a
logistic regression and xgboost for a binary task (xgboost computes in float32 and refuses inf),
and xgboost for a regression.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from ml.core.errors import UserError
from ml.estimators.preprocessing import FeatureSet, select_features, to_model_frame
from ml.serving.bundle import InputContract
from ml.serving.model import TrainedModel
from ml.serving.output import OutputLayout
from ml.serving.prepare import MissingColumnError, NoRowsError
from ml.training.zoo import base_estimator, make_pipeline

NUMERIC = ["loan_amount", "credit_score", "debt_to_income", "term_months"]
CATEGORICAL = ["purpose", "grade", "home_ownership"]
ID = "loan_id"
PURPOSES = ["car", "debt_consolidation", "medical", "home"]
GRADES = list("ABCDEFG")
HOMES = ["rent", "own", "mortgage"]


def _training_frame(n: int = 240, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            ID: np.arange(1, n + 1),
            "loan_amount": rng.normal(15_000, 5_000, n).round(-2),
            "credit_score": rng.integers(450, 850, n),
            "debt_to_income": rng.uniform(0, 0.6, n),
            "term_months": rng.choice([36, 60], n).astype("int32"),
            "purpose": pd.Series(rng.choice(PURPOSES, n), dtype="str"),
            "grade": pd.Series(rng.choice(GRADES, n), dtype="str"),
            "home_ownership": pd.Series(rng.choice(HOMES, n), dtype="str"),
        }
    )
    frame.loc[rng.choice(n, n // 20, replace=False), "debt_to_income"] = np.nan
    logit = (650 - frame["credit_score"]) / 60 + 3 * frame["debt_to_income"].fillna(0.3) - 1
    y_binary = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    y_value = frame["loan_amount"] / 1000 + rng.normal(0, 1, n)
    return frame, y_binary, y_value.to_numpy()


def _model(kind: str) -> TrainedModel:
    frame, y_binary, y_value = _training_frame()
    features = select_features(frame, exclude={ID})
    assert features == FeatureSet(tuple(NUMERIC), tuple(CATEGORICAL), {})
    X = to_model_frame(frame, features)
    problem = "regression" if kind == "xgboost_regression" else "binary"
    if kind == "linear":
        estimator = LogisticRegression(max_iter=500)
    else:
        estimator = base_estimator("xgboost", problem, y_binary, seed=0).set_params(
            n_estimators=20, n_jobs=1
        )
    pipeline = make_pipeline(features, estimator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(X, y_value if problem == "regression" else y_binary)
    contract = InputContract(
        id_column=ID,
        numeric=features.numeric,
        categorical=features.categorical,
        dtypes={c: str(frame[c].dtype) for c in features.columns},
        categories={c: sorted(map(str, frame[c].dropna().unique())) for c in CATEGORICAL},
    )
    binary = problem == "binary"
    layout = OutputLayout(ID, problem, (0, 1) if binary else None, (0, 1) if binary else None,
                          0.4 if binary else None)  # fmt: skip
    return TrainedModel("loans", "run1", kind, pipeline, contract, layout)


@pytest.fixture(scope="module")
def models() -> dict[str, TrainedModel]:
    return {kind: _model(kind) for kind in ("linear", "xgboost", "xgboost_regression")}


# --------------------------------------------------------------------------------------------
# Strategies: what a spreadsheet, a CSV reader or a careless caller hands over


_HOSTILE_TEXT = [
    "", " ", "NA", "n/a", "NULL", "None", "nan", "NaN", "inf", "-Infinity", "1e400", "-1e400",
    "1,000", "12 000", "$5", "0x10", "1_000", "١٢", "2024-01-31", "true", "abc",
    "x\"; drop table ml.model_runs; --", "\x00", "\u202e", "😀", " 42 ", "+7", ".5", "1e308",
]  # fmt: skip
_HUGE_NUMBERS = [1e15, 1e16, 1e30, 1e308, -1e308, 1.7976931348623157e308, 5e-324, -0.0]

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from(_HUGE_NUMBERS),
    st.floats(min_value=-1e6, max_value=1e6),
)
anything = st.one_of(
    numbers,
    st.none(),
    st.booleans(),
    st.sampled_from(_HOSTILE_TEXT),
    st.text(max_size=12),
    st.just(pd.NA),
    st.just(pd.Timestamp("2024-01-31")),
    st.just([1, 2]),
    st.just(b"\xff\xfe"),
)
categories = st.one_of(
    st.sampled_from(PURPOSES + GRADES + HOMES),
    st.sampled_from(["martian", "", "A ", "a", "__missing__", "infrequent_sklearn"]),
    st.none(),
    numbers,
    st.text(max_size=8),
)
ids = st.one_of(
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=True, allow_infinity=False),
    st.text(max_size=6),
    st.none(),
)


@st.composite
def hostile_frames(draw) -> pd.DataFrame:
    """A frame of loan feature columns holding a random mix of good and bad values."""
    n = draw(st.integers(min_value=0, max_value=12))
    columns: dict[str, list] = {}
    for col in NUMERIC:
        mostly_numbers = draw(st.booleans())
        values = numbers if mostly_numbers else anything
        columns[col] = draw(st.lists(values, min_size=n, max_size=n))
    for col in CATEGORICAL:
        columns[col] = draw(st.lists(categories, min_size=n, max_size=n))
    if draw(st.booleans()):
        id_values = draw(st.lists(ids, min_size=n, max_size=n))
        if n and draw(st.booleans()):
            id_values[-1] = id_values[0]  # a duplicate id
        columns[ID] = id_values
    if draw(st.booleans()):
        columns["an_extra_column"] = draw(st.lists(anything, min_size=n, max_size=n))
    frame = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in columns.items()})
    renamed = draw(st.sampled_from(["none", "upper", "drop", "typed"]))
    if renamed == "upper":  # a column named like the feature in another case
        col = draw(st.sampled_from(NUMERIC + CATEGORICAL))
        frame = frame.rename(columns={col: col.upper()})
    elif renamed == "drop":
        frame = frame.drop(columns=[draw(st.sampled_from(NUMERIC + CATEGORICAL))])
    elif renamed == "typed":  # pandas' own inference, as a CSV reader would give it
        frame = frame.infer_objects()
    return frame


def _same_id(given, out) -> bool:
    if given is None or given is pd.NA or (isinstance(given, float) and math.isnan(given)):
        return out is None or out is pd.NA or (isinstance(out, float) and math.isnan(out))
    if isinstance(given, float) and isinstance(out, int | np.integer):
        return given == out
    return given == out or str(given) == str(out)


def _check_scored(model: TrainedModel, frame: pd.DataFrame, scored: pd.DataFrame) -> None:
    assert len(scored) == len(frame)
    assert list(scored.columns[:3]) == [ID, "prediction", "probability"]
    if ID in frame.columns:
        assert all(
            _same_id(g, o) for g, o in zip(frame[ID], scored[ID].astype(object), strict=True)
        ), (list(frame[ID]), list(scored[ID]))
    else:
        assert list(scored[ID]) == list(range(1, len(frame) + 1))
    if model.output.problem == "regression":
        assert np.isfinite(scored["prediction"].to_numpy(dtype=float)).all()
    else:
        p = scored["probability"].to_numpy(dtype=float)
        assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
        assert set(scored["prediction"]) <= {0, 1}
    assert isinstance(scored.attrs.get("notes"), list)


@pytest.mark.parametrize("kind", ["linear", "xgboost", "xgboost_regression"])
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=hostile_frames())
def test_predict_gives_one_finite_row_per_input_row_or_a_user_error(
    models, kind: str, frame: pd.DataFrame
) -> None:
    model = models[kind]
    try:
        scored = model.predict(frame)
    except UserError as err:
        assert str(err) and "\n" not in str(err)
        if len(frame) == 0:
            assert isinstance(err, NoRowsError)
        return
    _check_scored(model, frame, scored)


def test_huge_and_infinite_numbers_never_reach_the_models(models) -> None:
    frame = pd.DataFrame(
        {
            ID: [1, 2, 3, 4],
            "loan_amount": [1e308, -np.inf, np.inf, 1e16],
            "credit_score": [-1e308, 700, 1e30, 1e15],
            "debt_to_income": [np.nan, 0.2, 1.7976931348623157e308, 0.1],
            "term_months": [36, 60, 10**30, 36],
            "purpose": ["car", "martian", None, "home"],
            "grade": ["A", "B", "C", "D"],
            "home_ownership": ["rent", "own", "rent", "own"],
        }
    )
    for kind, model in models.items():
        scored = model.predict(frame)
        _check_scored(model, frame, scored)
        notes = " ".join(scored.attrs["notes"])
        assert "loan_amount: 4 values infinite or beyond +/-1e15" in notes, kind
        assert "credit_score: 2 values" in notes and "martian" in notes


def test_adjustments_and_refusals_are_reported(models) -> None:
    model = models["linear"]
    base = _training_frame(n=6)[0].drop(columns=[ID]).astype(object)
    few = base.copy()
    few.loc[0, "credit_score"] = "abc"  # a minority: imputed, reported
    scored = model.predict(few)
    assert any("credit_score: 1 value that is not a number" in n for n in scored.attrs["notes"])
    assert any("no 'loan_id' column" in n for n in scored.attrs["notes"])
    most = base.copy()
    most["credit_score"] = ["abc", "1,000", "$5", "x", "y", 700]
    with pytest.raises(UserError, match="'credit_score' should hold numbers but 5 of 6"):
        model.predict(most)
    with pytest.raises(MissingColumnError, match="'grade'"):
        model.predict(base.drop(columns=["grade"]))
    with pytest.raises(NoRowsError, match="no rows to score"):
        model.predict(base.head(0))
    renamed = base.rename(columns={"credit_score": " Credit_Score "})
    assert len(model.predict(renamed)) == 6  # names match ignoring case and blanks
    both = base.assign(CREDIT_SCORE=1).rename(columns={"credit_score": "Credit_score"})
    with pytest.raises(UserError, match="ambiguous"):
        model.predict(both)


def test_ids_keep_their_values_and_repeats_are_reported(models) -> None:
    model = models["xgboost"]
    base = _training_frame(n=4)[0]
    as_floats = base.assign(**{ID: [7.0, np.nan, 7.0, 9.0]})
    scored = model.predict(as_floats)
    assert str(scored[ID].dtype) == "Int64"  # whole floats (a column with gaps) become integers
    assert scored[ID].isna().tolist() == [False, True, False, False]
    assert scored[ID].dropna().tolist() == [7, 7, 9]
    notes = " ".join(scored.attrs["notes"])
    assert "1 row without an id" in notes and "1 id appears more than once" in notes
    codes = base.assign(**{ID: ["007", "008", "009", "010"]})
    assert list(model.predict(codes)[ID]) == ["007", "008", "009", "010"]  # zeros kept


def test_codes_read_as_floats_match_their_categories(models) -> None:
    model = models["linear"]
    categories = {**model.contract.categories, "grade": [str(i) for i in range(7)]}
    contract = replace(model.contract, categories=categories)
    coded = replace(model, contract=contract)
    new = _training_frame(n=3)[0]
    new["grade"] = [1.0, np.nan, 3.0]  # a CSV column of codes with a gap arrives as floats
    scored = coded.predict(new)
    assert not any("grade" in n for n in scored.attrs["notes"])
    new["grade"] = [1.5, 2.0, 3.0]
    assert any("grade: 1 value not seen" in n for n in coded.predict(new).attrs["notes"])
