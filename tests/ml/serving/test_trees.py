"""ml.serving.trees: xgboost models evaluated by the compiled kernel give xgboost's exact bits, and what
it does not reproduce is refused rather than approximated."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from xgboost import XGBClassifier, XGBRegressor

from ml.serving import trees
from ml.serving.trees import CompiledTrees, Unsupported


def _data(n: int = 3000, width: int = 12, seed: int = 0, nan_share: float = 0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, width)) * rng.uniform(0.1, 100, size=width)
    X[rng.random(X.shape) < nan_share] = np.nan
    logit = np.nansum(X[:, :4] / np.nanstd(X[:, :4], axis=0), axis=1) + rng.normal(size=n)
    return X, (logit > 0.7).astype(int), logit


def _odd_rows(X: np.ndarray, seed: int = 1) -> np.ndarray:
    """Rows with what scoring meets: missing, infinite, huge and tiny values."""
    rng = np.random.default_rng(seed)
    odd = X[rng.integers(0, len(X), 400)].copy()
    specials = np.array([np.nan, np.inf, -np.inf, 1e300, -1e300, 5e-324, 0.0, -0.0, 1e15])
    where = rng.random(odd.shape) < 0.2
    odd[where] = rng.choice(specials, size=int(where.sum()))
    return odd


def _with_thresholds(model, X: np.ndarray) -> np.ndarray:
    """Rows holding the split thresholds themselves and their float32 neighbours (as float64)."""
    compiled = CompiledTrees.of(model)
    rows = np.repeat(X[:1], 3 * compiled.thr.size, axis=0)
    columns = compiled.used[compiled.feat.ravel()]
    for k, (column, value) in enumerate(zip(columns, compiled.thr.ravel(), strict=True)):
        for j, v in enumerate(
            (
                value,
                np.nextafter(value, np.float32(-np.inf)),
                np.nextafter(value, np.float32(np.inf)),
            )
        ):
            rows[3 * k + j, column] = float(v)
    return rows


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_classifier_probabilities_are_xgboosts_bit_for_bit(depth) -> None:
    X, y, _ = _data(seed=depth)
    model = XGBClassifier(n_estimators=40, max_depth=depth, learning_rate=0.3, n_jobs=1)
    model.fit(X, y)
    compiled = CompiledTrees.of(model)
    assert compiled.depth <= depth and compiled.base_margin != 0  # boost_from_average
    for rows in (X, _odd_rows(X), _with_thresholds(model, X)):
        expected = model.predict_proba(rows)
        got = compiled.predict_proba(rows)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert np.array_equal(got, expected)
        margin = model.get_booster().inplace_predict(rows, predict_type="margin")
        assert np.array_equal(compiled.margin(rows), margin)


def test_regressor_with_pruned_trees_and_default_directions() -> None:
    """Leaves above the full depth (gamma prunes) and missing values sent either way."""
    X, _, target = _data(seed=7, nan_share=0.3)
    model = XGBRegressor(n_estimators=60, max_depth=5, gamma=50.0, n_jobs=1)
    model.fit(X, target)
    compiled = CompiledTrees.of(model)
    booster = model.get_booster()
    leaves_per_tree = [len(t) for t in booster.get_dump()]
    assert min(leaves_per_tree) < max(leaves_per_tree)  # some trees stop early
    assert compiled.nan_right.any() and not compiled.nan_right.all()
    for rows in (X, _odd_rows(X)):
        assert np.array_equal(compiled.predict(rows), model.predict(rows))


def test_early_stopping_uses_the_best_iteration_only() -> None:
    X, y, _ = _data(seed=3)
    model = XGBClassifier(
        n_estimators=300, max_depth=3, learning_rate=0.5, early_stopping_rounds=5, n_jobs=1
    )
    model.fit(X[:2000], y[:2000], eval_set=[(X[2000:], y[2000:])], verbose=False)
    assert model.best_iteration < 299
    compiled = CompiledTrees.of(model)
    assert len(compiled.leaf) == model.best_iteration + 1
    assert np.array_equal(compiled.predict_proba(X), model.predict_proba(X))


def test_many_rows_split_across_threads(monkeypatch) -> None:
    X, y, _ = _data(n=20_000, seed=5)
    model = XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(X, y)
    monkeypatch.setattr(trees, "MIN_ROWS_PER_THREAD", 1000)
    monkeypatch.setattr(trees, "BLOCK_ROWS", 77)  # blocks that do not divide the rows
    assert trees._threads(len(X)) >= 1
    compiled = CompiledTrees.of(model)
    for rows in (X, np.ascontiguousarray(X), X.astype(np.float32), X[:0], X[:1]):
        assert np.array_equal(compiled.predict_proba(rows), model.predict_proba(rows))


@pytest.mark.parametrize(
    "make, why",
    [
        (lambda: XGBClassifier(n_estimators=3, max_depth=8, min_child_weight=0), "depth"),
        (lambda: XGBClassifier(n_estimators=3, objective="multi:softprob"), "multi:softprob"),
        (lambda: XGBClassifier(n_estimators=3, missing=0.0), "missing"),
        (lambda: XGBClassifier(n_estimators=3, booster="dart"), "dart"),
        (lambda: XGBRegressor(n_estimators=3, objective="count:poisson"), "objective"),
    ],
    ids=["too-deep", "multiclass", "missing-not-nan", "dart", "poisson"],
)
def test_what_it_does_not_reproduce_is_refused(make, why) -> None:
    X, y, target = _data(n=2000, seed=2)
    model = make()
    if "multi" in str(model.get_params().get("objective")):
        y = np.digitize(target, [-1.0, 1.0])
    if "poisson" in str(model.get_params().get("objective")):
        y = np.abs(target)
    model.fit(X, y)
    with pytest.raises(Unsupported, match=why):
        CompiledTrees.of(model)


def test_categorical_splits_are_refused() -> None:
    X, y, _ = _data(n=1500, seed=4, nan_share=0.0)
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"])
    frame["grade"] = pd.Categorical(np.where(y == 1, "A", np.where(X[:, 4] > 0, "B", "C")))
    model = XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist")
    model.fit(frame, y)
    with pytest.raises(Unsupported, match="categorical"):
        CompiledTrees.of(model)


def test_other_estimators_are_not_xgboost() -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y, _ = _data(n=500, nan_share=0.0)
    with pytest.raises(Unsupported, match="xgboost"):
        CompiledTrees.of(DecisionTreeClassifier().fit(X, y))


def test_input_of_the_wrong_width_is_refused() -> None:
    X, y, _ = _data(n=500)
    compiled = CompiledTrees.of(XGBClassifier(n_estimators=3).fit(X, y))
    with pytest.raises(Unsupported, match="width"):
        compiled.predict_proba(X[:, :-1])
