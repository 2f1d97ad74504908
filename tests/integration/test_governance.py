"""Governance end to end on the tiny warehouse (loan_repayment, DuckDB): the first run deploys,
a challenger is judged on evidence and gates, ml.promote and ml.rollback restore predictions
exactly, a tampered artifact refuses the rollback with nothing changed.

One warehouse goes through the steps in order (each test reads the state the previous left):

1. a weak first run (without the strongest features) is deployed;
2. a full challenger, significantly better, fails a strict fairness gate: not deployed;
3. `ml.promote` of that run with the gate off deploys it (manual, on evidence);
4. a second run on unchanged data with the same seed is not promoted (no significant gain);
5. `ml.promote --force` of it, then `ml.rollback`: the predictions equal those before, value
   for value;
6. its artifact tampered with: `ml.rollback --to` it refuses, nothing changes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.conftest import run_dbt, run_python

pytestmark = pytest.mark.slow

TASK = "loan_repayment"
#: Without these the first model is weak, so that a full model is significantly better.
WEAK = ("grade", "interest_rate", "credit_score", "debt_to_income", "installment_to_income",
        "monthly_installment", "delinquencies_2y", "revolving_utilization")  # fmt: skip
TRAIN = ("ml.train", "--task", TASK, "--fast", "--seed", "5", "--explain-rows", "200")


def _query(warehouse: Path, sql: str, params=None) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def _predictions(warehouse: Path) -> pd.DataFrame:
    return _query(warehouse, f"select * from ml.{TASK}_predictions order by loan_id")


def _deployments(warehouse: Path) -> pd.DataFrame:
    return _query(warehouse, "select * from ml.deployments where task = ? order by 2", [TASK])


def _decisions(warehouse: Path) -> pd.DataFrame:
    return _query(
        warehouse, "select * from ml.promotion_decisions where task = ? order by decided_at", [TASK]
    )


def _run_id(stdout: str) -> str:
    return stdout.strip().splitlines()[-1].removeprefix("run ").strip()


@pytest.fixture(scope="module")
def flow(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("governance")
    warehouse = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts")}
    return {"warehouse": warehouse, "env": env, "runs": {}, "snapshots": {}}


def _py(flow: dict, *args: str, check: bool = True):
    return run_python(*args, warehouse=flow["warehouse"], env_extra=flow["env"], check=check)


def test_1_first_run_deploys_its_champion(flow) -> None:
    drops = [a for f in WEAK for a in ("--drop-feature", f)]
    out = _py(flow, *TRAIN, *drops).stdout
    flow["runs"]["weak"] = run = _run_id(out)
    deployed = _deployments(flow["warehouse"])
    assert len(deployed) == 1
    row = deployed.iloc[0]
    assert (row["deployment_id"], row["run_id"], row["command"]) == (1, run, "ml.train")
    champion = _query(
        flow["warehouse"],
        "select model_name, artifact_sha256 from ml.model_runs where run_id = ? and is_champion",
        [run],
    ).iloc[0]
    assert row["model_name"] == champion["model_name"]
    assert row["artifact_sha256"] == champion["artifact_sha256"]
    decision = _decisions(flow["warehouse"]).iloc[-1]
    assert decision["mode"] == "first" and decision["promoted"]
    assert decision["deployment_id"] == 1
    predictions = _predictions(flow["warehouse"])
    assert set(predictions["run_id"]) == {run}
    flow["snapshots"]["weak"] = predictions


def test_2_a_better_challenger_failing_the_fairness_gate_is_not_promoted(flow) -> None:
    out = _py(flow, *TRAIN, "--gate-attribute", "gender", "--min-parity-ratio", "0.999").stdout
    flow["runs"]["full"] = run = _run_id(out)
    decision = _decisions(flow["warehouse"]).iloc[-1]
    assert decision["challenger_run_id"] == run and decision["mode"] == "auto"
    assert decision["significant"], decision.to_dict()  # the full model is clearly better ...
    assert decision["challenger_score"] > decision["deployed_score"]
    assert decision["ci_low"] > 0 and decision["p_value"] < decision["alpha"]
    assert decision["test"] == "DeLong" and decision["n_rows"] >= 100
    assert not decision["fairness_passed"]  # ... but fails the gate
    assert "gender demographic_parity_ratio" in decision["fairness_checks"]
    assert not decision["promoted"] and "fairness" in decision["reason"]
    assert pd.isna(decision["deployment_id"])
    assert "not promoted" in out and "fairness gate" in out
    assert len(_deployments(flow["warehouse"])) == 1
    pd.testing.assert_frame_equal(_predictions(flow["warehouse"]), flow["snapshots"]["weak"])
    archived = _query(
        flow["warehouse"],
        f"select count(*) as n from ml.{TASK}_prediction_archive where run_id = ?",
        [run],
    )
    assert archived["n"].iloc[0] == len(flow["snapshots"]["weak"])


def test_3_promote_by_hand_on_evidence(flow) -> None:
    run = flow["runs"]["full"]
    proc = _py(flow, "ml.promote", "--task", TASK, "--run", run, "--gate-attribute", "none")
    assert "PROMOTED (manual)" in proc.stdout
    deployed = _deployments(flow["warehouse"])
    assert list(deployed["run_id"]) == [flow["runs"]["weak"], run]
    assert deployed.iloc[-1]["command"] == "ml.promote"
    assert deployed.iloc[-1]["previous_deployment_id"] == 1
    predictions = _predictions(flow["warehouse"])
    assert set(predictions["run_id"]) == {run}
    # restored from the archive as ml.train computed them, not rescored
    archive = _query(
        flow["warehouse"],
        f"select * exclude (feature_hash) from ml.{TASK}_prediction_archive where run_id = ? "
        "order by loan_id",
        [run],
    )
    pd.testing.assert_frame_equal(predictions, archive[predictions.columns])
    assert "0 scored" in proc.stdout
    flow["snapshots"]["full"] = predictions
    # nothing left for ml.score: the log knows the deployed model scored every row
    out = _py(flow, "ml.score", "--task", TASK).stdout
    assert f"{TASK}: scored 0 of" in out


def test_4_a_second_run_on_unchanged_data_is_not_promoted(flow) -> None:
    before = _deployments(flow["warehouse"])
    out = _py(flow, *TRAIN).stdout
    flow["runs"]["again"] = run = _run_id(out)
    decision = _decisions(flow["warehouse"]).iloc[-1]
    assert decision["challenger_run_id"] == run
    assert decision["deployed_run_id"] == flow["runs"]["full"]
    assert not decision["significant"] and not decision["promoted"]
    assert decision["n_rows"] >= 100 and decision["n_new_rows"] == 0
    assert decision["ci_low"] <= decision["difference"] <= decision["ci_high"]
    assert decision["ci_low"] <= 0 <= decision["ci_high"]
    assert 0 <= decision["p_value"] <= 1
    assert "no significant gain" in decision["reason"]
    pd.testing.assert_frame_equal(_deployments(flow["warehouse"]), before)
    pd.testing.assert_frame_equal(_predictions(flow["warehouse"]), flow["snapshots"]["full"])


def test_5_force_then_rollback_restores_the_predictions_exactly(flow) -> None:
    run = flow["runs"]["again"]
    forced = _py(flow, "ml.promote", "--task", TASK, "--run", run, "--force", "--reason", "drill")
    assert "PROMOTED (force)" in forced.stdout
    assert set(_predictions(flow["warehouse"])["run_id"]) == {run}
    back = _py(flow, "ml.rollback", "--task", TASK)
    assert "deployment 4 is " + flow["runs"]["full"] in back.stdout
    deployed = _deployments(flow["warehouse"])
    assert list(deployed["command"]) == ["ml.train", "ml.promote", "ml.promote", "ml.rollback"]
    assert deployed.iloc[-1]["run_id"] == flow["runs"]["full"]
    pd.testing.assert_frame_equal(_predictions(flow["warehouse"]), flow["snapshots"]["full"])
    forced_row = _decisions(flow["warehouse"]).iloc[-1]
    assert forced_row["mode"] == "force" and forced_row["promoted"]
    assert forced_row["reason"].startswith("drill")


def test_6_a_tampered_artifact_refuses_the_rollback_and_changes_nothing(flow) -> None:
    run = flow["runs"]["again"]
    path = _deployments(flow["warehouse"]).iloc[2]["artifact_path"]
    assert _deployments(flow["warehouse"]).iloc[2]["run_id"] == run
    with open(path, "ab") as f:
        f.write(b"\0")
    before = (flow["warehouse"].read_bytes(), _predictions(flow["warehouse"]))
    proc = _py(flow, "ml.rollback", "--task", TASK, "--to", run, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not match the registry" in lines[0]
    assert flow["warehouse"].read_bytes() == before[0]
    pd.testing.assert_frame_equal(_predictions(flow["warehouse"]), before[1])


def test_7_after_a_batch_the_newest_rows_are_judged_by_the_deployed_artifact(flow) -> None:
    warehouse, workdir = flow["warehouse"], flow["warehouse"].parent
    _py(flow, "scripts.simulate", "--append", "--months", "3", "--seed", "7")
    run_dbt("build", "--selector", "production_build", warehouse=warehouse, workdir=workdir)
    deployed = _deployments(warehouse).iloc[-1]
    out = _py(flow, *TRAIN, "--promote", "never").stdout
    run = _run_id(out)
    decision = _decisions(warehouse).iloc[-1]
    assert decision["challenger_run_id"] == run and decision["mode"] == "never"
    assert decision["deployed_run_id"] == deployed["run_id"]
    # the batch's applications are in the challenger's test split; the deployed model never saw
    # them, so they are compared with its own artifact's predictions
    new_loans = _query(
        warehouse, "select count(*) as n from marts.loan_features where batch_id > 0"
    )["n"].iloc[0]
    assert 0 < decision["n_new_rows"] < new_loans
    assert decision["n_rows"] > decision["n_new_rows"]
    assert not decision["promoted"] and "--promote never" in decision["reason"]
    assert len(_deployments(warehouse)) == 4  # unchanged
