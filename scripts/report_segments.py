"""The customer segmentation report: one static HTML page with the plots of the latest `ml.segment`.

`python -m scripts.report_segments [--output reports]` reads the warehouse (`WAREHOUSE_PATH`,
read-only; the connection is closed before anything is drawn) and writes `segments.html` with:

- how k was chosen: silhouette and inertia (elbow) by k, the adjusted Rand index against the
  simulator's personas by k, a table of the candidates and a headline;
- what the segments are: `marts.segment_profiles`, the mean standardised behaviour of each
  segment (the space k-means clustered in, as `ml.segment` recorded it) and the segment sizes;
- where they lie: the PCA projection of the same scaled features that `ml.segment` stored
  (`ml.segment_projection`; at most `--max-points` customers of it, a seeded subsample),
  coloured by segment and, when `sim.customer_truth` exists, by true persona, plus the
  segment x persona contingency table;
- how to read them: the depth-3 decision-tree rules and their accuracy.

Customers without orders form the fixed segment "no orders yet": they are counted in the sizes
and the contingency table but have no behaviour to project. A part whose table is missing
(`marts.segment_profiles` before the second `dbt build`, `sim.customer_truth` for your own data,
the projection of a run segmented by an older version) is skipped with a note on the page.

Exit codes: 0 written; 2 a user error (no warehouse, locked, no segmentation yet, output not
writable), printed as one line.
"""

from __future__ import annotations

from collections.abc import Sequence

from ml.core.cli import run
from ml.reports.segments_data import DEFAULT_MAX_POINTS, DEFAULT_SEED
from ml.reports.segments_page import DEFAULT_OUTPUT, FILENAME, write_segments_report
from scripts._report_options import add_drawing_options, add_limit, report_parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write the page, print its path and plot count."""
    parser = report_parser("python -m scripts.report_segments", __doc__, DEFAULT_OUTPUT, FILENAME)
    add_limit(parser, "--max-points", DEFAULT_MAX_POINTS, "customers drawn in the projection")
    add_drawing_options(parser, DEFAULT_SEED, "the projection's subsample")
    args = parser.parse_args(argv)
    page, n_plots = write_segments_report(
        args.output, embed=not args.png_files, max_points=args.max_points, seed=args.seed
    )
    print(f"wrote {page} ({n_plots} plots)")
    return 0


if __name__ == "__main__":
    run(main, "scripts.report_segments")
