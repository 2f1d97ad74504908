"""What `python -m ml.monitor` reads: the drift and realised-performance marts dbt built
(`marts.monitoring_drift`, `marts.monitoring_performance`), for one batch or all of them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ml.core.errors import UserError
from ml.core.warehouse import Warehouse

DRIFT = "marts.monitoring_drift"
PERFORMANCE = "marts.monitoring_performance"
#: Statuses from best to worst.
STATUSES = ("stable", "watch", "act")


@dataclass
class Monitoring:
    """The drift rows (features and score) and the realised-metric rows of the chosen batches."""

    drift: pd.DataFrame
    performance: pd.DataFrame
    batches: list[int]

    def worst(self, task: str | None = None) -> str:
        """The worst status over every row (of `task`): stable, watch or act."""
        statuses = pd.concat(
            [
                frame.loc[frame["task"] == task, "status"] if task else frame["status"]
                for frame in (self.drift, self.performance)
            ]
        ).dropna()
        return max(statuses, key=STATUSES.index, default="stable")


def read_monitoring(wh: Warehouse, batch: int | None = None, every: bool = False) -> Monitoring:
    """The rows of `batch` (default: the latest batch of each task), or of every batch."""
    for relation in (DRIFT, PERFORMANCE):
        if not wh.exists(relation):
            raise UserError(
                f"{relation} does not exist: build the monitoring marts first "
                "(`make dbt-scores`, after ml.train and ml.score)"
            )
    drift = wh.read_frame(DRIFT)
    performance = wh.read_frame(PERFORMANCE)
    if drift.empty:
        raise UserError(f"{DRIFT} is empty: no task has a reference profile and a scored batch")
    if every:
        chosen = drift
    elif batch is not None:
        chosen = drift[drift["batch_id"] == batch]
        if chosen.empty:
            known = ", ".join(map(str, sorted(drift["batch_id"].unique())))
            raise UserError(f"no batch {batch} in {DRIFT} (batches: {known})")
    else:
        latest = drift.groupby("task")["batch_id"].transform("max")
        chosen = drift[drift["batch_id"] == latest]
    keys = chosen[["task", "batch_id"]].drop_duplicates()
    performance = performance.merge(keys, on=["task", "batch_id"], how="inner")
    chosen = chosen.sort_values(
        ["task", "batch_id", "subject", "psi", "feature"],
        ascending=[True, True, False, False, True],
    )
    return Monitoring(
        drift=chosen.reset_index(drop=True),
        performance=performance.sort_values(["task", "batch_id"]).reset_index(drop=True),
        batches=sorted(int(b) for b in keys["batch_id"].unique()),
    )
