"""Soft voting and stacking over the tuned base pipelines, built from their out-of-fold predictions.

Every base candidate is cross-validated on the same folds, which yields out-of-fold (OOF)
predictions for every training row. From them:

- soft voting's CV metrics are exact: its OOF prediction is the mean of the bases' OOF predictions;
- stacking's meta-learner is trained on the OOF predictions (as StackingRegressor/Classifier does
  internally), and its CV metrics come from cross-validating the meta-learner on them;
- ensemble selection (Caruana et al., 2004) adds, greedily and with replacement, the base whose
  addition most improves the primary metric of the averaged OOF predictions; the counts become
  the weights of a soft VotingX. Its own OOF predictions are nested: each fold's weights are
  chosen on the other folds only, so its CV metrics are not flattered by the choice;
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

from ml.core.tasks import greater_is_better
from ml.training import evaluate

#: Greedy steps of ensemble selection (each adds one base, with replacement).
SELECTION_ROUNDS = 25


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


def selection_weights(
    problem: str,
    oof: list[np.ndarray],
    y: np.ndarray,
    metric: str,
    classes: list | None = None,
    rounds: int = SELECTION_ROUNDS,
) -> np.ndarray:
    """Integer weights of ensemble selection: greedy forward selection with replacement of the
    base whose addition to the running average most improves `metric` on (oof, y); ties go to
    the earlier base, so the result is deterministic."""
    preds = [np.asarray(p, dtype=float) for p in oof]
    sign = 1.0 if greater_is_better(metric) else -1.0
    counts = np.zeros(len(preds), dtype=int)
    total = np.zeros_like(preds[0])
    for _ in range(rounds):
        n = counts.sum() + 1
        scores = [
            sign * evaluate.primary(problem, metric, y, (total + p) / n, classes) for p in preds
        ]
        best = int(np.nanargmax(np.nan_to_num(scores, nan=-np.inf)))
        counts[best] += 1
        total += preds[best]
    return counts


def selection_oof(
    problem: str,
    oof: list[np.ndarray],
    y: np.ndarray,
    fold_ids: np.ndarray,
    metric: str,
    classes: list | None = None,
) -> np.ndarray:
    """Out-of-fold predictions of ensemble selection: each held-out fold averaged with the
    weights chosen on the other folds' rows."""
    preds = np.stack([np.asarray(p, dtype=float) for p in oof])
    out = np.zeros_like(preds[0])
    for k in np.unique(fold_ids):
        held = fold_ids == k
        weights = selection_weights(problem, [p[~held] for p in preds], y[~held], metric, classes)
        out[held] = np.tensordot(weights / weights.sum(), preds[:, held], axes=1)
    return out


def build_voting(
    problem: str, fitted: dict[str, BaseEstimator], X, y, weights: np.ndarray | None = None
) -> BaseEstimator:
    """Soft voting over already fitted pipelines (nothing is refitted); bases of weight 0 are
    left out."""
    if weights is None:
        weights = np.ones(len(fitted), dtype=int)
    estimators = [
        (name, FrozenEstimator(model))
        for (name, model), w in zip(fitted.items(), weights, strict=True)
        if w > 0
    ]
    kept = [float(w) for w in weights if w > 0]
    uniform = len(set(kept)) == 1
    if problem == "regression":
        return VotingRegressor(estimators, weights=None if uniform else kept).fit(X, y)
    return VotingClassifier(estimators, voting="soft", weights=None if uniform else kept).fit(X, y)


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
