"""Unsupervised customer segmentation: `python -m ml.segment`.

    python -m ml.segment                         # k-means or mixture, k = 2..10, by stability
    python -m ml.segment --k-min 3 --k-max 6 --seed 7 --sample 5000
    python -m ml.segment --skip-gate             # even if the quality gate last failed

k-means or a Gaussian mixture on the purchase behaviour of `marts.customer_features`, the method
and k chosen by stability (`ml.segmentation.kmeans` says how); writes `ml.segmentation_runs`, `ml.customer_segments` and `ml.segment_projection` in one
transaction (`ml.segmentation.run`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from rich.console import Console
from rich.table import Table

from ml.core.cli import ArgumentParser, positive_int, run
from ml.core.cli import seed as seed_type
from ml.core.config import DEFAULT_SEED
from ml.core.tables import EXPLANATION_DEPTH
from ml.segmentation.candidates import DEFAULT_SILHOUETTE_SAMPLE
from ml.segmentation.kmeans import DEFAULT_K_MAX, DEFAULT_K_MIN
from ml.segmentation.run import run_segmentation


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.segment", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=seed_type, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--k-min", type=positive_int, default=DEFAULT_K_MIN, help="smallest k")
    parser.add_argument("--k-max", type=positive_int, default=DEFAULT_K_MAX, help="largest k")
    parser.add_argument(
        "--sample",
        type=positive_int,
        default=DEFAULT_SILHOUETTE_SAMPLE,
        help=f"customers in the scoring sample (default {DEFAULT_SILHOUETTE_SAMPLE:,})",
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
    table = Table(title="candidate segmentations (value view)", title_justify="left")
    for col in ("algorithm", "k", "stability", "silhouette", "adjusted Rand", "fit s"):
        table.add_column(col, justify="left" if col == "algorithm" else "right")
    for c in result.candidates:
        ari = "" if c.adjusted_rand_index is None else f"{c.adjusted_rand_index:.3f}"
        k = f"[bold]{c.k} *[/bold]" if c is result.chosen else str(c.k)
        table.add_row(
            c.algorithm, k, f"{c.stability:.3f}", f"{c.silhouette:.4f}", ari, f"{c.fit_seconds:.1f}"
        )
    ceiling = result.ari_ceiling
    table.caption = (
        "* chosen (most stable; the smallest k among near-ties); adjusted Rand against the"
        " simulator's personas" + ("" if ceiling is None else f", supervised ceiling {ceiling:.3f}")
        if result.chosen.adjusted_rand_index is not None
        else "* chosen (most stable; the smallest k among near-ties); no sim.customer_truth, so"
        " no adjusted Rand"
    )
    out.print(table)

    segments = Table(
        title=f"segments ({result.chosen.algorithm}, k = {result.chosen.k})", title_justify="left"
    )
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
