"""Promote a trained model by hand: `python -m ml.promote --task T --run R [--force --reason TEXT]`.

    python -m ml.promote --task loan_repayment --run 20261206T101500Z-ab12cd
    python -m ml.promote --task loan_repayment --run 20261206T101500Z-ab12cd --model xgboost
    python -m ml.promote --task loan_repayment --run R --force --reason "approved by risk"

Judges the run's champion (or `--model`) against the task's deployed model exactly as
`ml.train --promote auto` does: the same held-out rows, the significance test and the quality
and fairness gates (`ml.governance.promotion`). It is deployed only if it passes, or with
`--force` (a `--reason` is then required). Deploying restores the model's archived predictions
and scores only the rows it never saw (`ml.governance.deployments`). The decision and its
evidence are printed and stored in `ml.promotion_decisions`. Exit codes: 0 promoted, 1 not
promoted, 2 an error (a missing or tampered artifact: nothing is changed).
"""

from __future__ import annotations

from collections.abc import Sequence

from ml.core.cli import ArgumentParser, run
from ml.core.errors import UserError
from ml.core.tables import EVALUATION_PREDICTIONS, MODEL_RUNS, PROMOTION_DECISIONS
from ml.core.tasks import validate_task_name
from ml.core.warehouse import open_warehouse
from ml.governance.deployments import deploy, registered_model
from ml.governance.options import add_gate_arguments, promotion_options
from ml.governance.promotion import judge
from ml.serving.bundle import load_bundle
from ml.serving.model import TrainedModel, deployed_row
from ml.serving.output import now


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    parser = ArgumentParser(prog="python -m ml.promote", description=__doc__.split("\n")[0])
    parser.add_argument("--task", required=True, help="the task")
    parser.add_argument("--run", required=True, help="the ml.train run whose model to deploy")
    parser.add_argument("--model", help="a candidate of the run (default: its champion)")
    parser.add_argument(
        "--force", action="store_true", help="deploy whatever the evidence (needs --reason)"
    )
    parser.add_argument("--reason", help="why (stored with the decision and the deployment)")
    parser.add_argument("--seed", type=int, default=0, help="the paired bootstrap's seed")
    add_gate_arguments(parser)
    args = parser.parse_args(argv)
    if args.force and not (args.reason or "").strip():
        parser.error("--force needs a --reason")
    task = validate_task_name(args.task)
    with open_warehouse(read_only=True) as wh:
        challenger = registered_model(wh, task, args.run, args.model)
        current = deployed_row(wh, task)
        if current is not None and (current["run_id"], current["model_name"]) == (
            challenger["run_id"],
            challenger["model_name"],
        ):
            raise UserError(
                f"{task}: {args.run}/{challenger['model_name']} is already deployed "
                f"(deployment {current['deployment_id']})"
            )
        model = TrainedModel.of(load_bundle(challenger["path"], challenger["sha256"]))
        relation = model.info.get("relation")
        if not relation or not wh.exists(relation):
            raise UserError(f"{task}: the relation its model was trained on ({relation}) is gone")
        evaluation = (
            wh.query(
                f"select * from {EVALUATION_PREDICTIONS} where task = ? and run_id = ?",
                [task, args.run],
            )
            if wh.exists(EVALUATION_PREDICTIONS)
            else None
        )
        metric = wh.query(
            f"select primary_metric from {MODEL_RUNS} where task = ? and run_id = ? limit 1",
            [task, args.run],
        )
        spec = {
            "problem": model.output.problem,
            "metric": str(metric["primary_metric"].iloc[0]),
            "relation": relation,
            "id_column": model.output.id_column,
        }
        frame = wh.read_frame(relation)
        options = promotion_options(args, "force" if args.force else "manual", args.seed)
        decision = judge(wh, task, spec, challenger, evaluation, frame, None, options, options.mode)
    if args.reason:
        decision.reason = f"{args.reason.strip()}; {decision.reason}"
    for line in decision.lines():
        print(line)
    if decision.promoted:
        result = deploy(task, challenger, "ml.promote", decision.reason, decision.frame(now()))
        print(result.line())
        return 0
    with open_warehouse() as wh:
        wh.replace_tables(
            {PROMOTION_DECISIONS: wh.appended(PROMOTION_DECISIONS, decision.frame(now()))}
        )
    return 1


if __name__ == "__main__":
    run(main, "ml.promote")
