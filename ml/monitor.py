"""Is any deployed model drifting? `python -m ml.monitor [--batch N | --all-batches] [--task T]`.

Prints one table per task: every feature of its deployed model and its score, with the batch,
the population stability index (PSI) against the model's training rows, the missing share and a
status (stable < 0.1 <= watch < 0.25 <= act, the dbt vars of dbt_project.yml), then the realised
primary metric of the batch beside the one measured at training. Reads the marts dbt built
(`marts.monitoring_drift`, `marts.monitoring_performance`); default: each task's latest batch.

Exit code 0 when nothing needs action (stable or watch), 1 when a feature, the score or the
realised metric needs action (a scheduler can trigger retraining on it), 2 on an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ml.core.cli import ArgumentParser, non_negative_int, run
from ml.core.tasks import validate_task_name
from ml.core.warehouse import open_warehouse
from ml.monitoring.status import Monitoring, read_monitoring

#: Exit code when something needs action.
NEEDS_ACTION = 1


def _table(drift: pd.DataFrame) -> str:
    shown = pd.DataFrame(
        {
            "feature": drift["feature"].where(drift["subject"] == "feature", "(score)"),
            "batch": drift["batch_id"].astype(int),
            "rows": drift["row_count"].astype(int),
            "PSI": drift["psi"].map("{:.3f}".format),
            "missing": drift["missing_share"].map("{:.1%}".format),
            "status": drift["status"],
        }
    )
    return shown.to_string(index=False)


def _metric_line(row: pd.Series) -> str:
    if pd.isna(row["realised_metric"]):
        return (
            f"  realised {row['metric']} of batch {int(row['batch_id'])}: not measured "
            f"({int(row['row_count'])} labelled rows arrived; training: {row['training_metric']:.4f})"
        )
    verdict = row["status"] if row.get("is_gated", True) else "shown, not gated (new entities)"
    return (
        f"  realised {row['metric']} of batch {int(row['batch_id'])}: {row['realised_metric']:.4f} "
        f"on {int(row['row_count']):,} new labelled rows (training: {row['training_metric']:.4f}, "
        f"drop {row['metric_drop']:+.4f}) -> {verdict}"
    )


def report(monitoring: Monitoring, tasks: Sequence[str] | None = None) -> str:
    """The tables ml.monitor prints."""
    blocks = []
    for task, drift in monitoring.drift.groupby("task", sort=True):
        if tasks and task not in tasks:
            continue
        lines = [f"{task}: {monitoring.worst(task)}", _table(drift)]
        performance = monitoring.performance[monitoring.performance["task"] == task]
        lines += [_metric_line(row) for _, row in performance.iterrows()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.monitor", description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--batch", type=non_negative_int, help="the batch to check (default: latest)"
    )
    which.add_argument("--all-batches", action="store_true", help="every batch (exit code: any)")
    parser.add_argument("--task", action="append", help="only this task (repeatable)")
    args = parser.parse_args(argv)
    tasks = [validate_task_name(t) for t in args.task] if args.task else None
    with open_warehouse(read_only=True) as wh:
        monitoring = read_monitoring(wh, args.batch, args.all_batches)
    if tasks:
        monitoring.drift = monitoring.drift[monitoring.drift["task"].isin(tasks)]
        monitoring.performance = monitoring.performance[monitoring.performance["task"].isin(tasks)]
    print(report(monitoring))
    worst = monitoring.worst()
    print(f"\nmonitor: {worst}" + (" -> retrain" if worst == "act" else ""))
    return NEEDS_ACTION if worst == "act" else 0


if __name__ == "__main__":
    run(main, "ml.monitor")
