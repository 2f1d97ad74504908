"""Small synthetic tables in the layout `ml.train` and `ml.segment` write, for the report tests
(no training, no dbt: a warehouse of a few hundred rows written with `replace_tables`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ml.core.tables import (
    CUSTOMER_SEGMENTS,
    EVALUATION_PREDICTIONS,
    FAIRNESS_METRICS,
    FEATURE_IMPORTANCE,
    MODEL_RUNS,
    SEGMENT_PROJECTION,
    SEGMENTATION_RUNS,
    SHAP_SAMPLE,
)
from ml.core.tasks import METRICS
from ml.core.warehouse import open_warehouse
from ml.fairness.metrics import fairness_rows

MODELS = ("linear", "tree", "xgboost", "keras", "voting", "stacking")
CLASSES = ("gold", "silver", "bronze")
SEGMENTS = ("big spenders", "bargain hunters", "occasional")
PERSONAS = ("saver", "splurger", "browser")


def write(path: Path, tables: dict[str, pd.DataFrame]) -> Path:
    """Write `tables` into the warehouse at `path` (created when missing)."""
    with open_warehouse(path) as wh:
        wh.replace_tables(tables)
    return path


# ---------------------------------------------------------------------------------------------
# ml.train


def model_runs(
    problem: str,
    metric: str,
    *,
    task: str = "t",
    run_id: str = "r2",
    champion: str = "voting",
    class_labels: list[str] | None = None,
) -> pd.DataFrame:
    """One `ml.model_runs` row per candidate of one run (`champion` flagged)."""
    rows = []
    for i, name in enumerate(MODELS):
        row = {
            "task": task,
            "run_id": run_id,
            "model_name": name,
            "problem": problem,
            "primary_metric": metric,
            "selection_score": 0.5 + 0.01 * i,
            "threshold": 0.4 if problem == "binary" else np.nan,
            "is_champion": name == champion,
            "n_train": 600,
            "n_val": 200,
            "n_test": 200,
            "cv_folds": 3,
            "fit_seconds": 1.0,
            "relation": "main.t",
            "target": "y",
            "id_column": "id",
            "seed": 3,
            "trained_at": pd.Timestamp("2026-01-02"),
            "test_confusion": json.dumps({"tn": 120, "fp": 20, "fn": 25, "tp": 35}),
            "class_labels": json.dumps(class_labels) if class_labels and name == champion else None,
        }
        for m in METRICS[problem]:
            for prefix in ("cv_", "val_", "test_", "oracle_"):
                col = f"{prefix}{m}_mean" if prefix == "cv_" else f"{prefix}{m}"
                row[col] = 0.7 + 0.01 * i
            row[f"cv_{m}_std"] = 0.02
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["class_labels"] = frame["class_labels"].astype("object")
    return frame


def evaluation(
    problem: str, n: int = 200, seed: int = 0, *, task: str = "t", run_id: str = "r2"
) -> pd.DataFrame:
    """`ml.evaluation_predictions` test rows of every candidate."""
    rng = np.random.default_rng(seed)
    parts = []
    for name in MODELS:
        part = pd.DataFrame(
            {"task": task, "run_id": run_id, "model_name": name, "split": "test"},
            index=range(n),
        )
        part["entity_id"] = [str(i) for i in range(n)]
        if problem == "regression":
            actual = rng.normal(5, 2, n)
            part["actual"], part["predicted"] = actual, actual + rng.normal(0, 0.7, n)
        elif problem == "binary":
            p = rng.uniform(0, 1, n)
            part["actual"] = (rng.uniform(0, 1, n) < p).astype(float)
            part["predicted"] = np.clip(p + rng.normal(0, 0.1, n), 0, 1)
        else:
            actual = rng.integers(0, 3, n)
            logits = rng.normal(0, 1, (n, 3))
            logits[np.arange(n), actual] += 1.5
            proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
            labels = np.array(CLASSES, dtype=object)
            part["actual"], part["predicted"] = actual.astype(float), proba.argmax(1).astype(float)
            part["actual_label"] = labels[actual]
            part["predicted_label"] = labels[proba.argmax(1)]
            part["probabilities"] = [list(map(float, row)) for row in proba]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def importance(problem: str, *, task: str = "t", run_id: str = "r2") -> pd.DataFrame:
    """`ml.feature_importance` rows of the champion: a, b, c by rank."""
    return pd.DataFrame(
        {
            "task": task,
            "run_id": run_id,
            "model_name": "voting",
            "feature": ["a", "b", "c"],
            "mean_abs_shap": [0.3, 0.2, 0.1],
            "rank": np.array([1, 2, 3], dtype="int32"),
            "n_rows": 100,
            "output_space": "value" if problem == "regression" else "probability",
        }
    )


def shap_wide(n: int = 100, seed: int = 1) -> tuple[np.ndarray, pd.DataFrame]:
    """SHAP values and feature values of `n` rows: a (number), b (category, some missing), c
    (a count)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(0, 1, n),
            "b": pd.Series(rng.choice(["x", "y", None], n), dtype=object),
            "c": rng.integers(0, 4, n).astype(float),
        }
    )
    return rng.normal(0, 0.1, (n, 3)), X


def shap_sample(
    n: int = 100, seed: int = 1, *, task: str = "t", run_id: str = "r2", first_id: int = 1
) -> pd.DataFrame:
    """`ml.shap_sample` rows (long: an entity x feature per row) of `shap_wide`'s rows, whose
    entity ids are first_id, first_id + 1, ..."""
    values, X = shap_wide(n, seed)
    rows = []
    for j, feature in enumerate(X.columns):
        categorical = feature == "b"
        rows.append(
            pd.DataFrame(
                {
                    "task": task,
                    "run_id": run_id,
                    "model_name": "voting",
                    "entity_id": [str(first_id + i) for i in range(n)],
                    "feature": feature,
                    "value": np.nan if categorical else X[feature].to_numpy(float),
                    "value_text": [None if v is None or v != v else str(v) for v in X[feature]],
                    "is_categorical": categorical,
                    "shap_value": values[:, j],
                    "output_space": "value",
                }
            )
        )
    frame = pd.concat(rows, ignore_index=True)
    frame["value_text"] = frame["value_text"].astype("object")
    return frame


def fairness(problem: str, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """`ml.fairness_metrics` of `evaluation(problem)` (or `rows`), by a seeded age group and
    gender of each entity, as ml.train computes them."""
    rows = evaluation(problem) if rows is None else rows
    ids = sorted(set(rows["entity_id"]), key=int)
    rng = np.random.default_rng(5)
    attributes = pd.DataFrame(
        {
            "entity_id": ids,
            "age_group": rng.choice(["18-24", "25-34", "35-44", "65+"], len(ids)),
            "gender": rng.choice(["female", "male"], len(ids)),
        }
    )
    return fairness_rows(rows.assign(threshold=0.5, is_champion=False), attributes, problem)


def trained(problem: str, metric: str, **options: object) -> dict[str, pd.DataFrame]:
    """Every table a model page reads, for one task `t` of run `r2`."""
    labels = list(CLASSES) if problem == "multiclass" else None
    return {
        MODEL_RUNS: model_runs(problem, metric, class_labels=labels, **options),
        EVALUATION_PREDICTIONS: evaluation(problem),
        FEATURE_IMPORTANCE: importance(problem),
        SHAP_SAMPLE: shap_sample(),
        FAIRNESS_METRICS: fairness(problem),
    }


# ---------------------------------------------------------------------------------------------
# ml.segment


def segmentation_runs(
    run_id: str = "s1",
    created: str = "2024-06-01",
    chosen_k: int = 3,
    ari: list[float | None] | None = None,
    *,
    stored: bool = True,
    n_clustered: int = 270,
    ceiling: float | None = 0.8,
    stability: bool = True,
) -> pd.DataFrame:
    """`ml.segmentation_runs` rows of one run (KMeans, k 2..4); `stored`: with the z-scores and
    the shares of variance of the projection on the chosen row; `stability`: with the columns of
    the stability choice (stability, bic, criterion, ari_ceiling = `ceiling`)."""
    ks = [2, 3, 4]
    ari = ari if ari is not None else [0.1, 0.4, 0.2]
    zscores = [
        {"segment": s, "zscores": {"order_count": 0.5 - i, "total_spend": i - 0.8}}
        for i, s in enumerate(SEGMENTS)
    ]
    chosen = [k == chosen_k for k in ks]
    frame = pd.DataFrame(
        {
            "run_id": run_id,
            "k": np.array(ks, dtype="int32"),
            "silhouette": [0.30, 0.35, 0.20],
            "inertia": [300.0, 200.0, 150.0],
            "is_chosen": chosen,
            "adjusted_rand_index": pd.Series(ari, dtype="float64"),
            "n_customers": 300,
            "n_clustered": n_clustered,
            "silhouette_sample_size": 250,
            "seed": 42,
            "algorithm": "KMeans",
            "features": json.dumps(["order_count", "total_spend"]),
            "explanation_rules": ["", "|--- order_count <= 3.5\n|   |--- class: occasional", ""],
            "explanation_accuracy": [np.nan, 0.9, np.nan],
            "fit_seconds": 0.1,
            "created_at": pd.Timestamp(created),
        }
    )
    frame["explanation_rules"] = frame["explanation_rules"].where(chosen, None)
    if stability:
        frame["criterion"] = "stability"
        frame["stability"] = [0.95, 0.97, 0.70]
        frame["bic"] = np.nan
        frame["ari_ceiling"] = np.nan if ceiling is None else ceiling
    if stored:
        frame["pca_explained"] = [json.dumps([0.6, 0.3]) if c else None for c in chosen]
        frame["segment_zscores"] = [json.dumps(zscores) if c else None for c in chosen]
    return frame


def customer_segments(run_id: str = "s1", n: int = 300) -> pd.DataFrame:
    """Every customer's segment: clusters 0..2 and 30 customers without orders (cluster 3)."""
    cluster = np.array([i % 3 for i in range(n - 30)] + [3] * 30, dtype="int32")
    names = [*SEGMENTS, "no orders yet"]
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            "segment": [names[c] for c in cluster],
            "cluster_id": cluster,
            "distance_to_centre": np.where(cluster < 3, 1.0, np.nan),
            "run_id": run_id,
        }
    )


def segment_projection(run_id: str = "s1", n: int = 270, seed: int = 0) -> pd.DataFrame:
    """The stored projection of the `n` clustered customers."""
    rng = np.random.default_rng(seed)
    cluster = np.array([i % 3 for i in range(n)], dtype="int32")
    return pd.DataFrame(
        {
            "run_id": run_id,
            "customer_id": np.arange(1, n + 1, dtype="int64"),
            "cluster_id": cluster,
            "segment": [SEGMENTS[c] for c in cluster],
            "pc1": rng.normal(0, 1, n) + cluster,
            "pc2": rng.normal(0, 1, n) - cluster,
        }
    )


def truth(n: int = 300) -> pd.DataFrame:
    """sim.customer_truth's personas (the last 10 customers have none)."""
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n - 9, dtype="int64"),
            "persona": [PERSONAS[i % 3] for i in range(n - 10)],
        }
    )


def profiles(run_id: str = "s1") -> pd.DataFrame:
    """marts.segment_profiles of the run."""
    names = [*SEGMENTS, "no orders yet"]
    return pd.DataFrame(
        {
            "cluster_id": np.arange(4, dtype="int32"),
            "segment": names,
            "customer_count": [90, 90, 90, 30],
            "customer_share": [0.3, 0.3, 0.3, 0.1],
            "mean_income": [50_000.0, 40_000.0, 30_000.0, 20_000.0],
            "run_id": run_id,
        }
    )


def segmented(**options: object) -> dict[str, pd.DataFrame]:
    """Every table the segments page reads, for run `s1`."""
    return {
        SEGMENTATION_RUNS: segmentation_runs(**options),
        CUSTOMER_SEGMENTS: customer_segments(),
        SEGMENT_PROJECTION: segment_projection(),
        "sim.customer_truth": truth(),
        "marts.segment_profiles": profiles(),
    }
