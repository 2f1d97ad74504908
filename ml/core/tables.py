"""The tables the Python steps own in the warehouse, by name (dbt owns raw -> marts)."""

from __future__ import annotations

#: One row per (run, task, candidate): the leaderboard and the model registry (ml.train).
MODEL_RUNS = "ml.model_runs"
#: Mean |SHAP| per feature of each champion, per run (history kept).
FEATURE_IMPORTANCE = "ml.feature_importance"
#: The top features of every explained row of each task's champion (latest run per task).
PREDICTION_EXPLANATIONS = "ml.prediction_explanations"
#: Every feature's SHAP value for a seeded sample of rows (the reports' beeswarm and dependence).
SHAP_SAMPLE = "ml.shap_sample"
#: Every candidate's predictions of the validation and test rows (the reports' curves).
EVALUATION_PREDICTIONS = "ml.evaluation_predictions"
#: k-means runs (one row per k tried) and the chosen segment of every customer (ml.segment).
SEGMENTATION_RUNS = "ml.segmentation_runs"
CUSTOMER_SEGMENTS = "ml.customer_segments"
#: The segment of customers without orders (no behaviour to cluster): cluster_id k, after the
#: k-means clusters 0..k-1.
NO_ORDERS_SEGMENT = "no orders yet"
#: Depth of the decision tree whose rules explain the segments (segmentation_runs).
EXPLANATION_DEPTH = 3
#: A seeded sample of segmented customers on the first two principal components of the scaled
#: features, with their segment's centre in z-scores (the segments report).
SEGMENT_PROJECTION = "ml.segment_projection"
#: Each trained champion's reference profile: bins and shares of its training rows' features and
#: scores (ml.train; the drift marts compare every batch with it).
REFERENCE_PROFILES = "ml.reference_profiles"
#: Every score a model gave, with the batch and the hash of the feature values it was given
#: (ml.train, ml.score, ml.promote and ml.rollback append; ml.score rescores only what changed
#: since the deployed model's latest score).
SCORE_LOG = "ml.score_log"
#: Every candidate's metrics by group of the sensitive attributes (age group, gender, region) on
#: its held-out rows, and the gaps between groups, per run (ml.train appends; fairlearn's
#: definitions, ml.fairness).
FAIRNESS_METRICS = "ml.fairness_metrics"
#: Which trained model of each task is deployed, since when, by which command and why: one row
#: per deployment, the full history (ml.train deploys a task's first champion and promoted
#: challengers; ml.promote and ml.rollback by hand). A task's current deployment is its row of
#: the highest deployment_id; every scoring path uses it (ml.governance).
DEPLOYMENTS = "ml.deployments"
#: Every promotion decision (ml.train's challengers, ml.promote): the evidence (both models'
#: primary metric on the same held-out rows, the difference, its interval and p-value), the
#: quality and fairness gates, and whether the challenger was deployed (ml.governance).
PROMOTION_DECISIONS = "ml.promotion_decisions"
#: Every expectation of every quality-gate run.
GATE_RESULTS = "quality.check_results"

#: Tables of schema `ml` that no step but their owner may replace (`ml.predict --write-table`),
#: besides every task's `<task>_predictions`. Compared case-insensitively, as SQL does.
OWNED = frozenset(
    name.split(".", 1)[1]
    for name in (
        MODEL_RUNS,
        FEATURE_IMPORTANCE,
        PREDICTION_EXPLANATIONS,
        SHAP_SAMPLE,
        EVALUATION_PREDICTIONS,
        SEGMENTATION_RUNS,
        CUSTOMER_SEGMENTS,
        SEGMENT_PROJECTION,
        REFERENCE_PROFILES,
        SCORE_LOG,
        FAIRNESS_METRICS,
        DEPLOYMENTS,
        PROMOTION_DECISIONS,
    )
)


def predictions_relation(task: str) -> str:
    """Where a task's predictions land."""
    return f"ml.{task}_predictions"


def prediction_archive_relation(task: str) -> str:
    """Where every model of a task keeps the predictions it produced, with the hash of the
    feature values each was computed from (a promotion or rollback restores them exactly)."""
    return f"ml.{task}_prediction_archive"
