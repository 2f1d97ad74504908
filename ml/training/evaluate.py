"""Metrics for every problem type, the decision threshold of binary models, and metric directions.

All functions take plain arrays and return plain dicts of floats, so the same code scores a
model, the oracle (the simulator's truth used as if it were a model) and a cross-validation fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² of predictions."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(skm.root_mean_squared_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }


def _safe(fn, *args, **kwargs) -> float:
    """A metric that is undefined on this sample (one class only) is NaN, not an error."""
    try:
        return float(fn(*args, **kwargs))
    except ValueError:
        return float("nan")


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """Binary confusion-matrix counts tn, fp, fn, tp."""
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def binary_metrics(
    y_true: np.ndarray, proba: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Threshold metrics at `threshold` plus ranking and calibration metrics of `proba`."""
    y_true = np.asarray(y_true, dtype=int)
    proba = np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    y_pred = (proba >= threshold).astype(int)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "roc_auc": _safe(skm.roc_auc_score, y_true, proba),
        "pr_auc": _safe(skm.average_precision_score, y_true, proba),
        "brier": float(skm.brier_score_loss(y_true, proba, pos_label=1))
        if len(np.unique(y_true)) > 1
        else float(np.mean((proba - y_true) ** 2)),
    }


def multiclass_metrics(
    y_true: np.ndarray, proba: np.ndarray, classes: Sequence
) -> dict[str, float]:
    """Accuracy, macro precision/recall/F1, one-vs-rest macro ROC-AUC, Brier and log loss.

    `proba` has one column per entry of `classes`, in that order; the prediction is the argmax.
    """
    classes = np.asarray(classes)
    proba = np.clip(np.asarray(proba, dtype=float), 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 nets sum to 1 +- 1e-7
    y_true = np.asarray(y_true)
    y_pred = classes[np.argmax(proba, axis=1)]
    onehot = (y_true[:, None] == classes[None, :]).astype(float)
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(
            skm.precision_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)
        ),
        "recall": float(
            skm.recall_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)
        ),
        "f1": float(skm.f1_score(y_true, y_pred, average="macro", labels=classes, zero_division=0)),
        "roc_auc": _safe(
            skm.roc_auc_score, y_true, proba, multi_class="ovr", average="macro", labels=classes
        ),
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
        "log_loss": _safe(skm.log_loss, y_true, proba, labels=classes),
    }


def primary(
    problem: str,
    metric: str,
    y_true: np.ndarray,
    prediction: np.ndarray,
    classes: Sequence | None = None,
) -> float:
    """`score(problem, y_true, prediction, classes)[metric]`, computing that metric alone (the
    ensemble selection evaluates it thousands of times)."""
    if problem == "regression" and metric == "r2":
        return float(skm.r2_score(y_true, prediction))
    if problem == "binary" and metric == "roc_auc":
        return _safe(skm.roc_auc_score, y_true, np.asarray(prediction, dtype=float))
    if problem == "multiclass" and metric in ("f1", "accuracy"):
        labels = np.asarray(classes)
        predicted = np.argmax(np.clip(np.asarray(prediction, dtype=float), 1e-15, 1.0), axis=1)
        order = np.argsort(labels)  # each true label's position in `classes`
        actual = order[np.searchsorted(labels, np.asarray(y_true), sorter=order)]
        if metric == "accuracy":
            return float(np.mean(predicted == actual))
        k = len(labels)
        tp = np.bincount(actual[predicted == actual], minlength=k)
        fp = np.bincount(predicted, minlength=k) - tp
        fn = np.bincount(actual, minlength=k) - tp
        denominator = 2 * tp + fp + fn
        f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
        return float(f1.mean())
    return score(problem, y_true, prediction, classes)[metric]


def choose_threshold(
    y_true: np.ndarray,
    proba: np.ndarray,
    cost_fp: float | None = None,
    cost_fn: float | None = None,
) -> float:
    """The decision threshold for a binary model, chosen on validation data.

    Without costs: the threshold that maximises F1. With costs: the one that minimises
    `cost_fp * FP + cost_fn * FN`. Candidates are the distinct predicted probabilities.
    """
    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=float)
    if len(y_true) == 0 or y_true.min() == y_true.max():
        return 0.5
    order = np.argsort(-proba, kind="stable")
    p_sorted = proba[order]
    y_sorted = y_true[order]
    # predicting positive for the top k rows, for every k at a change of probability
    last_of_run = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    tp = np.cumsum(y_sorted)[last_of_run]
    fp = np.cumsum(1 - y_sorted)[last_of_run]
    thresholds = p_sorted[last_of_run]
    positives = y_true.sum()
    fn = positives - tp
    if cost_fp is None and cost_fn is None:
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        best = int(np.argmax(f1))
    else:
        cost = (cost_fp if cost_fp is not None else 1.0) * fp + (
            cost_fn if cost_fn is not None else 1.0
        ) * fn
        # predicting nothing positive is also an option
        if positives * (cost_fn if cost_fn is not None else 1.0) < cost.min():
            return float(np.nextafter(proba.max(), np.inf))
        best = int(np.argmin(cost))
    return float(thresholds[best])


def score(
    problem: str,
    y_true: np.ndarray,
    prediction: np.ndarray,
    classes: Sequence | None = None,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Every metric of `problem`. `prediction`: values (regression), positive-class probability
    (binary) or a probability matrix with columns in `classes` order (multiclass)."""
    if problem == "regression":
        return regression_metrics(y_true, prediction)
    if problem == "binary":
        return binary_metrics(y_true, prediction, threshold)
    if problem == "multiclass":
        if classes is None:
            raise ValueError("multiclass scoring needs the class order")
        return multiclass_metrics(y_true, prediction, classes)
    raise ValueError(f"unknown problem type {problem!r}")
