"""Put a previous model back in service: `python -m ml.rollback --task T [--to RUN]`.

    python -m ml.rollback --task loan_repayment                  # the deployment before this one
    python -m ml.rollback --task loan_repayment --to 20261206T101500Z-ab12cd   # a named run

Deploys, without retraining, the model of the deployment before the current one (or the model
run RUN deployed, else RUN's champion). Its artifact is hash-checked first: a missing or
tampered file refuses the rollback with one line and changes nothing. The task's predictions
are restored to exactly what that model produced (its archived predictions, wherever the row's
feature values are unchanged; rows it never saw are scored by it), and the rollback is recorded
in `ml.deployments` (`ml.governance.deployments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ml.core.cli import ArgumentParser, run
from ml.core.errors import UserError
from ml.core.tasks import validate_task_name
from ml.core.warehouse import Warehouse, open_warehouse
from ml.governance.deployments import deploy, history, registered_model
from ml.serving.model import registry_entry


def rollback_target(wh: Warehouse, task: str, to_run: str | None) -> dict[str, Any]:
    """The registry row of the model to put back: the one deployed before the current
    deployment, or the model run `to_run` last deployed (else its champion)."""
    past = history(wh, task)
    if past.empty:
        raise UserError(
            f"{task}: nothing was ever deployed: run `python -m ml.train --task {task}`"
        )
    current = past.iloc[-1]
    if to_run is None:
        if (
            len(past) < 2
            or current["previous_deployment_id"] is None
            or str(current["previous_deployment_id"]) in ("<NA>", "nan")
        ):
            raise UserError(f"{task}: deployment {int(current['deployment_id'])} is the first one")
        rows = past[past["deployment_id"] == int(current["previous_deployment_id"])]
    else:
        rows = past[past["run_id"].astype(str) == to_run]
        if rows.empty:
            return registered_model(wh, task, to_run)
    return registry_entry(rows.iloc[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.rollback", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, help="the task")
    parser.add_argument("--to", dest="to_run", help="the run whose model to restore")
    parser.add_argument("--reason", default="", help="why (stored with the deployment)")
    args = parser.parse_args(argv)
    task = validate_task_name(args.task)
    with open_warehouse(read_only=True) as wh:
        target = rollback_target(wh, task, args.to_run)
        current = history(wh, task).iloc[-1]
    if (str(current["run_id"]), str(current["model_name"])) == (
        target["run_id"],
        target["model_name"],
    ):
        raise UserError(f"{task}: {target['run_id']}/{target['model_name']} is already deployed")
    reason = args.reason.strip() or f"rollback from deployment {int(current['deployment_id'])}"
    print(deploy(task, target, "ml.rollback", reason).line())
    return 0


if __name__ == "__main__":
    run(main, "ml.rollback")
