"""The leaderboard of a task's candidates, as a rich table (the CLI prints it)."""

from __future__ import annotations

import math

import numpy as np
from rich.table import Table

from ml.core.tasks import greater_is_better
from ml.training.results import TaskResult


def _tuning(params: dict) -> str:
    """Seconds of search, and for a budgeted search the budget and trials run."""
    found = params.get("search")
    if found:
        return f"{found['seconds']:.0f}/{found['budget_seconds']:.0f} s, {found['trials']} trials"
    seconds = params.get("tuning_seconds")
    return "" if seconds is None else f"{seconds:.1f} s"


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
    for col in [*columns, "tuning", "fit s"]:
        table.add_column(col, justify="left" if col == "model" else "right")
    sign = 1 if greater_is_better(metric) else -1
    for c in sorted(
        result.candidates, key=lambda c: -sign * np.nan_to_num(c.selection, nan=-np.inf)
    ):
        mean, std = c.cv().get(metric, (math.nan, math.nan))
        name = f"[bold]{c.name} *[/bold]" if c.name == result.champion else c.name
        row = [name, f"{mean:.4f} ± {std:.4f}", f"{c.selection:.4f}", f"{c.val[metric]:.4f}",
               f"{c.test[metric]:.4f}"]  # fmt: skip
        if has_oracle:
            row.append(f"{c.test[metric] / oracle:.3f}" if oracle else "")
        table.add_row(*row, _tuning(c.params), f"{c.fit_seconds:.1f}")
    notes = ["* champion: best selection score (out-of-fold + validation), refitted on all rows"]
    if any("search" in c.params for c in result.candidates):
        notes.append(
            "tuning: seconds used of the candidate's budget, trials (ml.train --time-budget)"
        )
    if has_oracle:
        notes.insert(0, f"oracle test {metric} = {oracle:.4f} (the simulator's truth)")
    table.caption = "; ".join(notes)
    return table
