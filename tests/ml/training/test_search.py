"""The budgeted hyperparameter search: starts from the defaults, seeded, anytime, reported."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import get_scorer
from sklearn.model_selection import cross_val_score

from ml.estimators.preprocessing import select_features, to_model_frame
from ml.training import search, settings, tuning
from ml.training.zoo import base_estimator, make_pipeline


def _task(n: int = 800, seed: int = 0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.normal(size=n),
            "kind": pd.Series(rng.choice(list("pqr"), n), dtype="str"),
        }
    )
    signal = np.sin(2 * frame["a"]) + frame["b"] * frame["c"] + (frame["kind"] == "q")
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(int).to_numpy()
    features = select_features(frame, exclude=set())
    return to_model_frame(frame, features), y, features


def _run(name: str, seconds: float, seed: int = 0, max_trials: int = 8, patience: int = 4):
    X, y, features = _task()
    pipeline = make_pipeline(features, base_estimator(name, "binary", y, seed))
    return search.budgeted_search(
        pipeline, settings.SEARCH_DISTRIBUTIONS[name], X, y, "binary", "roc_auc", seed,
        seconds, max_trials=max_trials, patience=patience,
    ), (pipeline, X, y)  # fmt: skip


def test_search_starts_from_the_defaults_and_never_reports_worse() -> None:
    (params, report), (pipeline, X, y) = _run("tree", seconds=60)
    defaults = cross_val_score(
        pipeline, X, y, scoring=get_scorer("roc_auc"), cv=tuning.folds("binary", 3, 0)
    ).mean()
    assert report.best_cv >= defaults - 1e-12
    assert set(params) == {"model__max_depth", "model__min_samples_leaf"}
    assert report.stopped_by in ("trials", "patience") and 1 <= report.trials <= 8


def test_same_seed_same_search_and_another_seed_explores_elsewhere() -> None:
    (first, r1), _ = _run("lightgbm", seconds=120, max_trials=6)
    (again, r2), _ = _run("lightgbm", seconds=120, max_trials=6)
    assert first == again and r1.best_cv == r2.best_cv and r1.trials == r2.trials
    (_, other), _ = _run("lightgbm", seconds=120, seed=1, max_trials=6)
    assert other.best_cv != r1.best_cv


def test_the_budget_ends_the_search_and_keeps_the_best_so_far() -> None:
    # patience and trials out of reach: only the budget can end it, however fast the machine
    (params, report), _ = _run("lightgbm", seconds=2.0, max_trials=500, patience=500)
    assert report.stopped_by == "budget"
    assert report.trials < 500 and report.seconds < 2.0 + 5.0  # at most one fold past the budget
    assert params and all(k.startswith("model__") for k in params)
    assert report.as_params()["budget_seconds"] == 2.0
