"""The model zoo: every candidate as a scikit-learn Pipeline (preprocessing + estimator).

Base candidates per problem type: a linear model (Ridge / LogisticRegression), a decision tree,
xgboost, LightGBM and a Keras MLP. Class imbalance is handled by balanced class weights (linear,
tree, net), `scale_pos_weight` (binary xgboost) or balanced sample weights (multiclass xgboost);
LightGBM learns the unweighted likelihood (its probabilities stay calibrated; the decision
threshold is tuned afterwards anyway).
"""

from __future__ import annotations

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator, is_classifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.class_weight import compute_sample_weight
from xgboost import XGBClassifier, XGBRegressor

from ml.core.config import n_threads
from ml.estimators.nets import KerasMLPClassifier, KerasMLPRegressor
from ml.estimators.preprocessing import FeatureSet, build_preprocessor

#: Training rows from which LightGBM uses every core (`ML_THREADS`) rather than one.
LIGHTGBM_THREADED_ROWS = 50_000


def base_estimator(name: str, problem: str, y: np.ndarray, seed: int) -> BaseEstimator:
    """An unfitted base estimator `name` (linear, tree, xgboost, lightgbm, keras) for `problem`."""
    classification = problem != "regression"
    if name == "linear":
        if not classification:
            return Ridge(alpha=1.0)
        # newton-cholesky: exact second-order steps, ~5x faster than lbfgs on our feature counts
        return LogisticRegression(
            C=1.0, solver="newton-cholesky", max_iter=500, class_weight="balanced"
        )
    if name == "tree":
        if not classification:
            return DecisionTreeRegressor(max_depth=8, min_samples_leaf=20, random_state=seed)
        return DecisionTreeClassifier(
            max_depth=8, min_samples_leaf=20, class_weight="balanced", random_state=seed
        )
    if name == "xgboost":
        common = {
            "n_estimators": 300,
            "max_depth": 4,
            "learning_rate": 0.08,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
            "min_child_weight": 1.0,  # xgboost's defaults, spelt out for the search to start from
            "reg_lambda": 1.0,
            "tree_method": "hist",
            "n_jobs": n_threads(),
            "random_state": seed,
            "verbosity": 0,
        }
        if not classification:
            return XGBRegressor(**common)
        if problem == "binary":
            positives = max(int(np.sum(y == 1)), 1)
            return XGBClassifier(
                **common,
                scale_pos_weight=(len(y) - positives) / positives,
                eval_metric="logloss",
            )
        return XGBClassifier(**common, eval_metric="mlogloss")
    if name == "lightgbm":
        common = {
            "n_estimators": 300,
            "learning_rate": 0.06,
            # bounded trees: explaining (TreeSHAP) costs trees x leaves x depth^2 per row, and
            # LightGBM's unbounded leaf-wise trees made explaining 50k rows take minutes
            "num_leaves": 15,
            "max_depth": 6,
            "min_child_samples": 20,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "reg_lambda": 1.0,
            # OpenMP threads spin while they wait: on small tables, or beside other busy
            # processes, a second thread made a fit 50x slower (measured); one is faster there
            "n_jobs": 1 if len(y) < LIGHTGBM_THREADED_ROWS else n_threads(),
            "random_state": seed,
            "deterministic": True,  # same seed, same model, on any thread count
            "force_row_wise": True,
            "verbose": -1,
        }
        return LGBMClassifier(**common) if classification else LGBMRegressor(**common)
    if name == "keras":
        if not classification:
            return KerasMLPRegressor(random_state=seed)
        return KerasMLPClassifier(class_weight="balanced", random_state=seed)
    raise ValueError(f"unknown base model {name!r}")


def make_pipeline(features: FeatureSet, estimator: BaseEstimator, seed: int = 0) -> Pipeline:
    """Preprocessing followed by `estimator`, as one Pipeline (`seed`: the target encoder's
    cross-fitting folds)."""
    prep = build_preprocessor(features, regression=not is_classifier(estimator), seed=seed)
    return Pipeline([("prep", prep), ("model", estimator)])


def fit_params(name: str, problem: str, y: np.ndarray) -> dict[str, np.ndarray]:
    """Extra `fit` arguments of a candidate pipeline (balanced sample weights where needed)."""
    if name == "xgboost" and problem == "multiclass":
        return {"model__sample_weight": compute_sample_weight("balanced", y)}
    return {}


def grid_for(estimator: BaseEstimator, space: dict[str, list]) -> dict[str, list]:
    """The part of a search space that `estimator` has parameters for, as pipeline parameters."""
    params = estimator.get_params()
    return {f"model__{k}": v for k, v in space.items() if k in params}
