"""How well the personas can be recovered from behaviour at all: the supervised ceiling.

A segmentation is scored by its adjusted Rand index (ARI) against the simulator's personas. The
ceiling is the same score for a classifier that is TOLD the personas: a multinomial logistic
regression on the same scaled behaviour features, cross-validated (5 seeded stratified folds),
its out-of-fold predictions scored like a segmentation (customers without orders as one group
of their own, as the segments put them). No unsupervised method should be expected above it.
It needs the truth, so it is computed only when `sim.customer_truth` exists and never chooses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from ml.segmentation.candidates import seeded_sample

#: Customers (with and without orders) the ceiling is measured on: a seeded sample.
CEILING_SAMPLE = 10_000
CEILING_FOLDS = 5
NO_ORDERS_GROUP = "(no orders)"


def adjusted_rand(persona: np.ndarray | None, labels: np.ndarray) -> float | None:
    """Adjusted Rand index of `labels` against the personas (customers with one), else None."""
    if persona is None:
        return None
    known = pd.notna(persona)
    if not known.any():
        return None
    return float(adjusted_rand_score(persona[known].astype(str), np.asarray(labels)[known]))


def persona_ceiling(
    X_active: np.ndarray,
    active: np.ndarray,
    persona: np.ndarray | None,
    seed: int,
    sample: int = CEILING_SAMPLE,
) -> float | None:
    """ARI of cross-validated persona predictions from the behaviour `X_active` (rows = the
    customers with orders, in order), customers without orders kept as one group; None without
    personas or with too few customers of each persona to cross-validate."""
    if persona is None:
        return None
    known = np.flatnonzero(pd.notna(persona))
    if len(known) == 0:
        return None
    rows = known[seeded_sample(len(known), sample, seed)]
    active_pos = np.cumsum(active) - 1  # row of X_active of each active customer
    train = rows[active[rows]]
    y = persona[train].astype(str)
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < CEILING_FOLDS:
        return None
    folds = StratifiedKFold(CEILING_FOLDS, shuffle=True, random_state=seed)
    predicted = cross_val_predict(
        LogisticRegression(max_iter=500), X_active[active_pos[train]], y, cv=folds
    )
    labels = np.full(len(rows), NO_ORDERS_GROUP, dtype=object)
    labels[active[rows]] = predicted
    return adjusted_rand(persona[rows], labels.astype(str))
