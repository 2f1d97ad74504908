"""Every report, and `reports/index.html` linking them: `python -m scripts.report`.

    python -m scripts.report                    # reports/ in the repository
    python -m scripts.report --output /tmp/r    # somewhere else

Writes `eda/index.html` (scripts.eda), `models/<task>.html` for every trained task
(scripts.report_models), `segments.html` (scripts.report_segments) and `index.html`, a page that
links them and summarises the champions and the segmentation. A part whose data is missing (no
model trained yet, no segmentation) is listed on the index as not available, with the command
that produces it; the other parts are still written. Static HTML, plots embedded: open
index.html in a browser, no server needed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ml.core.cli import run
from ml.reports.index import DEFAULT_OUTPUT, write_reports
from scripts._report_options import report_parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: write every report and the index; print one line per page."""
    parser = report_parser("python -m scripts.report", __doc__, DEFAULT_OUTPUT, "the reports")
    args = parser.parse_args(argv)
    start = time.monotonic()
    done = write_reports(
        args.output, on_page=lambda page, n_plots: print(f"{page}: {n_plots} plots")
    )
    for label, reason in done.missing:
        print(f"not written: {label} ({reason})")
    print(
        f"{done.index}: {len(done.pages)} pages, {done.plots} plots "
        f"({time.monotonic() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    run(main, "scripts.report")
