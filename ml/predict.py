"""Score new rows with a task's deployed model: `python -m ml.predict`.

    python -m ml.predict --task loan_repayment --input new_loans.csv --output scored.csv
    python -m ml.predict --task loan_repayment --table marts.loan_features --write-table ml.loan_scores

The deployed model's file (`ml.deployments`) is hash-checked before it is loaded; the rows go
through the model's input contract (`ml.serving.prepare`): every input row gets exactly one
output row, in input order. The output CSV is complete or absent; `--write-table` replaces a
table of schema `ml` atomically and may not name a table that ml.train, ml.segment or dbt own.
Adjustments are reported on stderr in one `warning:` line; refusals are one `error:` line and
exit code 2.

On an engine with workers of its own (Spark), `--table` with `--write-table` is scored where the
table lies (`ml.serving.batch.score_table`: the hash-checked model is shipped to the executors),
never read into this process; adjustments are then not reported.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from ml.core.cli import ArgumentParser, run
from ml.core.names import parse_relation
from ml.core.tasks import validate_task_name
from ml.core.warehouse import open_warehouse
from ml.ingestion.csv import EmptyCsvError, read_csv
from ml.serving.batch import score_table
from ml.serving.destinations import (
    check_output_path,
    check_output_table,
    check_output_table_in,
    warning_line,
    write_csv,
)
from ml.serving.model import TrainedModel, load_model
from ml.serving.prepare import NoRowsError

EPILOG = """\
input rules: a missing feature column is refused; extra columns are ignored; a column name may
differ in case. Text that is not a number in a numeric column (abc, 1,000, $5) becomes missing and
is imputed when such values are a minority; a column of mostly text is refused. Infinities and
numbers beyond +/-1e15 become missing. Unseen categories are scored as infrequent. Repeated or
missing ids are kept (every row is scored, in input order) and reported. An empty input is
refused ("no rows to score"). Adjustments are reported on stderr in one warning line; refusals
are one error line and exit code 2, and write nothing."""


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(
        prog="python -m ml.predict", description=__doc__.split("\n")[0], epilog=EPILOG
    )
    parser.add_argument(
        "--task", required=True, help="the task whose deployed model scores the rows"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="CSV file of rows to score")
    source.add_argument("--table", help="warehouse table or view of rows to score")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--output", help="CSV file to write (complete or not at all)")
    target.add_argument(
        "--write-table", help="warehouse table ml.NAME to write (replaced atomically)"
    )
    args = parser.parse_args(argv)

    task = validate_task_name(args.task)
    if args.table is not None:
        parse_relation(args.table, flag="--table")
    out_table = check_output_table(args.write_table) if args.write_table is not None else None
    out_path = check_output_path(args.output) if args.output is not None else None
    frame = None
    if args.input is not None:
        try:
            frame = read_csv(args.input)[0].to_pandas(date_as_object=False)
        except EmptyCsvError as err:
            raise NoRowsError(f"no rows to score: {err}") from None
    with open_warehouse(read_only=True) as wh:
        model = load_model(task, wh)
        if out_table:
            check_output_table_in(wh, out_table)
        if frame is None and out_table and wh.distributed:
            return _score_in_place(task, model, args.table, out_table)
        if frame is None:
            frame = wh.read_frame(args.table)
            if frame.empty:
                raise NoRowsError(f"no rows to score: {args.table} is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scored = model.predict(frame)
    notes = scored.attrs.get("notes", [])
    scored.attrs = {}
    done = f"scored {len(scored):,} rows with {task}/{model.model_name}"
    if out_table:
        with open_warehouse() as wh:
            check_output_table_in(wh, out_table)
            rows = wh.replace_table(out_table, scored)
        print(f"{done}; wrote {out_table} ({rows:,} rows)")
    else:
        write_csv(scored, out_path)
        print(f"{done}; wrote {args.output}")
    if notes:
        print(f"ml.predict: warning: {warning_line(notes)}", file=sys.stderr)
    return 0


def _score_in_place(task: str, model: TrainedModel, table: str, out_table: str) -> int:
    """`--table` into `--write-table` on the engine's workers (Spark)."""
    with open_warehouse() as wh:
        check_output_table_in(wh, out_table)
        rows = score_table(wh, model, table, out_table)
    print(f"scored {rows:,} rows with {task}/{model.model_name}; wrote {out_table} ({rows:,} rows)")
    return 0


if __name__ == "__main__":
    run(main, "ml.predict")
