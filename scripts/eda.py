"""Exploratory data analysis of the warehouse as one static HTML page with plots.

`python -m scripts.eda [--output reports/eda]` reads the warehouse (`WAREHOUSE_PATH`, read-only;
the connection is closed before any plot is drawn) and writes `index.html` with: the distribution
of every feature of `marts.customer_features` and `marts.loan_features`, NULL shares of `raw.*`
and the feature tables, Spearman correlations of the numeric features, satisfaction by age group
and income bracket, default rate by purpose and grade, the balance of the labels and the rows
staging rejected, by reason.

Aggregates (counts, NULL shares, category frequencies, the marts) are computed in SQL over whole
tables; only the histograms and correlations read rows, a seeded reservoir sample of at most
`--sample-rows` per table, so the report stays fast on large warehouses. A table that is missing
(a warehouse without loans, or not yet built by dbt) skips its part with a note on the page.

Exit codes: 0 written; 2 a user error (no warehouse, locked, none of the tables, output not
writable), printed as one line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ml.core.cli import run
from ml.core.config import DEFAULT_SEED
from ml.reports.eda_data import DEFAULT_SAMPLE_ROWS
from ml.reports.eda_page import DEFAULT_OUTPUT, write_eda
from scripts._report_options import add_drawing_options, add_limit, report_parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: query (read-only, closed before plotting), draw, write, print path and plot count."""
    parser = report_parser("python -m scripts.eda", __doc__, DEFAULT_OUTPUT, "index.html")
    what = "rows sampled per table for histograms and correlations"
    add_limit(parser, "--sample-rows", DEFAULT_SAMPLE_ROWS, what)
    add_drawing_options(parser, DEFAULT_SEED, "the sample")
    args = parser.parse_args(argv)
    start = time.monotonic()
    path, n_plots = write_eda(
        args.output, sample_rows=args.sample_rows, seed=args.seed, embed=not args.png_files
    )
    print(f"{path}: {n_plots} plots ({time.monotonic() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    run(main, "scripts.eda")
