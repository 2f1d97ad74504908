"""The supervised learning tasks: what to learn from which relation, and how task names look.

One place, read by training, serving, the reports and the tests.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ml.core.errors import UserError

PROBLEM_TYPES = ("regression", "binary", "multiclass")

#: The metric that picks the champion (on validation data) for each problem type.
PRIMARY_METRIC = {"regression": "r2", "binary": "roc_auc", "multiclass": "f1"}
#: The metrics reported for each problem type (ml.model_runs has a column per metric and split).
METRICS = {
    "regression": ("mae", "rmse", "r2"),
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier"),
    "multiclass": ("accuracy", "precision", "recall", "f1", "roc_auc", "brier", "log_loss"),
}
#: Every metric, in the column order of ml.model_runs.
ALL_METRICS = ("mae", "rmse", "r2", "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc",
               "brier", "log_loss")  # fmt: skip
#: Metrics where smaller is better; every other metric is better when larger.
LOWER_IS_BETTER = frozenset({"mae", "rmse", "brier", "log_loss"})
#: The base candidates every task trains, in leaderboard order, and the ensembles over them.
BASE_MODELS = ("linear", "tree", "xgboost", "lightgbm", "keras")
ENSEMBLES = ("voting", "stacking", "selection")


def greater_is_better(metric: str) -> bool:
    """True when a larger value of `metric` is better."""
    return metric not in LOWER_IS_BETTER


@dataclass(frozen=True)
class Oracle:
    """Where the simulator's truth for a task lives: `column` of `relation`, keyed by `id_column`.

    `kind` says what the value is: the expected target (regression), the positive-class
    probability (binary), or the true class, observed through label noise `label_noise`
    (multiclass), from which the Bayes-optimal class probabilities follow.
    """

    relation: str
    id_column: str
    column: str
    kind: str  # "expected_value" | "probability" | "true_class"
    label_noise: float = 0.0


@dataclass(frozen=True)
class TaskSpec:
    """A supervised learning task over one warehouse relation."""

    name: str
    relation: str
    target: str
    problem: str  # regression | binary | multiclass | auto
    id_column: str | None = None
    primary_metric: str | None = None  # default: PRIMARY_METRIC[problem]
    features: tuple[str, ...] | None = None  # default: every column but ids, labels, excluded
    exclude: tuple[str, ...] = ()  # other labels and columns that must never be features
    oracle: Oracle | None = None
    description: str = ""
    #: Which rows of the relation a batch's drift is measured on (the monitoring marts):
    #: "snapshot" (every row as it stands after the batch: entities whose features evolve, such
    #: as customers) or "arrivals" (the rows that arrived in the batch: events whose features are
    #: fixed when they happen, such as loan applications).
    batch_population: str = "snapshot"
    #: Features the user chose to train without (`ml.train --drop-feature`, e.g. a sensitive
    #: attribute): excluded like `exclude`, and recorded in ml.model_runs.dropped_features.
    dropped: tuple[str, ...] = ()

    def metric(self, problem: str | None = None) -> str:
        """The primary metric (for `problem` once `auto` has been resolved)."""
        return self.primary_metric or PRIMARY_METRIC[problem or self.problem]


#: Labels of marts.customer_features: neither may be a feature of the other's task.
_CUSTOMER_LABELS = ("customer_satisfaction", "segment")
#: Bookkeeping columns of the feature marts, never features: the batch of the row's version.
_BATCH_COLUMNS = ("batch_id",)
_customer_task = functools.partial(
    TaskSpec,
    relation="marts.customer_features",
    id_column="customer_id",
    exclude=(*_CUSTOMER_LABELS, *_BATCH_COLUMNS),
)
_customer_truth = functools.partial(Oracle, "sim.customer_truth", "customer_id")

BUILTIN_TASKS: dict[str, TaskSpec] = {
    task.name: task
    for task in (
        _customer_task(
            "customer_satisfaction",
            target="customer_satisfaction",
            problem="regression",
            oracle=_customer_truth("expected_satisfaction", kind="expected_value"),
            description="satisfaction score (1-10) of a customer from traits and purchases",
        ),
        _customer_task(
            "customer_segment",
            target="segment",
            problem="multiclass",
            oracle=_customer_truth("persona", kind="true_class", label_noise=0.05),
            description="CRM segment (persona) of a customer from traits and purchases",
        ),
        TaskSpec(
            "loan_repayment",
            relation="marts.loan_features",
            target="defaulted",
            problem="binary",
            id_column="loan_id",
            exclude=("customer_id", "applied_at", *_BATCH_COLUMNS),
            batch_population="arrivals",
            oracle=Oracle("sim.loan_truth", "loan_id", "default_probability", kind="probability"),
            description="probability that a loan application is not repaid",
        ),
    )
}

_TASK_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: The id column of a task without one: rows are numbered 1..n.
ROW_NUMBER = "row_number"
#: Columns of a predictions table besides the id; an id column may not take one of these names.
PREDICTION_COLUMNS = frozenset(
    {"prediction", "probability", "threshold", "run_id", "model_name", "scored_at"}
)


def validate_task_name(name: str) -> str:
    """Task names become table names and folder names: lowercase identifiers only."""
    if not isinstance(name, str) or not _TASK_NAME.fullmatch(name):
        raise UserError(
            f"invalid task name {name!r}: use lowercase letters, digits and _ (start with a letter)"
        )
    return name
