"""Train, tune, compare and persist models: `python -m ml.train`.

    python -m ml.train                          # the three built-in tasks
    python -m ml.train --task loan_repayment    # one of them
    python -m ml.train --table raw.my_csv --target churned [--id customer_id] [--problem auto]
    python -m ml.train --fast                   # small search spaces (tests, quick looks)

Reads the task relations once (read-only), trains with the warehouse closed, then writes in ONE
transaction: `ml.model_runs` and `ml.feature_importance` (appended), `ml.<task>_predictions`
(replaced), and the task's rows of `ml.prediction_explanations` (SHAP, top features of every
scored row) and `ml.evaluation_predictions` (every candidate on the held-out rows). A failed or
killed run leaves every `ml.*` table as it was.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from ml import config, evaluate, experiment
from ml.cli import ArgumentParser, non_negative_int, positive_int, run
from ml.cli import seed as seed_type
from ml.experiment import (
    TaskResult,
    builtin_or_custom,
    new_run_id,
    prepare_task,
    train_task,
)
from ml.warehouse import appended, replaced_where, require_passing_gate, session, write_tables

MODEL_RUNS = "ml.model_runs"
FEATURE_IMPORTANCE = "ml.feature_importance"
PREDICTION_EXPLANATIONS = "ml.prediction_explanations"
EVALUATION_PREDICTIONS = "ml.evaluation_predictions"


def predictions_relation(task: str) -> str:
    """Where a task's predictions land."""
    return f"ml.{task}_predictions"


def leaderboard(result: TaskResult) -> Table:
    """A rich table of a task's candidates: CV, selection score, validation, test, oracle."""
    spec = result.data.spec
    metric = spec.metric(spec.problem)
    oracle = result.oracle.get(metric, math.nan)
    has_oracle = not math.isnan(oracle)
    table = Table(
        title=f"{spec.name} ({spec.problem}, primary metric {metric})", title_justify="left"
    )
    columns = ["model", f"cv {metric}", "selection", f"val {metric}", f"test {metric}"]
    columns += ["test/oracle"] if has_oracle else []
    for col in [*columns, "fit s"]:
        table.add_column(col, justify="left" if col == "model" else "right")
    sign = 1 if evaluate.greater_is_better(metric) else -1
    for c in sorted(
        result.candidates, key=lambda c: -sign * np.nan_to_num(c.selection, nan=-np.inf)
    ):
        mean, std = c.cv().get(metric, (math.nan, math.nan))
        name = f"[bold]{c.name} *[/bold]" if c.name == result.champion else c.name
        row = [name, f"{mean:.4f} ± {std:.4f}", f"{c.selection:.4f}", f"{c.val[metric]:.4f}",
               f"{c.test[metric]:.4f}"]  # fmt: skip
        if has_oracle:
            row.append(f"{c.test[metric] / oracle:.3f}" if oracle else "")
        table.add_row(*row, f"{c.fit_seconds:.1f}")
    notes = ["* champion: best selection score (out-of-fold + validation), refitted on all rows"]
    if has_oracle:
        notes.insert(0, f"oracle test {metric} = {oracle:.4f} (the simulator's truth)")
    table.caption = "; ".join(notes)
    return table


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
        choices=["auto", *config.PROBLEM_TYPES],
        help="problem type of --table (default: inferred from the target)",
    )
    parser.add_argument("--seed", type=seed_type, default=config.DEFAULT_SEED, help="random seed")
    parser.add_argument("--fast", action="store_true", help="small search spaces (tests)")
    parser.add_argument("--cost-fp", type=float, help="cost of a false positive (binary)")
    parser.add_argument("--cost-fn", type=float, help="cost of a false negative (binary)")
    parser.add_argument(
        "--explain-rows",
        type=non_negative_int,
        default=config.EXPLAIN_MAX_ROWS,
        help="rows explained with SHAP per task; beyond it a seeded sample, 0: no explanations "
        f"(default {config.EXPLAIN_MAX_ROWS:,})",
    )
    parser.add_argument(
        "--top-k",
        type=positive_int,
        default=config.EXPLAIN_TOP_K,
        help=f"features kept per row in {PREDICTION_EXPLANATIONS} (default {config.EXPLAIN_TOP_K})",
    )
    parser.add_argument(
        "--skip-gate", action="store_true", help="train even if the quality gate last failed"
    )
    args = parser.parse_args(argv)
    for name in ("cost_fp", "cost_fn"):
        value = getattr(args, name)
        if value is not None and (not math.isfinite(value) or value < 0):
            parser.error(f"--{name.replace('_', '-')} must be a non-negative number")
    if args.table is None and (args.target or args.id_column):
        parser.error("--target and --id go with --table")

    if args.table is not None:
        specs = [
            builtin_or_custom(args.task, args.table, args.target, args.id_column, args.problem)
        ]
    elif args.task:
        specs = [builtin_or_custom(args.task, None, None, None, "auto")]
    else:
        specs = list(config.BUILTIN_TASKS.values())

    console = Console(stderr=True)
    run_id = new_run_id()
    with session(read_only=True) as con:
        prepared = []
        for spec in specs:
            if not args.skip_gate:
                require_passing_gate(con, spec.relation)
            prepared.append(prepare_task(con, spec))

    results: list[TaskResult] = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        for data in prepared:
            bar = progress.add_task(data.spec.name, total=experiment.PROGRESS_STEPS)

            def step(message: str, bar=bar) -> None:
                progress.update(bar, description=message, advance=1)

            results.append(
                train_task(
                    data,
                    run_id,
                    seed=args.seed,
                    fast=args.fast,
                    cost_fp=args.cost_fp,
                    cost_fn=args.cost_fn,
                    progress=step,
                    explain_rows=args.explain_rows,
                    top_k=args.top_k,
                )
            )
            progress.update(
                bar,
                description=f"{data.spec.name}: trained in {results[-1].seconds:.0f}s",
                completed=experiment.PROGRESS_STEPS,
            )

    def combined(frames: list[pd.DataFrame]) -> pd.DataFrame:
        frames = [f for f in frames if not f.empty]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    runs = combined([r.runs for r in results])
    evaluation = combined([r.evaluation for r in results])
    explanations = combined([r.explanations for r in results])
    importance = combined([r.importance for r in results])
    with session() as con:
        tables = {
            MODEL_RUNS: appended(con, MODEL_RUNS, runs),
            EVALUATION_PREDICTIONS: replaced_where(con, EVALUATION_PREDICTIONS, evaluation, "task"),
        }
        if not explanations.empty:
            tables[FEATURE_IMPORTANCE] = appended(con, FEATURE_IMPORTANCE, importance)
            tables[PREDICTION_EXPLANATIONS] = replaced_where(
                con, PREDICTION_EXPLANATIONS, explanations, "task"
            )
        for r in results:
            tables[predictions_relation(r.data.spec.name)] = r.predictions
        written = write_tables(con, tables)

    out = Console(width=None if Console().is_terminal else 120)
    for r in results:
        out.print(leaderboard(r))
        if r.data.target_mapping:
            out.print(f"  target mapping: {json.dumps(r.data.target_mapping)}")
        if not r.importance.empty:
            top = ", ".join(r.importance["feature"].head(5))
            out.print(
                f"  SHAP: {r.importance['n_rows'].iloc[0]:,} rows explained in "
                f"{r.explain_seconds:.1f}s ({r.importance['output_space'].iloc[0]}); top: {top}"
            )
        dropped = r.data.features.dropped
        if dropped:
            out.print(
                "  not used as features: " + "; ".join(f"{k} ({v})" for k, v in dropped.items())
            )
    for relation, rows in written.items():
        out.print(f"wrote {relation}: {rows:,} rows")
    out.print(f"run {run_id}")
    return 0


if __name__ == "__main__":
    run(main, "ml.train")
