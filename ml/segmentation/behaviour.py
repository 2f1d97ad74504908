"""The behaviour the segments are drawn from: which columns, and how their missing values and
tails are treated before any distance is taken (one scikit-learn Pipeline, `build_preprocessor`).

Two views of it: every behaviour feature (`BEHAVIOUR_FEATURES`: the profiles, names, rules, the
projection and the persona ceiling) and the value view the clusters are fitted on
(`CLUSTER_FEATURES`: what a customer pays, how much discount, how much comes back). Recency,
frequency and tenure mostly say how long and how lately someone has been a customer (their
lifecycle stage, which churn scores answer), and with them in the clusters split by tenure
instead of by the kind of customer (docs/design/segmentation.md measures it)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from ml.core.errors import UserError

FEATURES_RELATION = "marts.customer_features"
TRUTH_RELATION = "sim.customer_truth"

CATEGORIES = ("electronics", "fashion", "grocery", "home", "beauty", "sports")
#: Purchase behaviour only: no traits (age, income ...), no labels, nothing from sim.*.
BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "order_count",
    "total_spend",
    "avg_order_value",
    "recency_days",
    "orders_last_90d",
    "spend_last_90d",
    "avg_discount_pct",
    "avg_items_per_order",
    "return_rate",
    "distinct_categories",
    *(f"share_{c}" for c in CATEGORIES),
    "mobile_order_share",
    "avg_days_between_orders",
    "tenure_days",
)
#: The value view the segments are clustered on (a subset of BEHAVIOUR_FEATURES).
CLUSTER_FEATURES: tuple[str, ...] = (
    "avg_order_value",
    "avg_discount_pct",
    "return_rate",
    "total_spend",
)
#: Heavy-tailed counts, money and durations: log1p before scaling (in this order).
LOG_FEATURES: tuple[str, ...] = (
    *BEHAVIOUR_FEATURES[:6],  # order_count, total_spend, avg_order_value, recency, last 90 days
    "avg_items_per_order",
    "avg_days_between_orders",
)
#: Missing because the customer has (almost) no orders: filled by what that means.
INACTIVE_FOR_TENURE = ("recency_days", "avg_days_between_orders")
ZERO_WHEN_NO_ORDERS = ("avg_order_value", "avg_items_per_order")


def fill_structural_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill the NULLs that mean "no orders": inactive for the whole tenure, nothing bought."""
    out = pd.DataFrame(frame).copy()
    tenure = out.get("tenure_days")
    for col in INACTIVE_FOR_TENURE:
        if col in out and tenure is not None:
            out[col] = out[col].fillna(tenure)
    for col in ZERO_WHEN_NO_ORDERS:
        if col in out:
            out[col] = out[col].fillna(0.0)
    return out


def log1p_non_negative(values):
    """log1p of values clipped at 0 (a module function so the pipeline pickles)."""
    return np.log1p(np.clip(values, 0.0, None))


def build_preprocessor(features: Sequence[str] = BEHAVIOUR_FEATURES) -> Pipeline:
    """The unfitted pipeline: structural fill, median impute, log1p of heavy tails, scale."""
    log_cols = [c for c in LOG_FEATURES if c in features]
    return Pipeline(
        [
            (
                "fill",
                FunctionTransformer(fill_structural_missing, feature_names_out="one-to-one"),
            ),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            (
                "log",
                ColumnTransformer(
                    [
                        (
                            "log1p",
                            FunctionTransformer(log1p_non_negative, feature_names_out="one-to-one"),
                            log_cols,
                        )
                    ],
                    remainder="passthrough",
                    verbose_feature_names_out=False,
                ),
            ),
            ("scale", StandardScaler()),
        ]
    ).set_output(transform="pandas")


def behaviour_frame(
    frame: pd.DataFrame, features: Sequence[str] = BEHAVIOUR_FEATURES
) -> pd.DataFrame:
    """The behaviour columns as float64 (NULL -> NaN); refuse a relation that lacks one."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise UserError(
            f"{FEATURES_RELATION} has no column {missing[0]!r}: rebuild it with `dbt build`"
        )
    out = {}
    for col in features:
        values = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        out[col] = values.where(np.isfinite(values))
    return pd.DataFrame(out, index=frame.index)
