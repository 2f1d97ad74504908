"""Settings shared by every step. Environment variables override the defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = PROJECT_ROOT / "warehouse" / "warehouse.duckdb"

#: The simulated world ends the day before this date; dbt's `as_of_date` var has the same value.
AS_OF_DATE = "2026-01-01"

#: Seconds a step waits for another process to release the warehouse before giving up.
DEFAULT_LOCK_TIMEOUT_S = 30.0


def warehouse_path() -> Path:
    """The DuckDB file: `WAREHOUSE_PATH` if set, else `warehouse/warehouse.duckdb` in the repo."""
    value = os.environ.get("WAREHOUSE_PATH", "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT_WAREHOUSE


def lock_timeout_s() -> float:
    """`WAREHOUSE_LOCK_TIMEOUT` (seconds) or the default."""
    value = os.environ.get("WAREHOUSE_LOCK_TIMEOUT", "").strip()
    try:
        return float(value) if value else DEFAULT_LOCK_TIMEOUT_S
    except ValueError:
        return DEFAULT_LOCK_TIMEOUT_S


# ---------------------------------------------------------------------------------------------
# Tasks: what to learn from which relation. One place, read by ml.train, ml.predict and the tests.

PROBLEM_TYPES = ("regression", "binary", "multiclass")

#: The metric that picks the champion (on validation data) for each problem type.
PRIMARY_METRIC = {"regression": "r2", "binary": "roc_auc", "multiclass": "f1"}


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

    def metric(self, problem: str | None = None) -> str:
        """The primary metric (for `problem` once `auto` has been resolved)."""
        return self.primary_metric or PRIMARY_METRIC[problem or self.problem]


#: Labels of marts.customer_features: neither may be a feature of the other's task.
_CUSTOMER_LABELS = ("customer_satisfaction", "segment")

BUILTIN_TASKS: dict[str, TaskSpec] = {
    task.name: task
    for task in (
        TaskSpec(
            name="customer_satisfaction",
            relation="marts.customer_features",
            target="customer_satisfaction",
            problem="regression",
            id_column="customer_id",
            exclude=_CUSTOMER_LABELS,
            oracle=Oracle(
                "sim.customer_truth", "customer_id", "expected_satisfaction", kind="expected_value"
            ),
            description="satisfaction score (1-10) of a customer from traits and purchases",
        ),
        TaskSpec(
            name="customer_segment",
            relation="marts.customer_features",
            target="segment",
            problem="multiclass",
            id_column="customer_id",
            exclude=_CUSTOMER_LABELS,
            oracle=Oracle(
                "sim.customer_truth", "customer_id", "persona", kind="true_class", label_noise=0.05
            ),
            description="CRM segment (persona) of a customer from traits and purchases",
        ),
        TaskSpec(
            name="loan_repayment",
            relation="marts.loan_features",
            target="defaulted",
            problem="binary",
            id_column="loan_id",
            exclude=("customer_id", "applied_at"),
            oracle=Oracle("sim.loan_truth", "loan_id", "default_probability", kind="probability"),
            description="probability that a loan application is not repaid",
        ),
    )
}

#: Candidates every task trains, in leaderboard order.
BASE_MODELS = ("linear", "tree", "xgboost", "keras")
ENSEMBLES = ("voting", "stacking")

#: Hyperparameter grids (scikit-learn / xgboost: GridSearchCV; keras: KerasTuner search space).
#: Keys are the estimator's parameters. `fast` is the small space used by `--fast` and the tests.
SEARCH_SPACES: dict[str, dict[str, dict[str, list]]] = {
    "full": {
        # `alpha` applies to Ridge (regression), `C` to LogisticRegression (classification)
        "linear": {"alpha": [0.3, 3.0, 30.0], "C": [0.03, 0.3, 3.0]},
        "tree": {"max_depth": [4, 6, 8, 10], "min_samples_leaf": [10, 50]},
        "xgboost": {
            "n_estimators": [300],
            "learning_rate": [0.08],
            "max_depth": [3, 5],
            "min_child_weight": [1.0, 8.0],
        },
        "keras": {
            "units": [32, 64, 128],
            "layers": [1, 2, 3],
            "dropout": [0.0, 0.1, 0.2],
            "learning_rate": [1e-3, 3e-3],
            "l2": [0.0, 1e-4],
        },
    },
    "fast": {
        "linear": {"alpha": [1.0, 10.0], "C": [0.1, 1.0]},
        "tree": {"max_depth": [4, 8], "min_samples_leaf": [20]},
        "xgboost": {
            "n_estimators": [150],
            "learning_rate": [0.1],
            "max_depth": [3, 4],
            "min_child_weight": [1.0],
        },
        "keras": {
            "units": [32],
            "layers": [1, 2],
            "dropout": [0.0],
            "learning_rate": [3e-3],
            "l2": [0.0],
        },
    },
}

#: KerasTuner trials (full / fast) and the rows used for tuning (a stratified sample of train).
KERAS_TRIALS = {"full": 4, "fast": 2}
TUNING_MAX_ROWS = {"full": 10_000, "fast": 2_000}
#: Keras training length (epochs with early stopping on a validation split).
KERAS_FIT = {
    "full": {"epochs": 50, "patience": 4, "batch_size": 512},
    "fast": {"epochs": 15, "patience": 3, "batch_size": 256},
}
#: K of the K-fold cross-validation of every candidate (`--fast`: fewer folds).
CV_FOLDS = {"full": 5, "fast": 3}
DEFAULT_SEED = 42

#: SHAP explanations of each champion (ml.explain): features kept per scored row in
#: ml.prediction_explanations, rows explained per task (beyond it a seeded sample is explained and
#: ml.feature_importance is computed on that sample), and the background rows of the linear and
#: Keras parts (a sample of the training rows).
EXPLAIN_TOP_K = 5
EXPLAIN_MAX_ROWS = 250_000
EXPLAIN_REFERENCE_ROWS = 2_000
