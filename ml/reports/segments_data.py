"""What the segments page is drawn from, read from the tables `ml.segment` writes: the latest
run's candidates (`ml.segmentation_runs`, whose chosen row holds the segments' mean z-scores and
the principal components' shares of variance), every customer's segment
(`ml.customer_segments`), the stored projection (`ml.segment_projection`), the true personas and
`marts.segment_profiles` where they exist. Nothing here refits a preprocessor or a PCA.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ml.core.errors import UserError
from ml.core.tables import (
    CUSTOMER_SEGMENTS,
    SEGMENT_PROJECTION,
    SEGMENTATION_RUNS,
)
from ml.core.tasks import BUILTIN_TASKS
from ml.core.warehouse import Warehouse
from ml.reports.reading import json_value, missing_columns, sample_positions, select

DEFAULT_MAX_POINTS = 5_000
DEFAULT_SEED = 0
PROFILES_RELATION = "marts.segment_profiles"
#: The simulator's personas: the truth of the customer_segment task.
TRUTH_RELATION = BUILTIN_TASKS["customer_segment"].oracle.relation
UNKNOWN_PERSONA = "(no persona)"
_AGAIN = "run `python -m ml.segment` again"
_PROJECTION_COLUMNS = ("customer_id", "cluster_id", "segment", "pc1", "pc2")


@dataclass
class Projection:
    """A sample of the clustered customers on the first two principal components."""

    points: pd.DataFrame  # customer_id, cluster_id, segment, pc1, pc2
    explained: tuple[float, float]  # share of variance of PC1 and PC2
    n_clustered: int


@dataclass
class SegmentsData:
    """What the page is drawn from: the latest run's candidates, its customers, the marts."""

    run_id: str
    runs: pd.DataFrame  # one row per candidate (algorithm, k) of the latest run
    chosen: pd.Series  # the row of the chosen k
    segments: pd.DataFrame  # customer_id, segment, cluster_id (every customer of the run)
    features: list[str]
    zscores: pd.DataFrame | None = None  # rows = segments (cluster order), columns = features
    projection: Projection | None = None
    truth: pd.DataFrame | None = None  # customer_id, persona
    profiles: pd.DataFrame | None = None  # marts.segment_profiles
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.chosen["k"])


def latest_run(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows of the most recent run (by `created_at`, then `run_id`), ordered by algorithm
    and k (older runs have no stability, BIC or ceiling columns: added as NULL).

    Raises `UserError` when there is no run, or the latest one has no chosen k.
    """
    if runs.empty:
        raise UserError(f"{SEGMENTATION_RUNS} is empty: run `python -m ml.segment` first")
    stamps = runs.groupby("run_id")["created_at"].max().reset_index()
    newest = stamps.sort_values(["created_at", "run_id"], kind="stable").iloc[-1]["run_id"]
    rows = runs[runs["run_id"] == newest].copy()
    for col in ("stability", "bic", "ari_ceiling"):
        if col not in rows.columns:
            rows[col] = float("nan")
    if "algorithm" not in rows.columns:
        rows["algorithm"] = "KMeans"
    rows = rows.sort_values(["algorithm", "k"], kind="stable").reset_index(drop=True)
    rows["is_chosen"] = rows["is_chosen"].fillna(False).astype(bool)
    if rows["is_chosen"].sum() != 1:
        raise UserError(f"run {newest} in {SEGMENTATION_RUNS} has no single chosen k: {_AGAIN}")
    return rows


def zscores_frame(stored: object) -> pd.DataFrame | None:
    """`segment_zscores` (a list in cluster order of {"segment", "zscores": {feature: z}}) as a
    frame: a row per segment, a column per feature; None when it is not such a list."""
    try:
        frame = pd.DataFrame(
            [dict(item["zscores"]) for item in stored],
            index=[str(item["segment"]) for item in stored],
            dtype="float64",
        )
    except (TypeError, KeyError, ValueError):
        return None
    return frame if len(frame) and frame.shape[1] else None


def _read_projection(wh: Warehouse, data: SegmentsData, max_points: int, seed: int) -> None:
    """The run's stored z-scores and projection (a seeded sample of `max_points` of its points)
    into `data`, or the reasons they are missing."""
    chosen, older = data.chosen, f"run {data.run_id} was segmented by an older version"
    data.zscores = zscores_frame(json_value(chosen.get("segment_zscores")))
    if data.zscores is None:
        data.skipped["zscores"] = f"{older} of ml.segment, which recorded none: {_AGAIN}"
    explained = json_value(chosen.get("pca_explained"))
    if not (isinstance(explained, list) and len(explained) == 2):
        data.skipped["projection"] = f"{older} of ml.segment, which stored none: {_AGAIN}"
        return
    if not wh.exists(SEGMENT_PROJECTION):
        data.skipped["projection"] = f"{SEGMENT_PROJECTION} not found in the warehouse: {_AGAIN}"
        return
    absent = missing_columns(wh, SEGMENT_PROJECTION, ("run_id", *_PROJECTION_COLUMNS))
    if absent:
        data.skipped["projection"] = f"{SEGMENT_PROJECTION} has no column {absent[0]!r}: {_AGAIN}"
        return
    points = select(
        wh,
        SEGMENT_PROJECTION,
        where={"run_id": data.run_id},
        columns=_PROJECTION_COLUMNS,
        order_by="customer_id",
    )
    if points.empty:
        data.skipped["projection"] = (
            f"{SEGMENT_PROJECTION} holds no customers of run {data.run_id}: {_AGAIN}"
        )
        return
    keep = sample_positions(len(points), max_points, seed)
    data.projection = Projection(
        points=points.iloc[keep].reset_index(drop=True),
        explained=(float(explained[0]), float(explained[1])),
        n_clustered=int(chosen.get("n_clustered", len(points))),
    )


def collect_segments(
    wh: Warehouse, *, max_points: int = DEFAULT_MAX_POINTS, seed: int = DEFAULT_SEED
) -> SegmentsData:
    """Read the latest segmentation run and what the page draws next to it.

    Raises `UserError` when `ml.segmentation_runs` or `ml.customer_segments` is missing or does
    not hold the latest run.
    """
    if max_points < 1:
        raise UserError(f"max_points must be at least 1, got {max_points}")
    for rel in (SEGMENTATION_RUNS, CUSTOMER_SEGMENTS):
        if not wh.exists(rel):
            raise UserError(f"{rel} not found in the warehouse: run `python -m ml.segment` first")
    runs = latest_run(wh.read_frame(SEGMENTATION_RUNS))
    run_id = str(runs.at[0, "run_id"])
    segments = select(
        wh,
        CUSTOMER_SEGMENTS,
        where={"run_id": run_id},
        columns=["customer_id", "segment", "cluster_id"],
        order_by="customer_id",
    )
    if segments.empty:
        held = select(wh, CUSTOMER_SEGMENTS, columns=["run_id"], limit=1)
        which = f"run {held.iat[0, 0]}" if len(held) else "no customers"
        raise UserError(
            f"{CUSTOMER_SEGMENTS} holds {which}, not the latest run {run_id} of "
            f"{SEGMENTATION_RUNS}: {_AGAIN}"
        )
    chosen = runs.loc[runs["is_chosen"]].iloc[0]
    features = json_value(chosen.get("features"))
    data = SegmentsData(
        run_id=run_id,
        runs=runs,
        chosen=chosen,
        segments=segments,
        features=[str(f) for f in features] if isinstance(features, list) else [],
    )
    _read_projection(wh, data, max_points, seed)
    if wh.exists(TRUTH_RELATION):
        data.truth = select(wh, TRUTH_RELATION, columns=["customer_id", "persona"])
    else:
        data.skipped["truth"] = (
            f"{TRUTH_RELATION} not found (your own data has no true personas to compare with)"
        )
    if wh.exists(PROFILES_RELATION):
        data.profiles = select(wh, PROFILES_RELATION, order_by="cluster_id")
    else:
        data.skipped["profiles"] = (
            f"{PROFILES_RELATION} not found: build it with "
            "`dbt build --select source:ml_segmentation+` after `python -m ml.segment`"
        )
    return data


def contingency(segments: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Customers per segment (rows, by cluster_id) x true persona (columns, by size)."""
    merged = segments.merge(truth[["customer_id", "persona"]], on="customer_id", how="left")
    persona = merged["persona"].astype(object).where(merged["persona"].notna(), UNKNOWN_PERSONA)
    table = pd.crosstab(merged["cluster_id"], persona)
    order = table.sum().sort_values(ascending=False, kind="stable").index.tolist()
    if UNKNOWN_PERSONA in order:  # last, whatever its size
        order = [p for p in order if p != UNKNOWN_PERSONA] + [UNKNOWN_PERSONA]
    names = segments.drop_duplicates("cluster_id").set_index("cluster_id")["segment"]
    table = table[order].sort_index()
    table.index = [str(names[c]) for c in table.index]
    table.index.name, table.columns.name = "segment", "persona"
    return table
