"""Unsupervised customer segmentation: `python -m ml.segment`.

    python -m ml.segment                         # k = 2..10 chosen by silhouette, seed 42
    python -m ml.segment --k-min 3 --k-max 6 --seed 7 --sample 5000
    python -m ml.segment --skip-gate             # even if the quality gate last failed

k-means on the purchase behaviour of `marts.customer_features` (never the labels `segment` and
`customer_satisfaction`, never `sim.*`):

- customers without orders have no behaviour to cluster: they are the fixed segment
  "no orders yet" (cluster_id k). Left in, they take k = 2 by themselves (the silhouette
  always prefers that trivial split), so k-means runs on the customers with orders;
- missing values are structural, so they are filled by what they mean before any statistic:
  a customer with one order has no gap between orders, and one without orders has been
  inactive for their whole tenure, so `recency_days` and `avg_days_between_orders` become
  `tenure_days`; `avg_order_value` and `avg_items_per_order` become 0 (nothing bought);
  anything else missing (`avg_discount_pct`, `return_rate`) gets the median (neutral). The
  fill, median, log1p and scaler form one scikit-learn Pipeline (`build_preprocessor`);
- counts, money and durations are heavy-tailed, so they go through `log1p` (otherwise a few
  big spenders make their own clusters), then every feature is standardised;
- k runs over `--k-min..--k-max`; each k is fitted on every clustered customer (`KMeans`, or
  `MiniBatchKMeans` above `FULL_BATCH_MAX_ROWS` customers) and scored by the silhouette on one
  seeded sample of `--sample` customers, the same for every k (the silhouette is O(n^2)).
  The best silhouette wins; the adjusted Rand index against `sim.customer_truth` (when that
  table exists) is recorded for every k as a diagnostic and never picks k;
- a depth-3 decision tree on the unscaled features predicts the chosen cluster, so the
  clusters come with readable rules (and the tree's accuracy says how faithful they are);
- each cluster gets a short name from its centre relative to the overall mean.

Reads with a read-only session, computes with the warehouse closed, then writes
`ml.segmentation_runs` (appended: one row per k per run) and `ml.customer_segments` (replaced)
in ONE transaction, so a failed or killed run leaves both as they were.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier, export_text

from ml import config
from ml.cli import ArgumentParser, positive_int, run
from ml.cli import seed as seed_type
from ml.errors import RelationNotFoundError, UserError
from ml.experiment import new_run_id
from ml.warehouse import (
    appended,
    read_relation,
    relation_exists,
    require_passing_gate,
    session,
    write_tables,
)

FEATURES_RELATION = "marts.customer_features"
TRUTH_RELATION = "sim.customer_truth"
SEGMENTATION_RUNS = "ml.segmentation_runs"
CUSTOMER_SEGMENTS = "ml.customer_segments"

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
#: Heavy-tailed counts, money and durations: log1p before scaling.
LOG_FEATURES: tuple[str, ...] = (
    "order_count",
    "total_spend",
    "avg_order_value",
    "recency_days",
    "orders_last_90d",
    "spend_last_90d",
    "avg_items_per_order",
    "avg_days_between_orders",
)
#: Missing because the customer has (almost) no orders: filled by what that means.
INACTIVE_FOR_TENURE = ("recency_days", "avg_days_between_orders")
ZERO_WHEN_NO_ORDERS = ("avg_order_value", "avg_items_per_order")

#: Above this many customers each k is fitted with MiniBatchKMeans (full k-means gets slow).
FULL_BATCH_MAX_ROWS = 200_000
KMEANS_N_INIT = 1
DEFAULT_K_MIN, DEFAULT_K_MAX = 2, 10
#: Customers in the silhouette sample (the silhouette costs O(sample^2)).
DEFAULT_SILHOUETTE_SAMPLE = 5_000
EXPLANATION_DEPTH = 3
#: The segment of customers without orders (no behaviour to cluster), cluster_id k.
NO_ORDERS_SEGMENT = "no orders yet"


# --------------------------------------------------------------------------- preprocessing


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


# --------------------------------------------------------------------------- clustering


@dataclass
class Candidate:
    """One k: its fitted model, labels (0 = largest cluster) and scores."""

    k: int
    model: KMeans | MiniBatchKMeans
    labels: np.ndarray
    silhouette: float
    inertia: float
    adjusted_rand_index: float | None
    fit_seconds: float


def _estimator(k: int, n_rows: int, seed: int) -> KMeans | MiniBatchKMeans:
    if n_rows > FULL_BATCH_MAX_ROWS:
        return MiniBatchKMeans(
            n_clusters=k, batch_size=8192, n_init=KMEANS_N_INIT, random_state=seed
        )
    return KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed)


def _relabel_by_size(labels: np.ndarray, k: int) -> np.ndarray:
    """Old label -> new label, the largest cluster first (ties: the lower old label)."""
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], c))
    mapping = np.empty(k, dtype=np.int64)
    mapping[order] = np.arange(k)
    return mapping


def fit_candidates(
    X: np.ndarray,
    k_values: Sequence[int],
    seed: int,
    sample: int = DEFAULT_SILHOUETTE_SAMPLE,
) -> list[Candidate]:
    """Fit k-means for every k on all rows; silhouette on one seeded sample of `sample` rows."""
    n = len(X)
    sample_idx = None
    if n > sample:
        sample_idx = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    out = []
    for k in k_values:
        start = time.perf_counter()
        model = _estimator(k, n, seed).fit(X)
        mapping = _relabel_by_size(model.labels_, k)
        labels = mapping[model.labels_]
        model.cluster_centers_ = model.cluster_centers_[np.argsort(mapping)]
        xs, ls = (X, labels) if sample_idx is None else (X[sample_idx], labels[sample_idx])
        sil = float(silhouette_score(xs, ls)) if len(np.unique(ls)) > 1 else float("nan")
        inertia = float(((X - model.cluster_centers_[labels]) ** 2).sum())
        out.append(Candidate(k, model, labels, sil, inertia, None, time.perf_counter() - start))
    return out


def choose(candidates: Sequence[Candidate]) -> Candidate:
    """The candidate with the best silhouette (ties: the smaller k)."""
    scored = [c for c in candidates if not np.isnan(c.silhouette)]
    if not scored:
        raise UserError("no k produced two or more clusters: the customers are all alike")
    return max(scored, key=lambda c: (c.silhouette, -c.k))


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


# --------------------------------------------------------------------------- a whole run


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
    seconds: float = 0.0


def segment_customers(
    customers: pd.DataFrame,
    *,
    truth: pd.DataFrame | None = None,
    k_min: int = DEFAULT_K_MIN,
    k_max: int = DEFAULT_K_MAX,
    seed: int = config.DEFAULT_SEED,
    sample: int = DEFAULT_SILHOUETTE_SAMPLE,
    run_id: str | None = None,
) -> SegmentationResult:
    """Segment `customers` (rows of marts.customer_features); `truth` = (customer_id, persona).

    Customers without orders have no behaviour to cluster: they form the fixed segment
    NO_ORDERS_SEGMENT (cluster_id k, after the k-means clusters 0..k-1, no distance); k-means
    runs on the customers with at least one order.
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
    if n_active <= k_max:
        raise UserError(
            f"{n_active} customers with orders are too few for k up to {k_max}: lower --k-max"
        )
    pipeline = build_preprocessor(list(raw.columns))
    scaled = pipeline.fit_transform(raw[active])
    X = scaled.to_numpy(dtype=np.float64)

    persona = None
    if truth is not None:
        persona = (
            customers[["customer_id"]]
            .merge(truth[["customer_id", "persona"]], on="customer_id", how="left")["persona"]
            .astype("object")
            .to_numpy()
        )
    candidates = fit_candidates(X, range(k_min, k_max + 1), seed, sample)
    for c in candidates:
        c.adjusted_rand_index = _adjusted_rand(persona, _all_labels(c.labels, active, c.k))
    chosen = choose(candidates)

    centres = pd.DataFrame(chosen.model.cluster_centers_, columns=scaled.columns)
    names = name_segments(centres)
    if not active.all():
        names = unique_names([*names, NO_ORDERS_SEGMENT])
    labels = _all_labels(chosen.labels, active, chosen.k)
    # readable thresholds: the unscaled features after the fill and impute steps (no NULLs)
    rules, accuracy = explain_clusters(pipeline[:2].transform(raw), labels, names, seed)
    distance = np.full(n, np.nan)
    distance[active] = np.linalg.norm(X - chosen.model.cluster_centers_[chosen.labels], axis=1)

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

    is_chosen = [c is chosen for c in candidates]
    rows = len(candidates)

    def chosen_only(value, missing):
        return [value if flag else missing for flag in is_chosen]

    runs = pd.DataFrame(
        {
            "run_id": pd.Series([run_id] * rows, dtype="str"),
            "k": np.array([c.k for c in candidates], dtype="int32"),
            "silhouette": [c.silhouette for c in candidates],
            "inertia": [c.inertia for c in candidates],
            "is_chosen": is_chosen,
            "adjusted_rand_index": pd.Series(
                [
                    np.nan if c.adjusted_rand_index is None else c.adjusted_rand_index
                    for c in candidates
                ],
                dtype="float64",
            ),  # fmt: skip
            "n_customers": np.full(rows, n, dtype="int64"),
            "n_clustered": np.full(rows, n_active, dtype="int64"),
            "silhouette_sample_size": np.full(rows, min(sample, n_active), dtype="int64"),
            "seed": np.full(rows, seed, dtype="int64"),
            "algorithm": pd.Series([type(c.model).__name__ for c in candidates], dtype="str"),
            "features": pd.Series([json.dumps(list(raw.columns))] * rows, dtype="str"),
            "segment_names": pd.Series(chosen_only(json.dumps(names), None), dtype="str"),
            "explanation_rules": pd.Series(chosen_only(rules, None), dtype="str"),
            "explanation_accuracy": pd.Series(chosen_only(accuracy, np.nan), dtype="float64"),
            "fit_seconds": [c.fit_seconds for c in candidates],
            "created_at": [created_at] * rows,
        }
    )
    return SegmentationResult(
        run_id=run_id,
        chosen=chosen,
        candidates=candidates,
        names=names,
        rules=rules,
        explanation_accuracy=accuracy,
        runs=runs,
        segments=segments,
        profile=profile,
        seconds=time.perf_counter() - start,
    )


def _all_labels(active_labels: np.ndarray, active: np.ndarray, k: int) -> np.ndarray:
    """Labels of every customer: the k-means cluster, or k for a customer without orders."""
    labels = np.full(len(active), k, dtype=np.int64)
    labels[active] = active_labels
    return labels


def _adjusted_rand(persona: np.ndarray | None, labels: np.ndarray) -> float | None:
    """Adjusted Rand index of `labels` against the personas (customers with one), else None."""
    if persona is None:
        return None
    known = pd.notna(persona)
    if not known.any():
        return None
    return float(adjusted_rand_score(persona[known].astype(str), labels[known]))


def read_inputs(con) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """marts.customer_features (by customer_id) and, when present, sim.customer_truth's personas."""
    if not relation_exists(con, FEATURES_RELATION):
        raise RelationNotFoundError(
            f"table {FEATURES_RELATION} does not exist in the warehouse: run `dbt build` first"
        )
    present = {r[0] for r in con.execute(f"describe {FEATURES_RELATION}").fetchall()}
    missing = [c for c in ("customer_id", *BEHAVIOUR_FEATURES) if c not in present]
    if missing:
        raise UserError(
            f"{FEATURES_RELATION} has no column {missing[0]!r}: rebuild it with `dbt build`"
        )
    customers = read_relation(
        con, FEATURES_RELATION, ["customer_id", *BEHAVIOUR_FEATURES], order_by="customer_id"
    )
    truth = None
    if relation_exists(con, TRUTH_RELATION):
        truth = read_relation(con, TRUTH_RELATION, ["customer_id", "persona"])
    return customers, truth


def write_result(con, result: SegmentationResult) -> dict[str, int]:
    """Append the run's rows and replace the customers' segments, in ONE transaction."""
    return write_tables(
        con,
        {
            SEGMENTATION_RUNS: appended(con, SEGMENTATION_RUNS, result.runs),
            CUSTOMER_SEGMENTS: result.segments,
        },
    )


def run_segmentation(
    *,
    k_min: int = DEFAULT_K_MIN,
    k_max: int = DEFAULT_K_MAX,
    seed: int = config.DEFAULT_SEED,
    sample: int = DEFAULT_SILHOUETTE_SAMPLE,
    skip_gate: bool = False,
    path=None,
) -> tuple[SegmentationResult, dict[str, int]]:
    """Read (read-only), segment with the warehouse closed, write: the whole of `ml.segment`.

    Like ml.train, refuses a feature table whose latest quality-gate run failed (`skip_gate`).
    """
    with session(path, read_only=True) as con:
        if not skip_gate:
            require_passing_gate(con, FEATURES_RELATION)
        customers, truth = read_inputs(con)
    result = segment_customers(
        customers, truth=truth, k_min=k_min, k_max=k_max, seed=seed, sample=sample
    )
    with session(path) as con:
        written = write_result(con, result)
    return result, written


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.segment", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=seed_type, default=config.DEFAULT_SEED, help="random seed")
    parser.add_argument("--k-min", type=positive_int, default=DEFAULT_K_MIN, help="smallest k")
    parser.add_argument("--k-max", type=positive_int, default=DEFAULT_K_MAX, help="largest k")
    parser.add_argument(
        "--sample",
        type=positive_int,
        default=DEFAULT_SILHOUETTE_SAMPLE,
        help=f"customers in the silhouette sample (default {DEFAULT_SILHOUETTE_SAMPLE:,})",
    )
    parser.add_argument(
        "--skip-gate", action="store_true", help="segment even if the quality gate last failed"
    )
    args = parser.parse_args(argv)
    if args.k_min < 2 or args.k_max < args.k_min:
        parser.error("need 2 <= --k-min <= --k-max")
    if args.sample < 2:
        parser.error("--sample must be at least 2")

    console = Console(stderr=True)
    with console.status("segmenting"):
        result, written = run_segmentation(
            k_min=args.k_min,
            k_max=args.k_max,
            seed=args.seed,
            sample=args.sample,
            skip_gate=args.skip_gate,
        )

    out = Console(width=None if Console().is_terminal else 120)
    table = Table(title="k-means over customer behaviour", title_justify="left")
    for col in ("k", "silhouette", "inertia", "adjusted Rand", "fit s"):
        table.add_column(col, justify="right")
    for c in result.candidates:
        ari = "" if c.adjusted_rand_index is None else f"{c.adjusted_rand_index:.3f}"
        k = f"[bold]{c.k} *[/bold]" if c is result.chosen else str(c.k)
        table.add_row(k, f"{c.silhouette:.4f}", f"{c.inertia:,.0f}", ari, f"{c.fit_seconds:.1f}")
    table.caption = (
        "* chosen (best silhouette); adjusted Rand against the simulator's personas"
        if result.chosen.adjusted_rand_index is not None
        else "* chosen (best silhouette); no sim.customer_truth, so no adjusted Rand"
    )
    out.print(table)

    segments = Table(title=f"segments (k = {result.chosen.k})", title_justify="left")
    for col in ("cluster", "segment", "customers", "orders", "spend", "recency d", "discount"):
        segments.add_column(col, justify="left" if col == "segment" else "right")
    for cluster_id, row in result.profile.iterrows():
        segments.add_row(
            str(cluster_id),
            row["segment"],
            f"{row['customers']:,}",
            f"{row['order_count']:.1f}",
            f"{row['total_spend']:,.0f}",
            "" if pd.isna(row["recency_days"]) else f"{row['recency_days']:.0f}",
            "" if pd.isna(row["avg_discount_pct"]) else f"{row['avg_discount_pct']:.2f}",
        )
    out.print(segments)
    out.print(f"depth-{EXPLANATION_DEPTH} tree rules (accuracy {result.explanation_accuracy:.3f}):")
    out.print(result.rules, markup=False, highlight=False)
    for relation, rows in written.items():
        out.print(f"wrote {relation}: {rows:,} rows")
    out.print(f"run {result.run_id} in {result.seconds:.1f}s")
    return 0


if __name__ == "__main__":
    run(main, "ml.segment")
