"""Hyperparameter search within a time budget (`ml.train --time-budget SECONDS`).

A model-based search (Optuna's TPE sampler, seeded) over each candidate's distributions
(`settings.SEARCH_DISTRIBUTIONS`), scored by the same K-fold cross-validation of the tuning
sample as the grid search:

- the first trial is the candidate's defaults (`base_estimator`; a parameter left to the library,
  None, is sampled), so the search never picks a configuration that scored worse than them in
  its own cross-validation;
- each trial reports its running mean after every fold and is stopped early (Optuna's median
  pruner) when it is behind the median of the trials before it at the same fold;
- anytime: when the candidate's share of the budget is spent, the trial in progress is dropped
  at its next fold and the best configuration so far is kept. The search also stops after
  `max_trials` trials or `patience` trials in a row without improvement, whichever comes first;
- reproducible for a seed as long as the same trials complete: a search that ends by trials or
  patience gives the same parameters every time; one cut by the budget depends on the speed of
  the machine, and `SearchReport.stopped_by` says which it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import get_scorer

from ml.training import tuning


@dataclass(frozen=True)
class SearchReport:
    """What a budgeted search spent and why it stopped (kept in ml.model_runs.params)."""

    method: str
    budget_seconds: float
    seconds: float
    trials: int
    pruned: int
    stopped_by: str  # "budget", "patience" or "trials"
    best_cv: float | None  # None when no trial completed within the budget (the defaults kept)

    def as_params(self) -> dict[str, Any]:
        """The report as JSON-able values."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def distributions_for(estimator: BaseEstimator, space: dict[str, tuple]) -> dict[str, tuple]:
    """The part of a distribution space that `estimator` has parameters for."""
    params = estimator.get_params()
    return {k: v for k, v in space.items() if k in params}


def _suggest(trial: optuna.Trial, name: str, spec: tuple) -> Any:
    kind, low, high = spec
    if kind == "int":
        return trial.suggest_int(name, low, high)
    if kind == "int_log":
        return trial.suggest_int(name, low, high, log=True)
    if kind == "log":
        return trial.suggest_float(name, low, high, log=True)
    if kind == "float":
        return trial.suggest_float(name, low, high)
    raise ValueError(f"unknown distribution {kind!r} for {name}")


class _Stop:
    """Optuna callback: stop after `patience` completed trials without a better value."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = -np.inf
        self.since = 0
        self.reason = "trials"

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state != optuna.trial.TrialState.COMPLETE:
            return
        if trial.value is not None and trial.value > self.best + 1e-12:
            self.best, self.since = trial.value, 0
            return
        self.since += 1
        if self.since >= self.patience:
            self.reason = "patience"
            study.stop()


def budgeted_search(
    pipeline: BaseEstimator,
    space: dict[str, tuple],
    X: pd.DataFrame,
    y: np.ndarray,
    problem: str,
    metric: str,
    seed: int,
    seconds: float,
    *,
    max_trials: int,
    patience: int,
    n_splits: int = 3,
    fit_params: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], SearchReport]:
    """Best pipeline parameters (`model__<name>`) found within `seconds`, and what it cost."""
    started = time.perf_counter()
    model = pipeline.named_steps["model"]
    space = distributions_for(model, space)
    defaults = {k: v for k, v in model.get_params().items() if k in space and v is not None}
    score = get_scorer(tuning.scorer(problem, metric))
    splits = list(tuning.folds(problem, n_splits, seed).split(np.zeros(len(y)), y))
    out_of_time = False

    def objective(trial: optuna.Trial) -> float:
        nonlocal out_of_time
        params = {f"model__{k}": _suggest(trial, k, spec) for k, spec in space.items()}
        values = []
        for step, (fit_rows, held) in enumerate(splits):
            if time.perf_counter() - started > seconds:
                out_of_time = True
                trial.study.stop()
                raise optuna.TrialPruned()
            extra = {
                k: v[fit_rows] if isinstance(v, np.ndarray) else v
                for k, v in (fit_params or {}).items()
            }
            fitted = (
                clone(pipeline).set_params(**params).fit(X.iloc[fit_rows], y[fit_rows], **extra)
            )
            values.append(score(fitted, X.iloc[held], y[held]))
            trial.report(float(np.mean(values)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(values))

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
    )
    if space:
        study.enqueue_trial(defaults, skip_if_exists=True)
    stop = _Stop(patience)
    study.optimize(objective, n_trials=max_trials if space else 0, callbacks=[stop])
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    chosen = best.params if best is not None else defaults
    report = SearchReport(
        method="optuna TPE + median pruning",
        budget_seconds=float(seconds),
        seconds=time.perf_counter() - started,
        trials=len(study.trials),
        pruned=sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials),
        stopped_by="budget" if out_of_time else stop.reason,
        best_cv=float(best.value) if best is not None else None,
    )
    return {f"model__{k}": v for k, v in chosen.items()}, report
