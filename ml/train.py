"""Train, tune, compare and persist models: `python -m ml.train`.

    python -m ml.train                          # the three built-in tasks
    python -m ml.train --task loan_repayment    # one of them
    python -m ml.train --table raw.my_csv --target churned [--id customer_id] [--problem auto]
    python -m ml.train --fast                   # small search spaces (tests, quick looks)
    python -m ml.train --time-budget 120        # seconds of hyperparameter search per task
    python -m ml.train --max-rows 200000        # train on a seeded sample of larger relations
    python -m ml.train --task loan_repayment --drop-feature customer_age   # without a column
    python -m ml.train --promote never          # train challengers, deploy nothing

Reads the task relations once (read-only), trains with the warehouse closed, then writes in ONE
transaction (`ml.training.run`): a failed or killed run leaves every `ml.*` table as it was.
A relation of more than `--max-rows` rows (default 1,000,000) is trained on a seeded sample of
that many rows; its champion then scores every row where it lies, and `ml.model_runs` records
`rows_available` and `rows_used`. Hyperparameters are searched within `--time-budget` seconds per
task (Optuna, seeded; `ml.training.search`), or by the grids of `--fast` / `--time-budget 0`.

A task's first run deploys its champion (`ml.deployments`). A later run's champion is a
challenger: under `--promote auto` (the default) it is deployed only if it beats the deployed
model on the same held-out rows by a significant margin and passes the quality and fairness
gates (`ml.governance.promotion`); `never` deploys nothing, `force` deploys it anyway. Every
decision and its evidence is printed and stored in `ml.promotion_decisions`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from ml.core.cli import (
    ArgumentParser,
    non_negative_float,
    non_negative_int,
    positive_int,
    run,
)
from ml.core.cli import seed as seed_type
from ml.core.config import DEFAULT_SEED
from ml.core.tables import PREDICTION_EXPLANATIONS
from ml.core.tasks import PROBLEM_TYPES
from ml.governance.options import add_gate_arguments, promotion_options
from ml.governance.promotion import MODES
from ml.training import settings
from ml.training.experiment import TrainOptions
from ml.training.leaderboard import leaderboard
from ml.training.run import TASK_STEPS, RunResult, run_training, task_specs


def _train_with_bars(specs, options: TrainOptions, console: Console, promotion) -> RunResult:
    """`run_training` with one progress bar per task on stderr."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        bars: dict[str, int] = {}

        def step(task: str, message: str) -> None:
            if task not in bars:
                bars[task] = progress.add_task(task, total=TASK_STEPS)
            progress.update(bars[task], description=message, advance=1)

        return run_training(specs, options, step, promotion)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.train", description=__doc__.split("\n")[0])
    parser.add_argument("--task", help="a built-in task, or the name of a --table task")
    parser.add_argument("--table", help="train on your own table SCHEMA.NAME (with --target)")
    parser.add_argument("--target", help="target column of --table")
    parser.add_argument("--id", dest="id_column", help="id column of --table (default: row number)")
    parser.add_argument(
        "--problem",
        default="auto",
        choices=["auto", *PROBLEM_TYPES],
        help="problem type of --table (default: inferred from the target)",
    )
    parser.add_argument("--seed", type=seed_type, default=DEFAULT_SEED, help="random seed")
    parser.add_argument("--fast", action="store_true", help="small search spaces (tests)")
    parser.add_argument(
        "--time-budget",
        type=non_negative_float,
        help="seconds of hyperparameter search per task, shared by the candidates; 0: grid "
        f"search (default {settings.TIME_BUDGET:g}, or 0 with --fast)",
    )
    parser.add_argument("--cost-fp", type=float, help="cost of a false positive (binary)")
    parser.add_argument("--cost-fn", type=float, help="cost of a false negative (binary)")
    parser.add_argument(
        "--explain-rows",
        type=non_negative_int,
        default=settings.EXPLAIN_MAX_ROWS,
        help="rows explained with SHAP per task; beyond it a seeded sample, 0: no explanations "
        f"(default {settings.EXPLAIN_MAX_ROWS:,})",
    )
    parser.add_argument(
        "--top-k",
        type=positive_int,
        default=settings.EXPLAIN_TOP_K,
        help=f"features kept per row in {PREDICTION_EXPLANATIONS} (default {settings.EXPLAIN_TOP_K})",
    )
    parser.add_argument(
        "--max-rows",
        type=positive_int,
        default=settings.TRAIN_MAX_ROWS,
        help="rows of a relation trained on; beyond it a sample drawn with --seed, and the "
        f"champion scores every row (default {settings.TRAIN_MAX_ROWS:,})",
    )
    parser.add_argument(
        "--skip-gate", action="store_true", help="train even if the quality gate last failed"
    )
    parser.add_argument(
        "--drop-feature",
        action="append",
        default=[],
        metavar="COLUMN",
        help="train every selected task without this column (repeatable), e.g. a sensitive "
        "attribute: --task loan_repayment --drop-feature customer_age",
    )
    parser.add_argument(
        "--promote",
        choices=MODES,
        default="auto",
        help="deploy a task's new champion: auto (only on a significant gain with the quality "
        "and fairness gates passed), never, or force (default auto; a task's first run always "
        "deploys)",
    )
    add_gate_arguments(parser)
    args = parser.parse_args(argv)
    for name in ("cost_fp", "cost_fn"):
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            parser.error(f"--{name.replace('_', '-')} must be a non-negative number")
    if args.table is None and (args.target or args.id_column):
        parser.error("--target and --id go with --table")

    specs = task_specs(args.task, args.table, args.target, args.id_column, args.problem)
    if args.drop_feature:
        specs = [replace(spec, dropped=tuple(args.drop_feature)) for spec in specs]
    options = TrainOptions(
        seed=args.seed,
        fast=args.fast,
        cost_fp=args.cost_fp,
        cost_fn=args.cost_fn,
        explain_rows=args.explain_rows,
        top_k=args.top_k,
        skip_gate=args.skip_gate,
        max_rows=args.max_rows,
        time_budget=args.time_budget
        if args.time_budget is not None
        else (0.0 if args.fast else settings.TIME_BUDGET),
    )

    promotion = promotion_options(args, args.promote, args.seed)
    result = _train_with_bars(specs, options, Console(stderr=True), promotion)
    out = Console(width=None if Console().is_terminal else 120)
    for r in result.results:
        out.print(leaderboard(r))
        if r.data.sampled:
            out.print(
                f"  trained on a sample of {r.data.rows_used:,} of {r.data.rows_available:,} rows "
                f"(--max-rows, seed {args.seed}); every row scored"
            )
        if r.data.target_mapping:
            out.print(f"  target mapping: {json.dumps(r.data.target_mapping)}")
        if not r.importance.empty:
            top = ", ".join(r.importance["feature"].head(5))
            out.print(
                f"  SHAP: {r.importance['n_rows'].iloc[0]:,} rows explained in "
                f"{r.explain_seconds:.1f}s ({r.importance['output_space'].iloc[0]}); top: {top}"
            )
        if r.data.spec.dropped:
            out.print("  trained without (--drop-feature): " + ", ".join(r.data.spec.dropped))
        dropped = r.data.features.dropped
        if dropped:
            out.print(
                "  not used as features: " + "; ".join(f"{k} ({v})" for k, v in dropped.items())
            )
    for decision in result.decisions:
        for line in decision.lines():
            out.print(line, highlight=False, markup=False, soft_wrap=True)
    for relation, rows in result.written.items():
        out.print(f"wrote {relation}: {rows:,} rows")
    out.print(f"run {result.run_id}")
    return 0


if __name__ == "__main__":
    run(main, "ml.train")
