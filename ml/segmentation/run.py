"""A whole `ml.segment` run: read (read-only), segment with the warehouse closed, write.

ONE transaction appends the run's rows to `ml.segmentation_runs` (one per candidate) and replaces
`ml.customer_segments` and `ml.segment_projection`, so a failed or killed run leaves all three
as they were. Like ml.train, a feature table whose latest quality-gate run failed is refused
unless `skip_gate`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml.core.config import DEFAULT_SEED
from ml.core.errors import RelationNotFoundError, UserError
from ml.core.tables import CUSTOMER_SEGMENTS, SEGMENT_PROJECTION, SEGMENTATION_RUNS
from ml.core.warehouse import Warehouse, open_warehouse
from ml.quality.results import require_passing_gate
from ml.segmentation.behaviour import BEHAVIOUR_FEATURES, FEATURES_RELATION, TRUTH_RELATION
from ml.segmentation.candidates import DEFAULT_SILHOUETTE_SAMPLE
from ml.segmentation.kmeans import (
    DEFAULT_K_MAX,
    DEFAULT_K_MIN,
    SegmentationResult,
    segment_customers,
)


def read_inputs(wh: Warehouse) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """marts.customer_features (by customer_id) and, when present, sim.customer_truth's personas."""
    if not wh.exists(FEATURES_RELATION):
        raise RelationNotFoundError(
            f"table {FEATURES_RELATION} does not exist in the warehouse: run `dbt build` first"
        )
    present = set(wh.describe(FEATURES_RELATION).names)
    missing = [c for c in ("customer_id", *BEHAVIOUR_FEATURES) if c not in present]
    if missing:
        raise UserError(
            f"{FEATURES_RELATION} has no column {missing[0]!r}: rebuild it with `dbt build`"
        )
    customers = wh.read_frame(
        FEATURES_RELATION, ["customer_id", *BEHAVIOUR_FEATURES], order_by="customer_id"
    )
    truth = None
    if wh.exists(TRUTH_RELATION):
        truth = wh.read_frame(TRUTH_RELATION, ["customer_id", "persona"])
    return customers, truth


def write_result(wh: Warehouse, result: SegmentationResult) -> dict[str, int]:
    """Append the run's rows and replace the segments and the projection, in ONE transaction."""
    projection = result.projection.assign(run_id=result.run_id)
    return wh.replace_tables(
        {
            SEGMENTATION_RUNS: wh.appended(SEGMENTATION_RUNS, result.runs),
            CUSTOMER_SEGMENTS: result.segments,
            SEGMENT_PROJECTION: projection[["run_id", *result.projection.columns]],
        }
    )


def run_segmentation(
    *,
    k_min: int = DEFAULT_K_MIN,
    k_max: int = DEFAULT_K_MAX,
    seed: int = DEFAULT_SEED,
    sample: int = DEFAULT_SILHOUETTE_SAMPLE,
    skip_gate: bool = False,
    path: str | Path | None = None,
) -> tuple[SegmentationResult, dict[str, int]]:
    """Read, segment, write: the whole of `ml.segment`; returns the result and the rows written."""
    with open_warehouse(path, read_only=True) as wh:
        if not skip_gate:
            require_passing_gate(wh, FEATURES_RELATION)
        customers, truth = read_inputs(wh)
    result = segment_customers(
        customers, truth=truth, k_min=k_min, k_max=k_max, seed=seed, sample=sample
    )
    with open_warehouse(path) as wh:
        written = write_result(wh, result)
    return result, written
