"""The data-quality gate: validate warehouse tables against the Great Expectations suites.

`python -m scripts.check_quality [--suite NAME ...]` validates the table of each suite in
`expectations/` (`ml.quality`), prints one line per suite and one indented line per failed
expectation, and appends one row per expectation to `quality.check_results`.

Exit codes: 0 every expectation passed, 1 at least one failed, 2 a user error (warehouse or table
missing, warehouse locked, unknown suite, unreadable suite file), printed as one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ml.core.cli import ArgumentParser, run
from ml.core.tables import GATE_RESULTS
from ml.quality.describe import report_lines
from ml.quality.gate import check
from ml.quality.results import store_results


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the gate, store the results, print the report; 0 all pass, 1 a failure.

    User errors raise `UserError`, which `ml.core.cli.run` turns into one line and exit code 2.
    """
    os.environ["GX_ANALYTICS_ENABLED"] = "False"  # no usage statistics (the context says so too)
    parser = ArgumentParser(
        prog="python -m scripts.check_quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--suite",
        dest="suites",
        metavar="NAME",
        nargs="+",
        action="extend",
        help="suite(s) to run, e.g. raw.customers marts.loan_features (default: all)",
    )
    args = parser.parse_args(argv)
    result = check(args.suites)
    stored = store_results(result)
    for line in report_lines(result):
        print(line)
    failed = [s.suite for s in result.suites if not s.success]
    verdict = (
        f"{len(failed)} of {len(result.suites)} suites failed"
        if failed
        else f"all {len(result.suites)} suites passed"
    )
    print(f"{verdict}; {stored} results appended to {GATE_RESULTS} (run_id {result.run_id})")
    return 1 if failed else 0


if __name__ == "__main__":
    run(main, "scripts.check_quality")
