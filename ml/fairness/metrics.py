"""Metrics by group and the gaps between groups, with fairlearn's `MetricFrame` and definitions.

`fairness_rows(evaluation, attributes, problem)` turns `ml.evaluation_predictions` rows (every
candidate's prediction of the held-out rows) and the rows' sensitive attributes into
`ml.fairness_metrics` rows, one per (model, split, attribute, group, metric):

- binary: count, selection rate (share predicted positive at the model's threshold), true and
  false positive rates, precision, ROC-AUC; the gaps demographic parity difference and ratio and
  equalized odds difference (fairlearn.metrics);
- regression: count, mean absolute error, root mean squared error, mean prediction; the gap is
  the largest difference of the mean absolute error between groups;
- multiclass: count, accuracy, macro F1; the gap is the largest accuracy difference.

`kind` says what a row is: `group` (one group's value), `overall` (every row) or `gap` (between
the groups of the attribute; `group_value` is null). A metric a group cannot have (ROC-AUC of a
group with one class) is NaN, never an error. Missing attribute values form the group
"missing", so that every row counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    roc_auc_score,
)

#: The sensitive attributes measured when a task's rows have them.
SENSITIVE_ATTRIBUTES = ("age_group", "gender", "region")
MISSING = "missing"
#: Columns of ml.fairness_metrics, in order.
COLUMNS = ("task", "run_id", "model_name", "is_champion", "split", "attribute", "kind",
           "group_value", "metric", "value")  # fmt: skip


def _precision(y_true, y_pred) -> float:
    return float(precision_score(y_true, y_pred, zero_division=0))


def _roc_auc(y_true, y_score) -> float:
    return float(roc_auc_score(y_true, y_score)) if len(np.unique(y_true)) == 2 else np.nan


def _rmse(y_true, y_pred) -> float:
    return float(np.sqrt(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2)))


def _mean_prediction(y_true, y_pred) -> float:
    return float(np.mean(y_pred))


def _macro_f1(y_true, y_pred) -> float:
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


#: Metrics of predicted labels (binary, multiclass) or values (regression), by problem.
LABEL_METRICS = {
    "binary": {
        "count": count,
        "selection_rate": selection_rate,
        "true_positive_rate": true_positive_rate,
        "false_positive_rate": false_positive_rate,
        "precision": _precision,
    },
    "regression": {
        "count": count,
        "mean_absolute_error": mean_absolute_error,
        "rmse": _rmse,
        "mean_prediction": _mean_prediction,
    },
    "multiclass": {"count": count, "accuracy": accuracy_score, "macro_f1": _macro_f1},
}


def _long(frame: MetricFrame) -> list[tuple[str, str | None, str, float]]:
    """(kind, group, metric, value) of a MetricFrame's groups and overall values."""
    rows = [("overall", None, m, float(v)) for m, v in frame.overall.items()]
    for group, values in frame.by_group.iterrows():
        rows += [("group", str(group), m, float(v)) for m, v in values.items()]
    return rows


def _gaps(problem: str, by_label: MetricFrame) -> list[tuple]:
    """The gaps between groups, from the groups' values already computed: fairlearn's
    demographic parity difference and ratio are the between-groups difference and ratio of the
    selection rate, its equalized odds difference the larger of those of the TPR and FPR."""
    difference = by_label.difference()
    if problem == "binary":
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = by_label.ratio()["selection_rate"]
        odds = max(difference["true_positive_rate"], difference["false_positive_rate"])
        return [
            ("gap", None, "demographic_parity_difference", float(difference["selection_rate"])),
            ("gap", None, "demographic_parity_ratio", float(ratio)),
            ("gap", None, "equalized_odds_difference", float(odds)),
        ]
    metric = "mean_absolute_error" if problem == "regression" else "accuracy"
    return [("gap", None, f"{metric}_difference", float(difference[metric]))]


def model_rows(
    problem: str, actual: np.ndarray, predicted: np.ndarray, threshold: float, groups: pd.Series
) -> list[tuple[str, str | None, str, float]]:
    """(kind, group, metric, value) rows of one model on one split for one attribute.

    `predicted` is the positive class's probability (binary, labelled at `threshold`), the value
    (regression) or the class code (multiclass), as ml.evaluation_predictions stores them."""
    groups = groups.fillna(MISSING).astype(str).reset_index(drop=True)
    y_true = np.asarray(actual, dtype=float)
    y_pred = np.asarray(predicted, dtype=float)
    if problem == "binary":
        y_true = y_true.astype(int)
        labels = (y_pred >= threshold).astype(int)
    elif problem == "multiclass":
        y_true, labels = y_true.astype(int), y_pred.astype(int)
    else:
        labels = y_pred
    by_label = MetricFrame(
        metrics=LABEL_METRICS[problem], y_true=y_true, y_pred=labels, sensitive_features=groups
    )
    rows = _long(by_label)
    if problem == "binary":
        rows += _long(
            MetricFrame(
                metrics={"roc_auc": _roc_auc},
                y_true=y_true,
                y_pred=y_pred,
                sensitive_features=groups,
            )  # fmt: skip
        )
    return rows + _gaps(problem, by_label)


def fairness_rows(evaluation: pd.DataFrame, attributes: pd.DataFrame, problem: str) -> pd.DataFrame:
    """`ml.fairness_metrics` rows of every model and split in `evaluation` (one task's
    ml.evaluation_predictions rows), by each attribute of `attributes` (`entity_id` and one
    column per attribute); empty when there is nothing to measure."""
    measured = [a for a in attributes.columns if a != "entity_id"]
    if evaluation.empty or not measured:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})
    keyed = attributes.assign(entity_id=attributes["entity_id"].astype(str))
    joined = evaluation.merge(keyed.drop_duplicates("entity_id"), on="entity_id", how="left")
    out = []
    for (task, run_id, model, split), part in joined.groupby(
        ["task", "run_id", "model_name", "split"], sort=True
    ):
        champion = bool(part["is_champion"].iloc[0])
        threshold = part["threshold"].iloc[0]
        threshold = 0.5 if pd.isna(threshold) else float(threshold)
        for attribute in measured:
            rows = model_rows(problem, part["actual"].to_numpy(), part["predicted"].to_numpy(),
                              threshold, part[attribute])  # fmt: skip
            out += [(task, run_id, model, champion, split, attribute, *row) for row in rows]
    frame = pd.DataFrame(out, columns=list(COLUMNS))
    for column in ("task", "run_id", "model_name", "split", "attribute", "kind", "group_value",
                   "metric"):  # fmt: skip
        frame[column] = frame[column].astype("str").where(frame[column].notna(), None)
    frame["value"] = frame["value"].astype(float)
    frame["is_champion"] = frame["is_champion"].astype(bool)
    return frame
