"""Score what changed: `python -m ml.score [--task T ...] [--all]`.

Scores, with each task's deployed model, only the rows of its relation that have no score from
that model or whose feature values changed since they were scored (a hash of the scored values
is kept in `ml.score_log`); `--all` rescores every row. The rows go through the same bundle
(hash-checked before it is loaded), input contract and batch scoring as `ml.predict`; each
task's `ml.<task>_predictions` and its `ml.score_log` rows are written in one transaction.
Without `--task`, every task with a deployed model is scored. See `ml.serving.incremental`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ml.core.cli import ArgumentParser, run
from ml.core.errors import UserError
from ml.core.tables import MODEL_RUNS
from ml.core.tasks import validate_task_name
from ml.core.warehouse import open_warehouse
from ml.serving.destinations import warning_line
from ml.serving.incremental import ScoringResult, score_incremental
from ml.serving.model import deployed_tasks


def trained_tasks() -> list[str]:
    """Every task with a deployed model, in name order."""
    with open_warehouse(read_only=True) as wh:
        tasks = deployed_tasks(wh)
        if not tasks and not wh.exists(MODEL_RUNS):
            raise UserError("no models trained yet: run `python -m ml.train` first")
    return tasks


def summary(result: ScoringResult) -> str:
    """One line: what was scored, why, and what was written."""
    why = ", ".join(f"{n:,} {reason}" for reason, n in result.scored.items()) or "nothing changed"
    line = (
        f"{result.task}: scored {result.scored_rows:,} of {result.rows:,} rows of "
        f"{result.relation} with {result.run_id}/{result.model_name} ({why})"
    )
    if result.removed:
        line += f"; dropped {result.removed:,} predictions of rows no longer there"
    return f"{line} in {result.seconds:.1f}s"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.score", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--task", action="append", help="a task to score (repeatable; default: every deployed task)"
    )
    parser.add_argument("--all", action="store_true", help="rescore every row, changed or not")
    args = parser.parse_args(argv)
    tasks = [validate_task_name(t) for t in args.task] if args.task else trained_tasks()
    for task in tasks:
        result = score_incremental(task, every=args.all)
        print(summary(result))
        if result.notes:
            print(f"ml.score: warning: {task}: {warning_line(result.notes)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main, "ml.score")
