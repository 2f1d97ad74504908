"""Soft voting and stacking over the tuned base pipelines, built from their out-of-fold predictions.

Every base candidate is cross-validated on the same folds, which yields out-of-fold (OOF)
predictions for every training row. From them:

- soft voting's CV metrics are exact: its OOF prediction is the mean of the bases' OOF predictions;
- stacking's meta-learner is trained on the OOF predictions (as StackingRegressor/Classifier does
  internally), and its CV metrics come from cross-validating the meta-learner on them;
- the final VotingX / StackingX objects wrap the bases already fitted on the whole training set
  in `FrozenEstimator`, so assembling an ensemble refits nothing.

The result is the standard scikit-learn ensemble object (it pickles, predicts, and is explained
like any estimator), at the cost of the bases' CV that ml.train runs anyway.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import LabelEncoder


def meta_features(problem: str, predictions: list[np.ndarray]) -> np.ndarray:
    """Stacking inputs from base predictions, laid out as scikit-learn's Stacking* lays them out:
    the value (regression), the positive-class probability (binary), every class's probability
    (multiclass)."""
    parts = []
    for p in predictions:
        p = np.asarray(p, dtype=float)
        if problem == "regression":
            parts.append(p.reshape(-1, 1))
        elif problem == "binary":
            parts.append(p[:, 1:] if p.ndim == 2 else p.reshape(-1, 1))
        else:
            parts.append(p)
    return np.hstack(parts)


def meta_learner(problem: str, seed: int) -> BaseEstimator:
    """The stacking meta-learner: non-negative linear weights, or a logistic regression."""
    if problem == "regression":
        return LinearRegression(positive=True)
    return LogisticRegression(C=1.0, max_iter=2000, random_state=seed)


def voting_oof(problem: str, oof: list[np.ndarray]) -> np.ndarray:
    """Out-of-fold predictions of soft voting: the mean of the bases' predictions."""
    return np.mean(np.stack([np.asarray(p, dtype=float) for p in oof]), axis=0)


def stacking_oof(
    problem: str, oof: list[np.ndarray], y: np.ndarray, fold_ids: np.ndarray, seed: int
) -> np.ndarray:
    """Out-of-fold predictions of stacking: the meta-learner cross-validated on the same folds.

    (The bases' OOF predictions of a fold's training rows come from models that saw the held-out
    fold, so this estimate is very slightly optimistic, as in most AutoML stackers.)
    """
    X_meta = meta_features(problem, oof)
    y_fit = y if problem == "regression" else LabelEncoder().fit_transform(y)
    n_classes = 1 if problem == "regression" else len(np.unique(y))
    out = np.zeros((len(y),) if problem == "regression" else (len(y), n_classes))
    for k in np.unique(fold_ids):
        held = fold_ids == k
        learner = meta_learner(problem, seed).fit(X_meta[~held], y_fit[~held])
        out[held] = learner.predict(X_meta[held]) if problem == "regression" else (
            learner.predict_proba(X_meta[held])
        )  # fmt: skip
    return out[:, 1] if problem == "binary" else out


def build_voting(problem: str, fitted: dict[str, BaseEstimator], X, y) -> BaseEstimator:
    """Soft voting over already fitted pipelines (nothing is refitted)."""
    estimators = [(name, FrozenEstimator(model)) for name, model in fitted.items()]
    if problem == "regression":
        return VotingRegressor(estimators).fit(X, y)
    return VotingClassifier(estimators, voting="soft").fit(X, y)


def build_stacking(
    problem: str, fitted: dict[str, BaseEstimator], oof: list[np.ndarray], X, y, seed: int
) -> BaseEstimator:
    """Stacking over already fitted pipelines with a meta-learner trained on their OOF predictions."""
    X_meta = meta_features(problem, oof)
    estimators = [(name, FrozenEstimator(model)) for name, model in fitted.items()]
    if problem == "regression":
        learner = meta_learner(problem, seed).fit(X_meta, y)
        stack = StackingRegressor(estimators, final_estimator=FrozenEstimator(learner), cv=2)
    else:
        # Stacking* trains its meta-learner on label-encoded targets; match that.
        learner = meta_learner(problem, seed).fit(X_meta, LabelEncoder().fit_transform(y))
        stack = StackingClassifier(
            estimators,
            final_estimator=FrozenEstimator(learner),
            stack_method="predict_proba",
            cv=2,
        )
    return stack.fit(X, y)
