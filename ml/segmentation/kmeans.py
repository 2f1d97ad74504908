"""Unsupervised customer segmentation (`python -m ml.segment`): k-means or a Gaussian mixture,
method and k by stability.

Clusters the purchase behaviour of `marts.customer_features` (never the labels `segment` and
`customer_satisfaction`, never `sim.*`):

- customers without orders have no behaviour to cluster: they are the fixed segment
  "no orders yet" (cluster_id k); the candidates are fitted on the customers with orders;
- missing values are structural, so they are filled by what they mean before any statistic:
  a customer with one order has no gap between orders, and one without orders has been
  inactive for their whole tenure, so `recency_days` and `avg_days_between_orders` become
  `tenure_days`; `avg_order_value` and `avg_items_per_order` become 0 (nothing bought);
  anything else missing (`avg_discount_pct`, `return_rate`) gets the median (neutral). The
  fill, median, log1p and scaler form one scikit-learn Pipeline (`build_preprocessor`);
- counts, money and durations are heavy-tailed, so they go through `log1p`, then every feature
  is standardised;
- the clusters are fitted on the value view (`CLUSTER_FEATURES`: order value, discount, returns,
  spend); every (algorithm, k) over KMeans and GaussianMixture and `--k-min..--k-max` is a
  candidate, fitted on a seeded sample and predicting everyone (`ml.segmentation.candidates`);
  the most stable one wins, the smallest k among near-ties (stability = agreement of refits
  on disjoint half-samples). The
  adjusted Rand index against `sim.customer_truth` and the supervised ceiling
  (`ml.segmentation.ceiling`) are recorded when that table exists and never choose;
- a depth-3 decision tree on the unscaled features predicts the chosen cluster, so the
  clusters come with readable rules (and the tree's accuracy says how faithful they are);
- each cluster gets a short name from its mean z-scores over every behaviour feature;
- what the segments report draws is computed here too (each segment's mean z-scores and a
  seeded sample on the first two principal components), so the report reads tables only.

This module computes on frames; `ml.segmentation.run` reads and writes the warehouse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.tree import DecisionTreeClassifier, export_text

from ml.core.config import DEFAULT_SEED
from ml.core.errors import UserError
from ml.core.runs import new_run_id
from ml.core.tables import EXPLANATION_DEPTH, NO_ORDERS_SEGMENT
from ml.segmentation.behaviour import (
    CATEGORIES,
    CLUSTER_FEATURES,
    FEATURES_RELATION,
    behaviour_frame,
    build_preprocessor,
)
from ml.segmentation.candidates import (
    CRITERION,
    DEFAULT_FIT_SAMPLE,
    DEFAULT_SILHOUETTE_SAMPLE,
    STABILITY_TOLERANCE,
    Candidate,
    choose,
    fit_candidates,
)
from ml.segmentation.ceiling import adjusted_rand, persona_ceiling

DEFAULT_K_MIN, DEFAULT_K_MAX = 2, 10
#: Clustered customers kept in ml.segment_projection (a seeded sample).
PROJECTION_POINTS = 5_000


# --------------------------------------------------------------------------- names and rules

#: A feature's cluster mean this many standard deviations from the overall mean earns a word.
NAME_THRESHOLD = 0.5
#: (feature, direction, word): the word applies when the cluster's standardised centre is
#: >= NAME_THRESHOLD (direction +1) or <= -NAME_THRESHOLD (direction -1).
NAME_RULES: tuple[tuple[str, int, str], ...] = (
    ("total_spend", +1, "high spend"),
    ("total_spend", -1, "low spend"),
    ("order_count", +1, "frequent"),
    ("order_count", -1, "occasional"),
    ("recency_days", +1, "lapsed"),
    ("orders_last_90d", +1, "recently active"),
    ("avg_discount_pct", +1, "discount seekers"),
    ("avg_order_value", +1, "big tickets"),
    ("avg_items_per_order", +1, "big baskets"),
    ("return_rate", +1, "returners"),
    ("mobile_order_share", +1, "mobile-first"),
    *((f"share_{c}", +1, f"{c} fans") for c in CATEGORIES),
    ("distinct_categories", +1, "broad mix"),
    ("tenure_days", -1, "new"),
    ("tenure_days", +1, "long-standing"),
)
NAME_WORDS = 2


def name_segments(centres: pd.DataFrame) -> list[str]:
    """A short, unique name per cluster from its standardised centre (rows = clusters).

    Deterministic: the (at most) two rules with the largest |z| beyond NAME_THRESHOLD, in rule
    order on ties; none beyond the threshold is "typical"; repeats get " 2", " 3" ...
    """
    names = []
    for _, centre in centres.iterrows():
        words: list[tuple[float, int, str]] = []
        for rank, (feature, direction, word) in enumerate(NAME_RULES):
            if feature not in centre or pd.isna(centre[feature]):
                continue
            z = float(centre[feature]) * direction
            if z >= NAME_THRESHOLD:
                words.append((z, rank, word))
        words.sort(key=lambda w: (-w[0], w[1]))
        names.append(", ".join(w[2] for w in words[:NAME_WORDS]) or "typical")
    return unique_names([*names])


def unique_names(names: Sequence[str]) -> list[str]:
    """`names` with repeats suffixed " 2", " 3" ... (the first keeps its name)."""
    taken = set(names)
    out: list[str] = []
    for name in names:
        if name not in out:
            out.append(name)
            continue
        i = 2
        while f"{name} {i}" in taken or f"{name} {i}" in out:
            i += 1
        out.append(f"{name} {i}")
    return out


def explain_clusters(
    raw: pd.DataFrame, labels: np.ndarray, names: Sequence[str], seed: int
) -> tuple[str, float]:
    """Rules of a depth-3 tree predicting the cluster from the unscaled features, and its accuracy.

    Give it `raw` without NULLs (the pipeline's fill and impute steps): its thresholds are then in
    the warehouse's own units, with no NULL branches.
    """
    tree = DecisionTreeClassifier(max_depth=EXPLANATION_DEPTH, random_state=seed)
    tree.fit(raw, labels)
    rules = export_text(
        tree,
        feature_names=list(raw.columns),
        class_names=[names[c] for c in tree.classes_],
        decimals=2,
    )
    return rules, float(tree.score(raw, labels))


@dataclass
class SegmentationResult:
    """Everything one run computed; `runs` and `segments` are the tables it writes."""

    run_id: str
    chosen: Candidate
    candidates: list[Candidate]
    names: list[str]
    rules: str
    explanation_accuracy: float
    runs: pd.DataFrame
    segments: pd.DataFrame
    profile: pd.DataFrame = field(repr=False)
    projection: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    seconds: float = 0.0
    ari_ceiling: float | None = None


def segment_customers(
    customers: pd.DataFrame,
    *,
    truth: pd.DataFrame | None = None,
    k_min: int = DEFAULT_K_MIN,
    k_max: int = DEFAULT_K_MAX,
    seed: int = DEFAULT_SEED,
    sample: int = DEFAULT_SILHOUETTE_SAMPLE,
    fit_sample: int = DEFAULT_FIT_SAMPLE,
    run_id: str | None = None,
) -> SegmentationResult:
    """Segment `customers` (rows of marts.customer_features); `truth` = (customer_id, persona).

    Besides the segments, the result holds what the report draws from, computed here so the
    report reads tables only: each segment's mean z-score per feature, and a seeded sample of at
    most PROJECTION_POINTS clustered customers on the first two principal components of the
    scaled features (`projection`; the shares of variance go to the chosen row of `runs`).

    Customers without orders have no behaviour to cluster: they form the fixed segment
    NO_ORDERS_SEGMENT (cluster_id k, after the clusters 0..k-1, no distance); the candidates
    are fitted on the value view (CLUSTER_FEATURES) of the customers with at least one order.
    With `truth`, every candidate's adjusted Rand index and the run's supervised ceiling are
    recorded; neither ever chooses.
    """
    start = time.perf_counter()
    if k_min < 2 or k_max < k_min:
        raise UserError(f"need 2 <= k-min <= k-max, got k-min {k_min}, k-max {k_max}")
    if sample < 2:
        raise UserError(f"--sample must be at least 2, got {sample}")
    if "customer_id" not in customers.columns:
        raise UserError(f"{FEATURES_RELATION} has no column 'customer_id'")
    run_id = run_id or new_run_id()
    customers = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    raw = behaviour_frame(customers)
    n = len(raw)
    active = (raw["order_count"] > 0).to_numpy()
    n_active = int(active.sum())
    if n_active < 2 * k_max:  # the stability refits each fit half of them
        raise UserError(
            f"{n_active} customers with orders are too few for k up to {k_max} (at least "
            f"{2 * k_max}): lower --k-max"
        )
    pipeline = build_preprocessor(list(raw.columns))
    scaled = pipeline.fit_transform(raw[active])
    cluster_cols = [c for c in CLUSTER_FEATURES if c in raw.columns]
    X = build_preprocessor(cluster_cols).fit_transform(raw.loc[active, cluster_cols])
    X = X.to_numpy(dtype=np.float64)

    persona = None
    if truth is not None:
        persona = (
            customers[["customer_id"]]
            .merge(truth[["customer_id", "persona"]], on="customer_id", how="left")["persona"]
            .astype("object")
            .to_numpy()
        )
    candidates = fit_candidates(
        X, range(k_min, k_max + 1), seed, sample=sample, fit_sample=max(fit_sample, 2 * k_max)
    )
    for c in candidates:
        c.adjusted_rand_index = adjusted_rand(persona, _all_labels(c.labels, active, c.k))
    chosen = choose(candidates)
    ceiling = persona_ceiling(scaled.to_numpy(dtype=np.float64), active, persona, seed)

    # names from each segment's mean z-scores over every behaviour feature
    zscores = scaled.groupby(chosen.labels).mean().reindex(range(chosen.k))
    names = name_segments(zscores)
    if not active.all():
        names = unique_names([*names, NO_ORDERS_SEGMENT])
    labels = _all_labels(chosen.labels, active, chosen.k)
    # readable thresholds: the unscaled features after the fill and impute steps (no NULLs)
    rules, accuracy = explain_clusters(pipeline[:2].transform(raw), labels, names, seed)
    centres = np.stack(
        [X[chosen.labels == c].mean(axis=0) if (chosen.labels == c).any() else X.mean(0)
         for c in range(chosen.k)]
    )  # fmt: skip
    distance = np.full(n, np.nan)
    distance[active] = np.linalg.norm(X - centres[chosen.labels], axis=1)

    created_at = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None))
    segments = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].astype("int64").to_numpy(),
            "segment": pd.Series([names[c] for c in labels], dtype="str"),
            "cluster_id": labels.astype("int32"),
            "distance_to_centre": distance,
            "run_id": pd.Series([run_id] * n, dtype="str"),
        }
    )
    profile = raw.groupby(labels).mean()
    profile.insert(0, "customers", np.bincount(labels))
    profile.insert(0, "segment", names)
    profile.index.name = "cluster_id"

    projection, explained = _project(scaled, customers, chosen, names, active, seed)
    zscore_list = [
        {"segment": names[c], "zscores": {k: float(v) for k, v in zscores.loc[c].items()}}
        for c in zscores.index
    ]
    is_chosen = [c is chosen for c in candidates]
    rows = len(candidates)

    def chosen_only(value, missing):
        return [value if flag else missing for flag in is_chosen]

    def floats(values):
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")

    runs = pd.DataFrame(
        {
            "run_id": pd.Series([run_id] * rows, dtype="str"),
            "k": np.array([c.k for c in candidates], dtype="int32"),
            "silhouette": [c.silhouette for c in candidates],
            "inertia": [c.inertia for c in candidates],
            "is_chosen": is_chosen,
            "adjusted_rand_index": floats(c.adjusted_rand_index for c in candidates),
            "n_customers": np.full(rows, n, dtype="int64"),
            "n_clustered": np.full(rows, n_active, dtype="int64"),
            "silhouette_sample_size": np.full(rows, min(sample, n_active), dtype="int64"),
            "seed": np.full(rows, seed, dtype="int64"),
            "algorithm": pd.Series([c.algorithm for c in candidates], dtype="str"),
            "features": pd.Series([json.dumps(list(raw.columns))] * rows, dtype="str"),
            "segment_names": pd.Series(chosen_only(json.dumps(names), None), dtype="str"),
            "explanation_rules": pd.Series(chosen_only(rules, None), dtype="str"),
            "explanation_accuracy": pd.Series(chosen_only(accuracy, np.nan), dtype="float64"),
            "pca_explained": pd.Series(chosen_only(json.dumps(explained), None), dtype="str"),
            "segment_zscores": pd.Series(chosen_only(json.dumps(zscore_list), None), dtype="str"),
            "fit_seconds": [c.fit_seconds for c in candidates],
            "created_at": [created_at] * rows,
            "cluster_features": pd.Series([json.dumps(cluster_cols)] * rows, dtype="str"),
            "criterion": pd.Series([CRITERION] * rows, dtype="str"),
            "stability": [c.stability for c in candidates],
            "stability_tolerance": np.full(rows, STABILITY_TOLERANCE, dtype="float64"),
            "bic": floats(c.bic for c in candidates),
            "fit_sample_size": np.full(rows, min(max(fit_sample, 2 * k_max), n_active), "int64"),
            "ari_ceiling": floats([ceiling] * rows),
        }
    )
    seconds = time.perf_counter() - start
    return SegmentationResult(
        run_id, chosen, candidates, names, rules, accuracy, runs, segments, profile, projection,
        seconds, ceiling,
    )  # fmt: skip


def _project(
    scaled: pd.DataFrame,
    customers: pd.DataFrame,
    chosen: Candidate,
    names: list[str],
    active: np.ndarray,
    seed: int,
) -> tuple[pd.DataFrame, list[float]]:
    """A seeded sample of the clustered customers on the first two principal components of
    their scaled features (PCA fitted on every clustered customer), and the components' shares
    of the variance."""
    X = scaled.to_numpy(dtype=np.float64)
    pca = PCA(n_components=2, random_state=seed).fit(X)
    n = len(X)
    idx = np.arange(n)
    if n > PROJECTION_POINTS:
        idx = np.sort(np.random.default_rng(seed).choice(n, PROJECTION_POINTS, replace=False))
    xy = pca.transform(X[idx])
    labels = chosen.labels[idx]
    points = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy()[active][idx].astype("int64"),
            "cluster_id": labels.astype("int32"),
            "segment": pd.Series([names[c] for c in labels], dtype="str"),
            "pc1": xy[:, 0],
            "pc2": xy[:, 1],
        }
    )
    return points, [float(r) for r in pca.explained_variance_ratio_]


def _all_labels(active_labels: np.ndarray, active: np.ndarray, k: int) -> np.ndarray:
    """Labels of every customer: the k-means cluster, or k for a customer without orders."""
    labels = np.full(len(active), k, dtype=np.int64)
    labels[active] = active_labels
    return labels
