"""What a training run of one task produces: its candidates and everything derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from ml.training.data import TaskData


@dataclass
class Candidate:
    """One trained candidate and its evaluation."""

    name: str
    model: BaseEstimator
    params: dict[str, Any]
    cv_folds: list[dict[str, float]]
    oof: np.ndarray
    val_pred: np.ndarray
    test_pred: np.ndarray
    val: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    selection: float = float("nan")  # primary metric on pooled out-of-fold + validation rows
    val_confusion: dict[str, int] | None = None
    test_confusion: dict[str, int] | None = None
    fit_seconds: float = 0.0
    refit_seconds: float | None = None  # set on the champion: refitted on every labelled row

    def cv(self) -> dict[str, tuple[float, float]]:
        """Mean and standard deviation of every metric over the CV folds."""
        frame = pd.DataFrame(self.cv_folds)
        return {m: (float(frame[m].mean()), float(frame[m].std(ddof=1))) for m in frame.columns}


@dataclass
class TaskResult:
    """Everything a training run of one task produced."""

    data: TaskData
    run_id: str
    candidates: list[Candidate]
    champion: str
    oracle: dict[str, float]
    split_sizes: dict[str, int]
    predictions: pd.DataFrame  # of every row; empty when the rows were sampled (scored at write)
    runs: pd.DataFrame
    seconds: float
    evaluation: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.evaluation_predictions
    explanations: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.prediction_explanations
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.feature_importance
    shap_sample: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.shap_sample
    explain_seconds: float = 0.0
    #: The champion's explanation background (model-frame rows) and how many features each
    #: explained row keeps, saved in every bundle of the run for online explanations.
    explain_reference: pd.DataFrame | None = None
    explain_top_k: int | None = None
    profile: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.reference_profiles
    score_log: pd.DataFrame = field(default_factory=pd.DataFrame)  # ml.score_log
