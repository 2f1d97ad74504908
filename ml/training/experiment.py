"""One training run of one task: split, tune, cross-validate, ensemble, evaluate, refit, score.

`train_task` trains and evaluates every candidate of a prepared task (`ml.training.data`) and
returns the results as values: the candidates, the champion's predictions, and the rows of the
`ml.*` tables (`ml.training.records`). It needs no warehouse connection, so the warehouse stays
free for other processes while models train; `ml.training.run` writes the results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import train_test_split

from ml.core.config import DEFAULT_SEED
from ml.core.tasks import BASE_MODELS, ENSEMBLES, greater_is_better
from ml.serving.output import predict_values, prediction_frame
from ml.training import ensemble, evaluate, records, search, settings, tuning, zoo
from ml.training.data import TaskData
from ml.training.monitoring import day_two_frames
from ml.training.oracle import oracle_metrics
from ml.training.results import Candidate, TaskResult

Progress = Callable[[str], None]
#: refit(pipeline, X, y): the xgboost candidate's pipeline refitted elsewhere on more rows than
#: (X, y) and the rows it learnt from, or None to refit it here (`ml.training.distributed`).
XGBoostRefit = Callable[[BaseEstimator, pd.DataFrame, np.ndarray], tuple[BaseEstimator, int] | None]
#: Calls of the progress callback per task (3 per base model, then ensembles, refit, score,
#: explain, save).
PROGRESS_STEPS = 3 * len(BASE_MODELS) + 5


def split_indices(y: np.ndarray, problem: str, seed: int) -> tuple[np.ndarray, ...]:
    """Positions (into the labelled rows) of train (60 %), validation (20 %) and test (20 %)."""
    idx = np.arange(len(y))
    stratify = y if problem != "regression" else None
    train, rest = train_test_split(idx, test_size=0.4, random_state=seed, stratify=stratify)
    stratify_rest = y[rest] if problem != "regression" else None
    val, test = train_test_split(rest, test_size=0.5, random_state=seed, stratify=stratify_rest)
    return np.sort(train), np.sort(val), np.sort(test)


def _cross_validate(
    name: str,
    pipeline: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray,
    problem: str,
    classes: list | None,
    fold_ids: np.ndarray,
) -> tuple[list[dict[str, float]], np.ndarray]:
    """Metrics per fold and out-of-fold predictions of `pipeline` on the given folds."""
    n_classes = len(classes) if problem == "multiclass" else 0
    oof = np.zeros((len(y), n_classes)) if n_classes else np.zeros(len(y))
    fold_metrics = []
    for k in np.unique(fold_ids):
        held = fold_ids == k
        model = clone(pipeline).fit(X[~held], y[~held], **zoo.fit_params(name, problem, y[~held]))
        pred = predict_values(model, X[held], problem, classes)
        oof[held] = pred
        fold_metrics.append(evaluate.score(problem, y[held], pred, classes))
    return fold_metrics, oof


def _fold_ids(y: np.ndarray, problem: str, n_splits: int, seed: int) -> np.ndarray:
    ids = np.zeros(len(y), dtype=int)
    splitter = tuning.folds(problem, n_splits, seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(y)), y)):
        ids[held] = k
    return ids


def _evaluate(
    candidate: Candidate,
    y_train: np.ndarray,
    y_val: np.ndarray,
    y_test: np.ndarray,
    problem: str,
    classes: list | None,
    metric: str,
    cost_fp: float | None,
    cost_fn: float | None,
) -> None:
    """Selection score, threshold, validation and test metrics of a candidate.

    The decision threshold (binary) and the selection score are computed on the pooled
    out-of-fold training predictions and validation predictions: on small tables a 20 %
    validation split alone is too noisy to rank models or place a threshold.
    """
    pooled_y = np.concatenate([y_train, y_val])
    pooled_pred = np.concatenate([candidate.oof, candidate.val_pred])
    threshold = 0.5
    if problem == "binary":
        threshold = evaluate.choose_threshold(pooled_y, pooled_pred, cost_fp, cost_fn)
        candidate.threshold = threshold
        candidate.val_confusion = evaluate.confusion(y_val, (candidate.val_pred >= threshold) * 1)
        candidate.test_confusion = evaluate.confusion(
            y_test, (candidate.test_pred >= threshold) * 1
        )
    candidate.selection = evaluate.score(problem, pooled_y, pooled_pred, classes, threshold)[metric]
    candidate.val = evaluate.score(problem, y_val, candidate.val_pred, classes, threshold)
    candidate.test = evaluate.score(problem, y_test, candidate.test_pred, classes, threshold)


def refit_on_all(
    champion: Candidate,
    candidates: list[Candidate],
    X: pd.DataFrame,
    y: np.ndarray,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    problem: str,
    seed: int,
    refit_xgboost: XGBoostRefit | None = None,
) -> BaseEstimator:
    """The champion refitted on every labelled row (train + validation + test).

    Model selection and every reported metric use the train-only fits; the model that is saved
    and scores new rows then learns from all the labels there are (the usual "refit full").
    Ensembles refit their bases; stacking keeps its meta-learner, trained on out-of-fold
    predictions of the training rows. `refit_xgboost`, if given, refits the xgboost base on
    more rows than these where it can (every row of a sampled relation, on Spark).
    """

    def refit(c: Candidate) -> BaseEstimator:
        if c.name == "xgboost" and refit_xgboost is not None:
            elsewhere = refit_xgboost(c.model, X, y)
            if elsewhere is not None:  # recorded with the champion (ml.model_runs.params)
                champion.params["xgboost_fit_rows"] = elsewhere[1]
                return elsewhere[0]
        return clone(c.model).fit(X, y, **zoo.fit_params(c.name, problem, y))

    if champion.name in BASE_MODELS:
        return refit(champion)
    bases = [c for c in candidates if c.name in BASE_MODELS]
    refitted = {c.name: refit(c) for c in bases}
    if champion.name == "voting":
        return ensemble.build_voting(problem, refitted, X, y)
    if champion.name == "selection":
        weights = np.array([champion.params["weights"][c.name] for c in bases])
        return ensemble.build_voting(problem, refitted, X, y, weights)
    return ensemble.build_stacking(
        problem, refitted, [c.oof for c in bases], X_train, y_train, seed
    )


@dataclass(frozen=True)
class TrainOptions:
    """How to train (the options of `python -m ml.train`)."""

    seed: int = DEFAULT_SEED
    fast: bool = False  # the small search spaces
    cost_fp: float | None = None  # binary: threshold by cost instead of F1
    cost_fn: float | None = None
    explain_rows: int = settings.EXPLAIN_MAX_ROWS  # 0: no SHAP explanations
    top_k: int = settings.EXPLAIN_TOP_K
    skip_gate: bool = False  # train even if the quality gate last failed
    max_rows: int | None = settings.TRAIN_MAX_ROWS  # beyond it a seeded sample (None: no cap)
    time_budget: float | None = None  # seconds of budgeted search (None or 0: grid search)


def train_task(
    data: TaskData,
    run_id: str,
    options: TrainOptions = TrainOptions(),  # noqa: B008 - frozen, so sharing it is safe
    progress: Progress | None = None,
    refit_xgboost: XGBoostRefit | None = None,
) -> TaskResult:
    """Train, tune, cross-validate and evaluate every candidate of a task; pick the champion,
    refit it, score every row and explain (SHAP) up to `options.explain_rows` of them.

    Needs no warehouse connection: `prepare_task` read everything, so the warehouse stays free
    for other processes while models train (`refit_xgboost`: see `refit_on_all`).
    """
    seed, cost_fp, cost_fn = options.seed, options.cost_fp, options.cost_fn
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    spec, problem, classes = data.spec, data.spec.problem, data.classes
    metric = spec.metric(problem)
    space_name = "fast" if options.fast else "full"
    space = settings.SEARCH_SPACES[space_name]
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    y = data.y
    train, val, test = split_indices(y, problem, seed)
    X_tr, y_tr = X.iloc[train].reset_index(drop=True), y[train]
    X_va, y_va = X.iloc[val].reset_index(drop=True), y[val]
    X_te, y_te = X.iloc[test].reset_index(drop=True), y[test]
    n_folds = settings.CV_FOLDS[space_name]
    if problem != "regression":  # every fold needs every class
        n_folds = min(n_folds, max(2, int(pd.Series(y_tr).value_counts().min())))
    fold_ids = _fold_ids(y_tr, problem, n_folds, seed)
    X_tune, y_tune = tuning.tuning_sample(
        X_tr, y_tr, settings.TUNING_MAX_ROWS[space_name], problem, seed
    )

    candidates: list[Candidate] = []
    fitted: dict[str, BaseEstimator] = {}
    searched: dict[str, dict] = {}  # the budgeted searches' reports, by candidate
    for name in BASE_MODELS:
        t0 = time.perf_counter()
        estimator = zoo.base_estimator(name, problem, y_tr, seed)
        pipeline = zoo.make_pipeline(data.features, estimator, seed)
        if name == "keras":
            pipeline.set_params(
                **{f"model__{k}": v for k, v in settings.KERAS_FIT[space_name].items()}
            )
        say(f"{spec.name}: tuning {name}")
        if name == "keras":
            best = tuning.keras_search(
                pipeline,
                space["keras"],
                X_tune,
                y_tune,
                problem,
                seed,
                settings.KERAS_TRIALS[space_name],
            )
        elif options.time_budget and name in settings.BUDGET_SHARES:
            best, report = search.budgeted_search(
                pipeline, settings.SEARCH_DISTRIBUTIONS[name], X_tune, y_tune, problem, metric,
                seed, options.time_budget * settings.BUDGET_SHARES[name],
                max_trials=settings.SEARCH_TRIALS, patience=settings.SEARCH_PATIENCE,
                fit_params=zoo.fit_params(name, problem, y_tune),
            )  # fmt: skip
            searched[name] = report.as_params()
        else:
            grid = zoo.grid_for(pipeline.named_steps["model"], space[name])
            best = tuning.grid_search(
                pipeline, grid, X_tune, y_tune, problem, metric, seed,
                fit_params=zoo.fit_params(name, problem, y_tune),
            )  # fmt: skip
        pipeline.set_params(**best)
        say(f"{spec.name}: cross-validating {name} ({n_folds} folds)")
        fold_metrics, oof = _cross_validate(name, pipeline, X_tr, y_tr, problem, classes, fold_ids)
        say(f"{spec.name}: fitting {name}")
        t_fit = time.perf_counter()
        model = pipeline.fit(X_tr, y_tr, **zoo.fit_params(name, problem, y_tr))
        fit_seconds = time.perf_counter() - t_fit
        fitted[name] = model
        candidates.append(
            Candidate(
                name=name,
                model=model,
                params={k.removeprefix("model__"): v for k, v in best.items()},
                cv_folds=fold_metrics,
                oof=oof,
                val_pred=predict_values(model, X_va, problem, classes),
                test_pred=predict_values(model, X_te, problem, classes),
                fit_seconds=fit_seconds,
            )
        )
        candidates[-1].params["tuning_seconds"] = round(time.perf_counter() - t0 - fit_seconds, 2)
        if name in searched:
            candidates[-1].params["search"] = searched[name]

    say(f"{spec.name}: assembling the ensembles ({', '.join(ENSEMBLES)})")
    oofs = [c.oof for c in candidates]
    base_seconds = sum(c.fit_seconds for c in candidates)
    for name in ENSEMBLES:
        t0 = time.perf_counter()
        if name == "voting":
            oof = ensemble.voting_oof(problem, oofs)
            model = ensemble.build_voting(problem, fitted, X_tr, y_tr)
            params = {"bases": list(fitted), "voting": "soft"}
        elif name == "selection":
            weights = ensemble.selection_weights(problem, oofs, y_tr, metric, classes)
            oof = ensemble.selection_oof(problem, oofs, y_tr, fold_ids, metric, classes)
            model = ensemble.build_voting(problem, fitted, X_tr, y_tr, weights)
            params = {
                "bases": [n for n, w in zip(fitted, weights, strict=True) if w > 0],
                "weights": dict(zip(fitted, (int(w) for w in weights), strict=True)),
                "method": "greedy ensemble selection (Caruana), soft voting",
            }
        else:
            oof = ensemble.stacking_oof(problem, oofs, y_tr, fold_ids, seed)
            model = ensemble.build_stacking(problem, fitted, oofs, X_tr, y_tr, seed)
            params = {
                "bases": list(fitted),
                "meta_learner": type(ensemble.meta_learner(problem, seed)).__name__,
            }
        fold_metrics = [
            evaluate.score(problem, y_tr[fold_ids == k], oof[fold_ids == k], classes)
            for k in np.unique(fold_ids)
        ]
        candidates.append(
            Candidate(
                name=name,
                model=model,
                params=params,
                cv_folds=fold_metrics,
                oof=oof,
                val_pred=predict_values(model, X_va, problem, classes),
                test_pred=predict_values(model, X_te, problem, classes),
                fit_seconds=base_seconds + time.perf_counter() - t0,
            )
        )

    for candidate in candidates:
        _evaluate(candidate, y_tr, y_va, y_te, problem, classes, metric, cost_fp, cost_fn)
    sign = 1 if greater_is_better(metric) else -1
    champion = max(candidates, key=lambda c: sign * np.nan_to_num(c.selection, nan=-np.inf))
    oracle = oracle_metrics(data, np.concatenate([train, val]), test, cost_fp, cost_fn)

    say(f"{spec.name}: refitting the champion ({champion.name}) on all {len(y):,} labelled rows")
    t0 = time.perf_counter()
    deployed = refit_on_all(champion, candidates, X, y, X_tr, y_tr, problem, seed, refit_xgboost)
    champion.refit_seconds = time.perf_counter() - t0
    champion.model = deployed

    say(f"{spec.name}: scoring {len(data.X_all):,} rows with the champion ({champion.name})")
    layout = records.output_layout(data, champion.threshold)
    values = predict_values(champion.model, data.X_all, problem, classes)
    predictions = prediction_frame(layout, values, data.ids, run_id, champion.name)
    profile, score_log = day_two_frames(
        data, predictions, run_id, champion.name, champion.test.get(metric, float("nan"))
    )
    if data.sampled:  # the relation's every row, where it lies, as the run is written
        say(f"{spec.name}: the champion scores all {data.rows_available:,} rows when written")
        predictions = pd.DataFrame()
    result = TaskResult(
        data=data,
        run_id=run_id,
        candidates=candidates,
        champion=champion.name,
        oracle=oracle,
        split_sizes={"train": len(train), "val": len(val), "test": len(test), "folds": n_folds},
        predictions=predictions,
        runs=pd.DataFrame(),
        profile=profile,
        score_log=score_log,
        seconds=0.0,
    )
    result.evaluation = records.evaluation_frame(result, {"validation": val, "test": test})
    say(f"{spec.name}: explaining the champion's predictions (SHAP)")
    t0 = time.perf_counter()
    result.explanations, result.importance, result.shap_sample = records.explain_champion(
        result, champion, X_tr, seed, options.explain_rows, options.top_k
    )
    result.explain_seconds = time.perf_counter() - t0
    result.explain_top_k = options.top_k
    say(f"{spec.name}: saving artifacts")
    result.runs = records.registry_rows(result, seed)
    result.seconds = time.perf_counter() - started
    return result
