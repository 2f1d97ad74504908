"""Hyperparameter search: GridSearchCV for scikit-learn and xgboost, KerasTuner for the net.

Searches run on a (stratified) sample of the training rows of at most `TUNING_MAX_ROWS`, so tuning
stays bounded on large tables; the chosen configuration is then cross-validated and refitted on
the whole training set by ml.train.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from ml.estimators.nets import build_network, configure_tensorflow

#: scikit-learn scorer names of the primary metrics.
SCORERS = {
    ("regression", "r2"): "r2",
    ("regression", "mae"): "neg_mean_absolute_error",
    ("regression", "rmse"): "neg_root_mean_squared_error",
    ("binary", "roc_auc"): "roc_auc",
    ("binary", "f1"): "f1",
    ("binary", "pr_auc"): "average_precision",
    ("binary", "accuracy"): "accuracy",
    ("multiclass", "f1"): "f1_macro",
    ("multiclass", "accuracy"): "accuracy",
    ("multiclass", "roc_auc"): "roc_auc_ovr",
}


def scorer(problem: str, metric: str) -> str:
    """The scikit-learn scoring name that optimises `metric` for `problem`."""
    try:
        return SCORERS[(problem, metric)]
    except KeyError:
        raise ValueError(f"no scorer for metric {metric!r} on a {problem} task") from None


def folds(problem: str, n_splits: int, seed: int) -> KFold | StratifiedKFold:
    """Seeded K-fold splitter (stratified for classification)."""
    if problem == "regression":
        return KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def tuning_sample(
    X: pd.DataFrame, y: np.ndarray, max_rows: int, problem: str, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """At most `max_rows` rows of (X, y), stratified by class for classification."""
    if len(X) <= max_rows:
        return X, y
    stratify = y if problem != "regression" else None
    try:
        X_s, _, y_s, _ = train_test_split(
            X, y, train_size=max_rows, random_state=seed, stratify=stratify
        )
    except ValueError:
        X_s, _, y_s, _ = train_test_split(X, y, train_size=max_rows, random_state=seed)
    return X_s, y_s


def grid_search(
    pipeline: Pipeline,
    grid: dict[str, list],
    X: pd.DataFrame,
    y: np.ndarray,
    problem: str,
    metric: str,
    seed: int,
    n_splits: int = 3,
    fit_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Best pipeline parameters from an exhaustive grid search (empty grid: no search)."""
    if not grid or all(len(v) <= 1 for v in grid.values()):
        return {k: v[0] for k, v in grid.items()}
    search = GridSearchCV(
        pipeline,
        grid,
        scoring=scorer(problem, metric),
        cv=folds(problem, n_splits, seed),
        n_jobs=1,
        refit=False,
        error_score="raise",
    )
    search.fit(X, y, **(fit_params or {}))
    return dict(search.best_params_)


def _without_tensorboard(tuner_cls: type) -> type:
    """KerasTuner 1.4.8 imports tensorboard in every trial, which TF 2.21 no longer ships."""

    def _configure_tensorboard_dir(self, callbacks, trial, execution=0):  # noqa: ARG001
        return None

    return type(f"Quiet{tuner_cls.__name__}", (tuner_cls,), {
        "_configure_tensorboard_dir": _configure_tensorboard_dir,
    })  # fmt: skip


def keras_search(
    pipeline: Pipeline,
    space: dict[str, list],
    X: pd.DataFrame,
    y: np.ndarray,
    problem: str,
    seed: int,
    max_trials: int,
) -> dict[str, Any]:
    """Best net hyperparameters from a KerasTuner random search on a train/validation split.

    The pipeline's preprocessing is fitted on the search's training part only; the objective is
    the validation loss. Returns pipeline parameters (`model__units`, ...).
    """
    configure_tensorflow()
    import keras  # TensorFlow: loaded only when a net is tuned (see ml.estimators.nets)
    import keras_tuner as kt

    logging.getLogger("keras_tuner").setLevel(logging.ERROR)
    stratify = y if problem != "regression" else None
    try:
        X_tr, X_va, y_tr, y_va = train_test_split(
            X, y, test_size=0.2, random_state=seed, stratify=stratify
        )
    except ValueError:
        X_tr, X_va, y_tr, y_va = train_test_split(X, y, test_size=0.2, random_state=seed)
    prep = clone(pipeline.named_steps["prep"])  # a target encoder cross-fits the training part
    A_tr = np.asarray(prep.fit_transform(X_tr, y_tr), dtype=np.float32)
    A_va = np.asarray(prep.transform(X_va), dtype=np.float32)
    net = pipeline.named_steps["model"]
    if problem == "regression":
        mean, scale = float(np.mean(y_tr)), float(np.std(y_tr)) or 1.0
        t_tr, t_va = (y_tr - mean) / scale, (y_va - mean) / scale
        head = (1, None, "mse")
        class_weight = None
    else:
        classes = np.unique(y_tr)
        lookup = {c: i for i, c in enumerate(classes)}
        t_tr = np.array([lookup[v] for v in y_tr], dtype="int32")
        t_va = np.array([lookup.get(v, 0) for v in y_va], dtype="int32")
        head = (
            (1, "sigmoid", "binary_crossentropy")
            if len(classes) == 2
            else (len(classes), "softmax", "sparse_categorical_crossentropy")
        )
        counts = np.bincount(t_tr, minlength=len(classes))
        class_weight = {i: len(t_tr) / (len(classes) * max(c, 1)) for i, c in enumerate(counts)}

    def build(hp: kt.HyperParameters):
        return build_network(
            A_tr.shape[1],
            *head,
            units=hp.Choice("units", space["units"]),
            layers=hp.Choice("layers", space["layers"]),
            dropout=hp.Choice("dropout", space["dropout"]),
            l2=hp.Choice("l2", space["l2"]),
            learning_rate=hp.Choice("learning_rate", space["learning_rate"]),
        )

    keras.utils.set_random_seed(seed)
    with tempfile.TemporaryDirectory(prefix="kerastuner-") as tmp:
        tuner = _without_tensorboard(kt.RandomSearch)(
            build,
            objective="val_loss",
            max_trials=max_trials,
            seed=seed,
            directory=tmp,
            project_name="net",
            overwrite=True,
        )
        with contextlib.redirect_stdout(io.StringIO()):
            tuner.search(
                A_tr,
                t_tr,
                validation_data=(A_va, t_va),
                epochs=net.epochs,
                batch_size=net.batch_size,
                class_weight=class_weight,
                verbose=0,
                callbacks=[
                    keras.callbacks.EarlyStopping(
                        monitor="val_loss", patience=net.patience, restore_best_weights=True
                    )
                ],
            )
        best = tuner.get_best_hyperparameters(1)[0].values
    return {f"model__{k}": v for k, v in best.items()}
