"""Small synthetic tables in the layout `ml.train` and `ml.segment` write, for the report tests
(no training, no dbt: a warehouse of a few hundred rows written with `replace_tables`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ml.core.tables import (
    CUSTOMER_SEGMENTS,
    DEPLOYMENTS,
    EVALUATION_PREDICTIONS,
    FAIRNESS_METRICS,
    FEATURE_IMPORTANCE,
    MODEL_RUNS,
    PROMOTION_DECISIONS,
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


#: The deployments of `deployments()` by default: run r1's champion deployed by its first run,
#: then run r2's champion promoted (run r2 of `trained` is the deployed one).
DEPLOYED = (("r1", "tree", "ml.train"), ("r2", "voting", "ml.promote"))
#: ... and then rolled back to run r1's model: run r2's champion is no longer deployed.
ROLLED_BACK = (*DEPLOYED, ("r1", "tree", "ml.rollback"))


def deployments(
    history: tuple[tuple[str, str, str], ...] = DEPLOYED, *, task: str = "t"
) -> pd.DataFrame:
    """`ml.deployments` rows of `task`: one per (run_id, model_name, command) of `history`,
    deployment ids 1, 2, ... a day apart from 2026-01-01, each replacing the one before."""
    n = len(history)
    return pd.DataFrame(
        {
            "task": pd.Series([task] * n, dtype="str"),
            "deployment_id": pd.Series(range(1, n + 1), dtype="int64"),
            "run_id": pd.Series([h[0] for h in history], dtype="str"),
            "model_name": pd.Series([h[1] for h in history], dtype="str"),
            "artifact_path": [
                f"artifacts/{task}/{run}/{model}.joblib" for run, model, _ in history
            ],
            "artifact_sha256": [f"{i:02d}" + "ab" * 31 for i in range(1, n + 1)],
            "deployed_at": pd.Series(
                pd.date_range("2026-01-01 08:30", periods=n, freq="D"), dtype="datetime64[us]"
            ),
            "command": pd.Series([h[2] for h in history], dtype="str"),
            "reason": [f"reason {i}" for i in range(1, n + 1)],
            "previous_deployment_id": pd.array([None, *range(1, n)], dtype="Int64"),
        }
    )


def promotion_decisions(n_auto: int = 1, *, task: str = "t") -> pd.DataFrame:
    """`ml.promotion_decisions` rows of `task`: the first run's (r1/tree, deployed as deployment
    1), then `n_auto` decisions of ml.train against it an hour apart, the last of them about
    r2/voting, promoted (deployment 2); the others not promoted (no significant gain)."""
    first = {
        "task": task, "decided_at": pd.Timestamp("2026-01-01 08:30"),
        "challenger_run_id": "r1", "challenger_model": "tree", "deployed_run_id": None,
        "deployed_model": None, "deployed_deployment_id": None, "mode": "first",
        "metric": "roc_auc", "test": None, "alpha": 0.05, "n_rows": 0, "n_new_rows": 0,
        "challenger_score": np.nan, "deployed_score": np.nan, "difference": np.nan,
        "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "significant": False,
        "quality_passed": True, "fairness_passed": True,
        "fairness_checks": "report only: no attribute gated", "promoted": True,
        "reason": "the task's first run: its champion is deployed", "deployment_id": 1,
    }  # fmt: skip
    rows = [first]
    for i in range(n_auto):
        last = i == n_auto - 1
        rows.append({
            **first, "decided_at": pd.Timestamp("2026-01-01 20:00") + pd.Timedelta(hours=i),
            "challenger_run_id": "r2" if last else f"x{i}", "challenger_model": "voting",
            "deployed_run_id": "r1", "deployed_model": "tree", "deployed_deployment_id": 1,
            "mode": "auto", "test": "DeLong", "n_rows": 400, "n_new_rows": 150,
            "challenger_score": 0.81, "deployed_score": 0.78, "difference": 0.03,
            "ci_low": 0.012 if last else -0.004, "ci_high": 0.048 if last else 0.064,
            "p_value": 0.0021 if last else 0.09, "significant": last,
            "fairness_checks": "gender demographic_parity_ratio 0.870 >= 0.8 ok; "
            "gender equalized_odds_difference 0.040 <= 0.1 ok",
            "promoted": last,
            "reason": "significant gain; the quality and fairness gates passed" if last
            else "no significant gain",
            "deployment_id": 2 if last else None,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    for column in ("deployed_deployment_id", "n_rows", "n_new_rows", "deployment_id"):
        frame[column] = pd.array(frame[column].tolist(), dtype="Int64")
    frame["decided_at"] = frame["decided_at"].astype("datetime64[us]")
    for column in ("test", "deployed_run_id", "deployed_model"):
        frame[column] = frame[column].astype("object")
    return frame


def trained(problem: str, metric: str, **options: object) -> dict[str, pd.DataFrame]:
    """Every table a model page reads, for one task `t` of run `r2` (deployed: `DEPLOYED`)."""
    labels = list(CLASSES) if problem == "multiclass" else None
    return {
        MODEL_RUNS: model_runs(problem, metric, class_labels=labels, **options),
        EVALUATION_PREDICTIONS: evaluation(problem),
        FEATURE_IMPORTANCE: importance(problem),
        SHAP_SAMPLE: shap_sample(),
        FAIRNESS_METRICS: fairness(problem),
        DEPLOYMENTS: deployments(),
        PROMOTION_DECISIONS: promotion_decisions(),
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
