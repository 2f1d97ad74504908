"""Run one SQL query on the warehouse and print the result: `python -m scripts.query "select ..."`.

The same command on both engines (`WAREHOUSE_ENGINE=duckdb|spark`), so that "SQL on the
prediction tables" reads the same everywhere:

    python -m scripts.query "select task, count(*) from ml.model_runs group by task"
    python -m scripts.query --format csv "select * from marts.loan_decisions" > decisions.csv

Read-only: a statement that could change data is refused with one line (the engine refuses it
too: DuckDB opens the file read-only, Spark is asked whether the plan is a query); `--write` opens
the warehouse for writing and runs any one statement.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import pandas as pd

from ml.core.cli import ArgumentParser, non_negative_int, run
from ml.core.errors import UserError
from ml.core.sql import is_query, statements
from ml.core.text import plural
from ml.core.warehouse import open_warehouse

FORMATS = ("table", "csv")


def render_table(frame: pd.DataFrame, max_rows: int) -> str:
    """The first `max_rows` rows (0 = all) as aligned text, then the row count."""
    total = len(frame)
    shown = frame.head(max_rows) if max_rows else frame
    if total:
        body = shown.to_string(index=False, na_rep="NULL", max_colwidth=60)
    else:
        body = "  ".join(map(str, frame.columns))
    count = plural(total, "row")
    if len(shown) < total:
        return f"{body}\n({count}, {len(shown):,} shown: --max-rows 0 shows all)"
    return f"{body}\n({count})"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: run the query, print it as a table or CSV."""
    parser = ArgumentParser(prog="python -m scripts.query", description=__doc__.split("\n")[0])
    parser.add_argument("sql", help="one SQL statement (quote it for the shell)")
    parser.add_argument("--format", choices=FORMATS, default="table", help="table (default) or csv")
    parser.add_argument(
        "--max-rows",
        type=non_negative_int,
        default=100,
        help="rows a table shows (default 100, 0 = all); csv always prints every row",
    )
    parser.add_argument(
        "--write", action="store_true", help="open the warehouse for writing and run any statement"
    )
    args = parser.parse_args(argv)
    if len(statements(args.sql)) != 1:
        raise UserError("give exactly one SQL statement")
    if not args.write and not is_query(args.sql):
        raise UserError(
            "only queries run read-only (select, with, show, describe, explain ...): "
            "pass --write to change the warehouse"
        )
    with open_warehouse(read_only=not args.write) as wh:
        result = wh.query_arrow(args.sql)
    frame = result.to_pandas()
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
    else:
        print(render_table(frame, args.max_rows))
    return 0


if __name__ == "__main__":
    run(main, "scripts.query")
