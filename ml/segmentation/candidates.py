"""The candidate clusterings of `ml.segment` and the unsupervised rule that picks one.

Every (algorithm, k) pair is a candidate: k-means (MiniBatchKMeans on a very large fit sample)
and a Gaussian mixture with diagonal covariances, for k in `k_min..k_max`. Each is fitted on one
seeded sample of at most `fit_sample` clustered customers and predicts every customer, so a
million customers cost one prediction pass, not a million-row fit per k.

Each candidate is scored without any truth:

- stability: the mean adjusted Rand index between pairs of refits on two disjoint seeded halves
  of the fit sample, both predicting the scoring sample (1 = the same segments whatever the
  customers drawn; segments a business can act on must not change with the draw);
- silhouette on the scoring sample, the within-cluster sum of squares (inertia) and, for the
  mixtures, the BIC; recorded, not choosing.

`choose` picks the most stable candidate; candidates within STABILITY_TOLERANCE of it count as
equally stable, and among those the smallest k wins (fewer segments are easier to act on),
then k-means (cheaper to apply and explain).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture

from ml.core.errors import UserError

#: Above this many customers in the fit sample, k-means is fitted with MiniBatchKMeans.
FULL_BATCH_MAX_ROWS = 200_000
#: Clustered customers each candidate is fitted on (a seeded sample; the rest are predicted).
DEFAULT_FIT_SAMPLE = 10_000
#: Customers in the scoring sample (silhouette is O(sample^2); stability predicts it).
DEFAULT_SILHOUETTE_SAMPLE = 5_000
#: Pairs of half-sample refits per candidate for its stability.
STABILITY_PAIRS = 2
#: Candidates this close to the most stable one count as equally stable.
STABILITY_TOLERANCE = 0.02
KMEANS_N_INIT = 1
GMM_REG_COVAR = 1e-3
ALGORITHMS = ("KMeans", "GaussianMixture")
CRITERION = "stability"


@dataclass
class Candidate:
    """One (algorithm, k): its fitted model, labels (0 = largest cluster) and scores."""

    algorithm: str
    k: int
    model: object
    labels: np.ndarray
    silhouette: float
    inertia: float
    stability: float
    bic: float | None
    adjusted_rand_index: float | None
    fit_seconds: float

    @property
    def label(self) -> str:
        return f"{self.algorithm} k={self.k}"


def estimator(algorithm: str, k: int, n_rows: int, seed: int) -> object:
    """An unfitted clusterer of `algorithm` ("KMeans" or "GaussianMixture") with k clusters."""
    if algorithm == "GaussianMixture":
        return GaussianMixture(
            n_components=k, covariance_type="diag", reg_covar=GMM_REG_COVAR, random_state=seed
        )
    if algorithm != "KMeans":
        raise ValueError(f"unknown algorithm {algorithm!r}: one of {', '.join(ALGORITHMS)}")
    if n_rows > FULL_BATCH_MAX_ROWS:
        return MiniBatchKMeans(
            n_clusters=k, batch_size=8192, n_init=KMEANS_N_INIT, random_state=seed
        )
    return KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed)


def relabel_by_size(labels: np.ndarray, k: int) -> np.ndarray:
    """Old label -> new label, the largest cluster first (ties: the lower old label)."""
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], c))
    mapping = np.empty(k, dtype=np.int64)
    mapping[order] = np.arange(k)
    return mapping


def seeded_sample(n: int, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded sample of `size` of `n` rows (all rows when n <= size)."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))


def stability(
    X: np.ndarray, score_idx: np.ndarray, algorithm: str, k: int, seed: int, pairs: int
) -> float:
    """Mean adjusted Rand index, over `pairs` seeded splits of `X` into two disjoint halves,
    between the clusterings of `X[score_idx]` by a model fitted on each half."""
    scores = []
    for p in range(pairs):
        rng = np.random.default_rng([seed, p])
        order = rng.permutation(len(X))
        half = len(X) // 2
        a, b = order[:half], order[half : 2 * half]
        la = estimator(algorithm, k, half, seed + 2 * p + 1).fit(X[a]).predict(X[score_idx])
        lb = estimator(algorithm, k, half, seed + 2 * p + 2).fit(X[b]).predict(X[score_idx])
        scores.append(adjusted_rand_score(la, lb))
    return float(np.mean(scores))


def fit_candidates(
    X: np.ndarray,
    k_values: Sequence[int],
    seed: int,
    *,
    sample: int = DEFAULT_SILHOUETTE_SAMPLE,
    fit_sample: int = DEFAULT_FIT_SAMPLE,
    algorithms: Sequence[str] = ALGORITHMS,
    pairs: int = STABILITY_PAIRS,
) -> list[Candidate]:
    """Fit every (algorithm, k) on one seeded sample of `fit_sample` rows and label every row;
    score each on one seeded sample of `sample` rows of that fit sample (the same for all)."""
    n = len(X)
    fit_idx = seeded_sample(n, fit_sample, seed)
    X_fit = X[fit_idx]
    score_idx = seeded_sample(len(X_fit), sample, seed + 1)
    out = []
    for algorithm in algorithms:
        for k in k_values:
            start = time.perf_counter()
            model = estimator(algorithm, k, len(X_fit), seed).fit(X_fit)
            raw_labels = model.predict(X)
            mapping = relabel_by_size(raw_labels, k)
            labels = mapping[raw_labels]
            xs, ls = X_fit[score_idx], labels[fit_idx][score_idx]
            sil = float(silhouette_score(xs, ls)) if len(np.unique(ls)) > 1 else float("nan")
            means = np.stack(
                [
                    X[labels == c].mean(axis=0) if (labels == c).any() else X.mean(0)
                    for c in range(k)
                ]
            )
            inertia = float(((X - means[labels]) ** 2).sum())
            bic = float(model.bic(X_fit)) if isinstance(model, GaussianMixture) else None
            stab = stability(X_fit, score_idx, algorithm, k, seed, pairs)
            out.append(
                Candidate(
                    algorithm, k, model, labels, sil, inertia, stab, bic, None,
                    time.perf_counter() - start,
                )
            )  # fmt: skip
    return out


def choose(candidates: Sequence[Candidate], tolerance: float = STABILITY_TOLERANCE) -> Candidate:
    """The most stable candidate; within `tolerance` of the best stability, the smallest k, then
    the earlier algorithm of ALGORITHMS. Candidates with fewer than two clusters never win."""
    scored = [c for c in candidates if len(np.unique(c.labels)) > 1 and not np.isnan(c.stability)]
    if not scored:
        raise UserError("no candidate produced two or more clusters: the customers are all alike")
    rank = {a: i for i, a in enumerate(ALGORITHMS)}
    best = max(c.stability for c in scored)
    tied = [c for c in scored if c.stability >= best - tolerance]
    return min(tied, key=lambda c: (c.k, rank.get(c.algorithm, len(rank)), -c.stability))
