"""The oracle: a task's metrics computed from the simulator's truth (`sim.*`) on the test rows.

The truth is the best any model could do (the expected value, the true default probability, or
the true persona observed through known label noise), so every model is compared with it.
"""

from __future__ import annotations

import numpy as np

from ml.training import evaluate
from ml.training.data import TaskData


def oracle_metrics(
    data: TaskData,
    threshold_rows: np.ndarray,
    test_rows: np.ndarray,
    cost_fp: float | None = None,
    cost_fn: float | None = None,
) -> dict[str, float]:
    """The task's metrics computed from the simulator's truth on the same test rows ({} if none).

    A binary oracle's threshold is chosen on `threshold_rows`, like the models' thresholds.
    """
    oracle, truth = data.spec.oracle, data.truth
    if oracle is None or truth is None:
        return {}
    ids = data.ids.to_numpy()[data.labelled]
    classes = data.classes

    def values(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = truth.reindex(ids[rows])
        keep = found.notna().to_numpy()
        return found.to_numpy()[keep], data.y[rows][keep]

    t_test, y_test = values(test_rows)
    if len(t_test) == 0:
        return {}
    if oracle.kind == "expected_value":
        return evaluate.regression_metrics(y_test, t_test.astype(float))
    if oracle.kind == "probability":
        t_val, y_val = values(threshold_rows)
        threshold = evaluate.choose_threshold(y_val, t_val.astype(float), cost_fp, cost_fn)
        return evaluate.binary_metrics(y_test, t_test.astype(float), threshold)
    # the true class, observed through symmetric label noise: Bayes-optimal probabilities
    k = len(classes)
    eps = oracle.label_noise
    proba = np.full((len(t_test), k), eps / max(k - 1, 1))
    lookup = {c: i for i, c in enumerate(data.class_labels)}
    for row, label in enumerate(t_test):
        if label in lookup:
            proba[row, lookup[label]] = 1.0 - eps
    return evaluate.multiclass_metrics(y_test, proba, classes)
