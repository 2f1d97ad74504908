"""The unsupervised choice of method and k, and the supervised ceiling, on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.core.errors import UserError
from ml.segmentation import candidates as cand
from ml.segmentation.ceiling import persona_ceiling


def _blobs(n_per: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], dtype=float)
    X = np.vstack([c + rng.normal(size=(n_per, 3)) for c in centres])
    return X, np.repeat(np.arange(4), n_per)


def test_four_well_separated_blobs_give_k_4() -> None:
    X, _ = _blobs()
    found = cand.fit_candidates(X, range(2, 7), seed=1, sample=300, fit_sample=400)
    assert {(c.algorithm, c.k) for c in found} == {
        (a, k) for a in cand.ALGORITHMS for k in range(2, 7)
    }
    chosen = cand.choose(found)
    assert chosen.k == 4
    assert chosen.stability > 0.95
    assert all(len(c.labels) == len(X) for c in found)  # fitted on a sample, every row labelled
    sizes = np.bincount(chosen.labels)
    assert (np.diff(sizes) <= 0).all(), "cluster 0 is the largest"
    assert all((c.bic is None) == (c.algorithm == "KMeans") for c in found)


def _candidate(algorithm: str, k: int, stability: float) -> cand.Candidate:
    labels = np.arange(20) % k
    return cand.Candidate(algorithm, k, None, labels, 0.1, 1.0, stability, None, None, 0.0)


def test_choose_takes_the_most_stable_then_the_smallest_k_then_kmeans() -> None:
    pool = [
        _candidate("KMeans", 2, 0.80),
        _candidate("KMeans", 3, 0.95),
        _candidate("GaussianMixture", 3, 0.96),
        _candidate("GaussianMixture", 5, 0.97),
    ]
    chosen = cand.choose(pool)  # 0.95..0.97 tie within 0.02: the smallest k, then k-means
    assert (chosen.algorithm, chosen.k) == ("KMeans", 3)
    assert (cand.choose(pool, tolerance=0.0).algorithm, cand.choose(pool, tolerance=0.0).k) == (
        "GaussianMixture",
        5,
    )
    with pytest.raises(UserError, match="two or more clusters"):
        cand.choose([cand.Candidate("KMeans", 2, None, np.zeros(5, int), 0, 0, 1.0, None, None, 0)])


def test_ceiling_needs_truth_and_is_high_when_behaviour_tells_the_personas() -> None:
    X, y = _blobs(n_per=60)
    active = np.ones(len(X), dtype=bool)
    active[::10] = False  # some customers without orders: their own group
    persona = np.array([f"p{v}" for v in y], dtype=object)
    assert persona_ceiling(X[active], active, None, seed=0) is None
    assert persona_ceiling(X[active], active, np.full(len(X), None, dtype=object), seed=0) is None
    ceiling = persona_ceiling(X[active], active, persona, seed=0)
    assert ceiling is not None and 0.7 < ceiling <= 1.0
    noise = np.random.default_rng(0).normal(size=X[active].shape)
    assert persona_ceiling(noise, active, persona, seed=0) < ceiling - 0.3
    partly = persona.copy()
    partly[::3] = None  # unknown personas are left out, not a group
    assert persona_ceiling(X[active], active, partly, seed=0) > 0.7
    assert pd.isna(partly[0])
