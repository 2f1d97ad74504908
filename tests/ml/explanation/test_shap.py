"""SHAP explanations: exact additivity for every model kind and ensemble, folding, table rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from ml.core.tasks import BASE_MODELS, ENSEMBLES
from ml.estimators.preprocessing import select_features, to_model_frame
from ml.explanation import shap as explain
from ml.explanation import tables
from ml.training.ensemble import build_stacking, build_voting
from ml.training.zoo import base_estimator, make_pipeline


def _data(problem: str, n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "entity": np.arange(n) + 1000,
            "age": rng.integers(18, 80, n).astype(float),
            "income": np.where(rng.random(n) < 0.15, np.nan, rng.lognormal(10, 0.5, n)),
            "debt_to_income": rng.uniform(0, 0.8, n),
            "grade": pd.Series(rng.choice(list("ABCDE"), n), dtype="str"),
            "region": pd.Series(rng.choice(["north", "south", None], n), dtype="str"),
        }
    )
    signal = (
        0.04 * (frame["age"] - 45)
        + 3 * (frame["debt_to_income"] - 0.4)
        + frame["grade"].map(dict(zip("ABCDE", [-1, -0.5, 0, 0.5, 1], strict=True)))
        + 0.5 * frame["income"].isna()
    ).to_numpy()
    if problem == "regression":
        y = signal + rng.normal(0, 0.3, n)
    elif problem == "binary":
        y = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(int)
    else:
        y = np.digitize(signal + rng.normal(0, 0.3, n), [-0.7, 0.0, 0.7])
    features = select_features(frame, exclude={"entity"})
    return frame, to_model_frame(frame, features), y, features


def _fit(name: str, problem: str, X, y, features):
    pipeline = make_pipeline(features, base_estimator(name, problem, y, seed=0))
    if name == "keras":
        pipeline.set_params(model__epochs=5, model__units=16, model__layers=2, model__dropout=0.1)
    if name in ("xgboost", "lightgbm"):
        pipeline.set_params(model__n_estimators=30, model__n_jobs=1)
    return pipeline.fit(X, y)


def _expected_output(model, X, problem: str, explanation: explain.Explanation) -> np.ndarray:
    """The model's own raw output in the explanation's output space."""
    if problem == "regression":
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if problem == "multiclass":
        return proba[np.arange(len(X)), explanation.explained_class]
    if explanation.output_space == "probability":
        return proba[:, 1]
    if hasattr(model, "decision_function") and not hasattr(model, "steps"):
        return np.asarray(model.decision_function(X), dtype=float)
    return logit(np.clip(proba[:, 1], 1e-7, 1 - 1e-7))


@pytest.fixture(scope="module", params=["regression", "binary", "multiclass"])
def fitted(request):
    problem = request.param
    frame, X, y, features = _data(problem)
    bases = {n: _fit(n, problem, X, y, features) for n in BASE_MODELS}
    oof = []
    for m in bases.values():
        p = m.predict(X) if problem == "regression" else m.predict_proba(X)
        oof.append(p[:, 1] if problem == "binary" else p)
    ensembles = {
        "voting": build_voting(problem, bases, X, y),
        "stacking": build_stacking(problem, bases, oof, X, y, seed=0),
        "selection": build_voting(problem, bases, X, y, np.array([3, 0, 2, 4, 1])),
    }
    return problem, frame, X, y, {**bases, **ensembles}


@pytest.mark.parametrize("name", [*BASE_MODELS, *ENSEMBLES])
def test_base_value_plus_shap_values_is_the_model_output(fitted, name) -> None:
    problem, _, X, _, models = fitted
    model = models[name]
    rows = X.iloc[:200]
    e = explain.explain(model, rows, X.sample(100, random_state=1), chunk_rows=64)
    assert e.columns == list(X.columns)
    assert np.allclose(e.base_value + e.values.sum(axis=1), e.output, atol=1e-9)
    expected = _expected_output(model, rows, problem, e)
    # float32 inside xgboost and Keras: ~1e-5 noise on log-odds
    assert np.abs(e.output - expected).max() < 2e-4, (name, e.output_space)
    if problem == "multiclass":
        assert np.array_equal(
            e.explained_class, np.asarray(model.predict_proba(rows)).argmax(axis=1)
        )
        assert e.output_space == "probability"
    elif problem == "binary":
        native_probability = name in ("tree", "voting", "selection")
        assert e.output_space == ("probability" if native_probability else "log-odds")
    else:
        assert e.output_space == "value"


def test_tree_champion_additivity_against_shap_itself(fitted) -> None:
    """The decision tree's values are shap.TreeExplainer's, folded: same total per row."""
    import shap

    problem, _, X, _, models = fitted
    tree = models["tree"]
    rows = X.iloc[:50]
    e = explain.explain(tree, rows, X.iloc[:50])
    raw = np.asarray(shap.TreeExplainer(tree[-1]).shap_values(tree[0].transform(rows)), dtype=float)
    if raw.ndim == 3:  # classifier: (n, d, classes)
        pick = e.explained_class if problem == "multiclass" else np.ones(len(rows), dtype=int)
        raw = raw[np.arange(len(rows)), :, pick]
    assert np.allclose(raw.sum(axis=1), e.values.sum(axis=1), atol=1e-9)


def test_one_hot_parts_and_missing_indicators_fold_into_their_column(fitted) -> None:
    _, _, X, _, models = fitted
    prep = models["linear"][0]
    names = list(prep.get_feature_names_out())
    fold = explain.fold_matrix(prep, list(X.columns))
    assert fold.shape == (len(names), X.shape[1])
    assert (fold.sum(axis=1) == 1).all(), "every transformed feature has exactly one source"
    source = {n: X.columns[fold[i].argmax()] for i, n in enumerate(names)}
    assert source["num__missingindicator_income"] == "income"
    assert {source[n] for n in names if n.startswith("cat__grade_")} == {"grade"}
    assert {source[n] for n in names if n.startswith("cat__region_")} == {"region"}
    # a linear model's folded value is the sum of its parts
    e = explain.explain(models["linear"], X.iloc[:20], X)
    assert e.values.shape == (20, X.shape[1])


def test_explanation_and_importance_rows(fitted) -> None:
    problem, frame, X, _, models = fitted
    model = models["stacking"]
    e = explain.explain(model, X.iloc[:30], X.iloc[:100])
    labels = ["low", "mid", "high", "top"] if problem == "multiclass" else None
    rows = tables.explanation_rows(
        e, frame.iloc[:30], frame["entity"].iloc[:30], task="t", run_id="r",
        model_name="stacking", top_k=3, class_labels=labels,
    )  # fmt: skip
    assert len(rows) == 30 * 3
    assert rows.groupby("entity_id")["rank"].apply(list).map(lambda r: r == [1, 2, 3]).all()
    first = rows[rows["entity_id"] == "1000"].set_index("rank")
    top = np.argsort(-np.abs(e.values[0]))[:3]
    assert list(first["feature"]) == [X.columns[j] for j in top]
    assert np.allclose(first["shap_value"], e.values[0, top])
    for rank, feature in first["feature"].items():
        raw = frame.loc[0, feature]
        expected = None if pd.isna(raw) else (
            format(float(raw), ".10g") if isinstance(raw, (int, float)) else str(raw)
        )  # fmt: skip
        assert (
            None if pd.isna(first.loc[rank, "feature_value"]) else first.loc[rank, "feature_value"]
        ) == expected
    assert set(rows["feature"]) <= set(X.columns)
    if problem == "multiclass":
        assert rows["explained_class"].isin(labels).all()
    else:
        assert rows["explained_class"].isna().all()
    imp = tables.importance_rows(e, task="t", run_id="r", model_name="stacking")
    assert list(imp["rank"]) == list(range(1, X.shape[1] + 1))
    assert imp["mean_abs_shap"].is_monotonic_decreasing
    assert np.allclose(
        imp.set_index("feature")["mean_abs_shap"],
        np.abs(e.values).mean(0)[[list(X.columns).index(f) for f in imp["feature"]]],
    )


def test_shap_sample_rows_hold_every_feature_of_each_row(fitted) -> None:
    _, frame, X, _, models = fitted
    picked = np.array([2, 5, 11])
    e = explain.explain(models["xgboost"], X.iloc[:20], X.iloc[:100]).subset(picked)
    categorical = {"grade", "region"}
    rows = tables.sample_rows(
        e, X.iloc[picked], frame.iloc[picked], frame["entity"].iloc[picked], categorical,
        task="t", run_id="r", model_name="xgboost",
    )  # fmt: skip
    assert len(rows) == 3 * X.shape[1]
    wide = rows.pivot(index="entity_id", columns="feature", values="shap_value")
    assert np.allclose(
        wide.loc[[str(v) for v in frame["entity"].iloc[picked]], X.columns], e.values
    )
    cat = rows[rows["is_categorical"]]
    assert set(cat["feature"]) == categorical and cat["value"].isna().all()
    age = rows[rows["feature"] == "age"].set_index("entity_id")
    assert np.allclose(age["value"], X["age"].iloc[picked])
    assert list(age["value_text"]) == [format(v, ".10g") for v in frame["age"].iloc[picked]]
    assert (rows["output_space"] == e.output_space).all()


def test_top_features_ties_and_small_k() -> None:
    values = np.array([[0.0, -3.0, 2.0, 1.0], [5.0, 0.0, 0.0, -5.0]])
    idx, picked = tables.top_features(values, 2)
    assert idx[0].tolist() == [1, 2] and picked[0].tolist() == [-3.0, 2.0]
    assert set(idx[1].tolist()) == {0, 3}
    idx, _ = tables.top_features(values, 10)
    assert idx.shape == (2, 4)


def test_unsupported_models_are_refused() -> None:
    from sklearn.ensemble import RandomForestRegressor

    frame, X, y, features = _data("regression", n=100)
    model = make_pipeline(features, RandomForestRegressor(n_estimators=3)).fit(X, y)
    with pytest.raises(TypeError, match="no exact explainer"):
        explain.explain(model, X, X)
