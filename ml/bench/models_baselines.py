"""The plain baselines the project is compared with, fitted in-process on the same split.

- `logistic`: median imputation and standard scaling of the numbers, one-hot encoding of the
  text (a `missing` level), then `LogisticRegression(max_iter=1000)` (`Ridge()` for a
  regression);
- `hist_gradient_boosting`: scikit-learn's `HistGradientBoosting*` with its defaults, the text
  ordinal-encoded and declared categorical (native categorical splits, missing values native);
- `xgboost`: `XGB*` with its defaults, the text one-hot encoded, missing numbers native.

Text columns with more than `MAX_CATEGORIES` levels keep the most frequent ones and group the
rest (HistGradientBoosting cannot split on more). A binary baseline's decision threshold is the
F1-maximising one on out-of-fold probabilities of the training rows (`THRESHOLD_FOLDS`-fold,
stratified, seeded), the project's own rule; `fit_baseline` is never given a test label, so the
test rows cannot enter it. The training time includes those out-of-fold fits: choosing a
threshold is part of training a classifier, and the project's training time includes its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from ml.core.config import n_threads
from ml.training.evaluate import choose_threshold

BASELINES = ("logistic", "hist_gradient_boosting", "xgboost")
BASELINE_NAMES = {
    "logistic": "logistic regression",
    "hist_gradient_boosting": "HistGradientBoosting",
    "xgboost": "xgboost (defaults)",
}
REGRESSION_NAMES = {**BASELINE_NAMES, "logistic": "linear regression (ridge)"}
#: Levels kept per text column (the rest grouped as infrequent): HistGradientBoosting's limit.
MAX_CATEGORIES = 255
THRESHOLD_FOLDS = 5


@dataclass
class BaselineFit:
    """A fitted baseline's test predictions and timings."""

    label: str
    values: np.ndarray  # test rows: positive-class probability, class probabilities or values
    threshold: float | None  # binary: chosen on the training rows' out-of-fold probabilities
    train_s: float  # fit + the out-of-fold fits of the threshold
    predict_s: float


def feature_frame(
    frame: pd.DataFrame, train: np.ndarray, test: np.ndarray, exclude: set
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The training and test rows' features as plain baselines take them: every column but
    `exclude` (target, id), numbers as floats (booleans 0/1, dates and times as days since
    1970), the rest as text (object, NaN when missing). Columns without a value in the
    training rows are left out."""
    columns = {}
    for name in frame.columns:
        if name in exclude:
            continue
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            if getattr(series.dt, "tz", None) is not None:
                series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            days = (series - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
            columns[name] = days.astype("float64")
        elif pd.api.types.is_bool_dtype(series) or (
            pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(series)
        ):
            columns[name] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            text = series.astype("object")
            columns[name] = pd.Series(
                [np.nan if pd.isna(v) else str(v) for v in text], index=frame.index, dtype=object
            )
    X = pd.DataFrame(columns, index=frame.index)
    X_train, X_test = X.iloc[train].reset_index(drop=True), X.iloc[test].reset_index(drop=True)
    empty = [c for c in X_train.columns if X_train[c].isna().all()]
    return X_train.drop(columns=empty), X_test.drop(columns=empty)


def _text_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def _one_hot(dense: bool) -> OneHotEncoder:
    return OneHotEncoder(
        handle_unknown="infrequent_if_exist",
        max_categories=MAX_CATEGORIES,
        sparse_output=not dense,
    )


def make_baseline(name: str, problem: str, X: pd.DataFrame, seed: int) -> Pipeline:
    """The unfitted pipeline of baseline `name` for `problem` over the columns of `X`."""
    text = _text_columns(X)
    numbers = [c for c in X.columns if c not in text]
    classify = problem != "regression"
    if name == "logistic":
        prep = ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
                (
                    "text",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="missing"), _one_hot(False)
                    ),
                    text,
                ),
            ]
        )
        model = LogisticRegression(max_iter=1000, random_state=seed) if classify else Ridge()
        return Pipeline([("prep", prep), ("model", model)])
    if name == "hist_gradient_boosting":
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
            max_categories=MAX_CATEGORIES,
        )
        prep = ColumnTransformer([("text", encoder, text), ("num", "passthrough", numbers)])
        mask = [True] * len(text) + [False] * len(numbers)
        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return Pipeline(
            [("prep", prep), ("model", cls(categorical_features=mask, random_state=seed))]
        )
    if name == "xgboost":
        # dense: in a sparse matrix xgboost would take every absent zero for a missing value
        prep = ColumnTransformer(
            [("text", _one_hot(True), text), ("num", "passthrough", numbers)], sparse_threshold=0
        )
        cls = XGBClassifier if classify else XGBRegressor
        return Pipeline([("prep", prep), ("model", cls(random_state=seed, n_jobs=n_threads()))])
    raise ValueError(f"unknown baseline {name!r}: choose from {', '.join(BASELINES)}")


def out_of_fold_proba(
    model: Pipeline, X_train: pd.DataFrame, y_train: np.ndarray, seed: int
) -> np.ndarray:
    """Positive-class probabilities of the training rows, each from a model fitted without it
    (`THRESHOLD_FOLDS`-fold, stratified, seeded)."""
    folds = StratifiedKFold(n_splits=THRESHOLD_FOLDS, shuffle=True, random_state=seed)
    proba = cross_val_predict(clone(model), X_train, y_train, cv=folds, method="predict_proba")
    return np.asarray(proba, dtype=float)[:, 1]


def oof_threshold(y_train: np.ndarray, oof_proba: np.ndarray) -> float:
    """The F1-maximising threshold on the training rows' out-of-fold probabilities (the
    project's rule, `ml.training.evaluate.choose_threshold`); it takes no test row."""
    return choose_threshold(np.asarray(y_train, dtype=int), np.asarray(oof_proba, dtype=float))


def predict_values(model: Pipeline, X: pd.DataFrame, problem: str) -> np.ndarray:
    """Values (regression), the positive class's probability (binary) or the class
    probabilities in code order 0..K-1 (multiclass)."""
    if problem == "regression":
        return np.asarray(model.predict(X), dtype=float)
    proba = np.asarray(model.predict_proba(X), dtype=float)
    order = np.argsort(np.asarray(model.classes_))
    proba = proba[:, order]
    return proba[:, 1] if problem == "binary" else proba


def fit_baseline(
    name: str,
    problem: str,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_test: pd.DataFrame,
    seed: int,
) -> BaselineFit:
    """Fit baseline `name` on the training rows and predict the test rows; for a binary task,
    choose its threshold first on the training rows' out-of-fold probabilities. No test label
    is passed in: nothing here can tune on the test rows."""
    model = make_baseline(name, problem, X_train, seed)
    start = time.perf_counter()
    threshold = None
    if problem == "binary":
        threshold = oof_threshold(y_train, out_of_fold_proba(model, X_train, y_train, seed))
    model.fit(X_train, y_train)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    values = predict_values(model, X_test, problem)
    predict_s = time.perf_counter() - start
    names = REGRESSION_NAMES if problem == "regression" else BASELINE_NAMES
    return BaselineFit(names[name], values, threshold, train_s, predict_s)
