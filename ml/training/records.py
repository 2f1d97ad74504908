"""A training run's results as the rows of the `ml.*` tables, and its candidates as bundles.

- `explain_champion`: `ml.prediction_explanations`, `ml.feature_importance`, `ml.shap_sample`;
- `evaluation_frame`: `ml.evaluation_predictions` (every candidate on the held-out rows);
- `registry_rows`: `ml.model_runs`, saving every candidate as a model bundle on the way
  (`make_bundle`: the pipeline with its input contract and output layout).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml.core.config import artifacts_root
from ml.core.runs import library_versions
from ml.core.tasks import ALL_METRICS
from ml.explanation import tables
from ml.explanation.shap import explain
from ml.serving.bundle import InputContract, ModelBundle, save_bundle, write_run_summary
from ml.serving.output import OutputLayout
from ml.training import settings
from ml.training.data import TaskData
from ml.training.results import Candidate, TaskResult


def output_layout(data: TaskData, threshold: float | None) -> OutputLayout:
    """The prediction columns of a model trained on `data`."""
    return OutputLayout(
        id_column=data.id_column,
        problem=data.spec.problem,
        classes=tuple(data.classes) if data.classes is not None else None,
        class_labels=tuple(data.class_labels) if data.class_labels is not None else None,
        threshold=threshold,
    )


def input_contract(data: TaskData) -> InputContract:
    """The columns a model trained on `data` reads, with their dtypes and categories."""
    return InputContract(
        id_column=data.id_column,
        numeric=tuple(data.features.numeric),
        categorical=tuple(data.features.categorical),
        dtypes={c: str(data.frame[c].dtype) for c in data.features.columns},
        categories={
            c: sorted(map(str, data.frame[c].dropna().unique()))[: InputContract.MAX_CATEGORIES]
            for c in data.features.categorical
        },
        dropped=dict(data.features.dropped),
        ranges={c: _range(data.frame[c]) for c in data.features.numeric},
    )


def _range(values: pd.Series) -> list[float]:
    """[min, median, max] of a numeric column's finite values (empty when it has none)."""
    x = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
    x = x[np.isfinite(x)]
    return [float(x.min()), float(np.median(x)), float(x.max())] if len(x) else []


def explanation_draws(
    n_rows: int, n_train: int, seed: int, max_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows explained, training rows of the background) of a run: every row up to `max_rows`
    (beyond it a seeded sample), and a seeded sample of `settings.EXPLAIN_REFERENCE_ROWS`
    training rows. The same draws give the explanation tables and the bundles' `reference`."""
    rng = np.random.default_rng(seed)
    rows = (
        np.arange(n_rows)
        if n_rows <= max_rows
        else np.sort(rng.choice(n_rows, max_rows, replace=False))
    )
    reference_rows = min(settings.EXPLAIN_REFERENCE_ROWS, n_train)
    return rows, np.sort(rng.choice(n_train, reference_rows, replace=False))


def make_bundle(
    data: TaskData,
    run_id: str,
    model_name: str,
    pipeline: Any,
    threshold: float | None,
    seed: int,
    **info: Any,
) -> ModelBundle:
    """A model trained on `data` as the bundle serving loads (`info`: more for people)."""
    return ModelBundle(
        task=data.spec.name,
        run_id=run_id,
        model_name=model_name,
        pipeline=pipeline,
        contract=input_contract(data),
        output=output_layout(data, threshold),
        info={
            "relation": data.spec.relation,
            "target": data.spec.target,
            "target_mapping": data.target_mapping,
            "seed": seed,
            "versions": library_versions(),
            "data_fingerprint": data.fingerprint,
            **info,
        },
    )


def explain_champion(
    result: TaskResult,
    champion: Candidate,
    X_train: pd.DataFrame,
    seed: int,
    max_rows: int,
    top_k: int,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """`ml.prediction_explanations`, `ml.feature_importance` and `ml.shap_sample` rows of the
    champion.

    Every scored row is explained, up to `max_rows` (beyond it a seeded sample; the importance
    is then that sample's). The background of the linear and Keras parts is a seeded sample of
    the training rows. The SHAP sample keeps every feature of a seeded sample of at most
    `settings.EXPLAIN_SAMPLE_ROWS` of the explained rows (for the reports).
    """
    data = result.data
    n = len(data.X_all)
    rows, picked_reference = explanation_draws(n, len(X_train), seed, max(max_rows, 1))
    reference = X_train.iloc[picked_reference]
    result.explain_reference = reference
    if max_rows <= 0 or n == 0:
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    explanation = explain(champion.model, data.X_all.iloc[rows], reference, seed=seed)
    labels = None
    if data.spec.problem == "multiclass":
        # positions into the model's classes_ (the codes 0..K-1) -> the class labels
        labels = [data.class_labels[int(c)] for c in champion.model.classes_]
    common = {"task": data.spec.name, "run_id": result.run_id, "model_name": champion.name}
    rows_frame = tables.explanation_rows(
        explanation,
        data.frame.iloc[rows],
        data.ids.iloc[rows],
        top_k=top_k,
        class_labels=labels,
        **common,
    )
    # a stream of its own, so the rows and references above stay those of earlier versions
    keep = min(settings.EXPLAIN_SAMPLE_ROWS, len(rows))
    picked = np.sort(np.random.default_rng([seed, 1]).choice(len(rows), keep, replace=False))
    sample = tables.sample_rows(
        explanation.subset(picked),
        data.X_all.iloc[rows[picked]],
        data.frame.iloc[rows[picked]],
        data.ids.iloc[rows[picked]],
        set(data.features.categorical),
        **common,
    )
    return rows_frame, tables.importance_rows(explanation, **common), sample


def evaluation_frame(result: TaskResult, splits: dict[str, np.ndarray]) -> pd.DataFrame:
    """`ml.evaluation_predictions` rows: every candidate's prediction of the held-out rows.

    `actual` and `predicted` are numbers: the value (regression), 0/1 and the positive-class
    probability (binary), or class codes (multiclass, with `actual_label`, `predicted_label` and
    every class's probability in `probabilities`). The models here are the train-only fits the
    reported metrics come from. The reports draw ROC, calibration and residual plots from it.
    """
    data = result.data
    problem = data.spec.problem
    ids = data.ids.to_numpy()[data.labelled]
    labels = np.asarray([str(v) for v in data.class_labels or []], dtype=object)
    parts = []
    for c in result.candidates:
        for split, rows in splits.items():
            pred = c.val_pred if split == "validation" else c.test_pred
            n = len(rows)
            part = pd.DataFrame(
                {
                    "task": pd.Series([data.spec.name] * n, dtype="str"),
                    "run_id": pd.Series([result.run_id] * n, dtype="str"),
                    "model_name": pd.Series([c.name] * n, dtype="str"),
                    "split": pd.Series([split] * n, dtype="str"),
                    "entity_id": pd.Series([str(v) for v in ids[rows]], dtype="str"),
                }
            )
            actual = data.y[rows]
            if problem == "multiclass":
                pred = np.asarray(pred, dtype=float).reshape(n, -1)
                codes = np.asarray([int(v) for v in actual])
                part["actual"] = codes.astype(float)
                part["predicted"] = pred.argmax(axis=1).astype(float)
                part["actual_label"] = pd.Series(labels[codes], dtype="str")
                part["predicted_label"] = pd.Series(labels[pred.argmax(axis=1)], dtype="str")
                part["probabilities"] = list(pred)
            else:
                part["actual"] = np.asarray(actual, dtype=float)
                part["predicted"] = np.asarray(pred, dtype=float)
                part["actual_label"] = pd.Series([None] * n, dtype="str")
                part["predicted_label"] = pd.Series([None] * n, dtype="str")
                part["probabilities"] = [None] * n
            part["threshold"] = c.threshold if c.threshold is not None else np.nan
            part["is_champion"] = c.name == result.champion
            parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _fit_rows(candidate: Candidate, labelled: int, train: int) -> int:
    """Rows the saved model learnt from: the training split, or (the refitted champion) every
    labelled row read, or every labelled row of the relation (an xgboost refitted on Spark)."""
    if candidate.refit_seconds is None:
        return train
    return (
        int(candidate.params.get("xgboost_fit_rows", labelled))
        if candidate.name == "xgboost"
        else labelled
    )


def registry_rows(result: TaskResult, seed: int) -> pd.DataFrame:
    """One `ml.model_runs` row per candidate; saves every candidate's artifact on the way."""
    data = result.data
    trained_at = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    folder = artifacts_root() / data.spec.name / result.run_id
    rows = []
    for c in result.candidates:
        bundle = make_bundle(
            data,
            result.run_id,
            c.name,
            c.model,
            c.threshold,
            seed,
            refit_on_all_labelled_rows=c.refit_seconds is not None,
            metrics={"val": c.val, "test": c.test},
            params=c.params,
            explain_top_k=result.explain_top_k,
        )
        bundle.reference = result.explain_reference
        path, digest = save_bundle(bundle, folder)
        cv = c.cv()
        row: dict[str, Any] = {
            "run_id": result.run_id,
            "task": data.spec.name,
            "model_name": c.name,
            "problem": data.spec.problem,
            "primary_metric": data.spec.metric(data.spec.problem),
            "params": json.dumps(c.params, default=str, sort_keys=True),
        }
        for m in ALL_METRICS:
            row[f"cv_{m}_mean"] = cv.get(m, (np.nan, np.nan))[0]
            row[f"cv_{m}_std"] = cv.get(m, (np.nan, np.nan))[1]
            row[f"val_{m}"] = c.val.get(m, np.nan)
            row[f"test_{m}"] = c.test.get(m, np.nan)
            row[f"oracle_{m}"] = result.oracle.get(m, np.nan)
        row.update(
            selection_score=c.selection,
            threshold=c.threshold if c.threshold is not None else np.nan,
            val_confusion=json.dumps(c.val_confusion) if c.val_confusion else None,
            test_confusion=json.dumps(c.test_confusion) if c.test_confusion else None,
            cv_folds=result.split_sizes["folds"],
            fit_seconds=round(c.fit_seconds, 3),
            n_train=result.split_sizes["train"],
            fit_rows=_fit_rows(c, len(data.y), result.split_sizes["train"]),
            refit_seconds=c.refit_seconds,
            n_val=result.split_sizes["val"],
            n_test=result.split_sizes["test"],
            n_features=len(data.features.columns),
            dropped_features=json.dumps(sorted(data.spec.dropped)),
            rows_available=data.rows_available,
            rows_used=data.rows_used,
            is_champion=c.name == result.champion,
            artifact_path=str(path),
            artifact_sha256=digest,
            relation=data.spec.relation,
            target=data.spec.target,
            id_column=data.id_column,
            target_mapping=json.dumps(data.target_mapping) if data.target_mapping else None,
            class_labels=(
                json.dumps([str(v) for v in data.class_labels])
                if data.spec.problem == "multiclass"
                else None
            ),
            seed=seed,
            library_versions=json.dumps(library_versions(), sort_keys=True),
            data_fingerprint=data.fingerprint,
            trained_at=trained_at,
        )
        rows.append(row)
    write_run_summary(
        folder,
        {
            "task": data.spec.name,
            "run_id": result.run_id,
            "champion": result.champion,
            "oracle": result.oracle,
            "split_sizes": result.split_sizes,
            "candidates": {
                c.name: {
                    "artifact": Path(r["artifact_path"]).name,
                    "artifact_sha256": r["artifact_sha256"],
                    "selection_score": c.selection,
                    "val": c.val,
                    "test": c.test,
                }
                for c, r in zip(result.candidates, rows, strict=True)
            },
        },
    )
    return pd.DataFrame(rows)
