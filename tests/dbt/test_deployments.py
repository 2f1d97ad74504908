"""Model governance in the marts: marts.loan_decisions names the deployment of the model that made
each prediction, and the monitoring marts watch each task's current deployment (its ml.deployments
row of the highest deployment_id), not the latest run's champion.

ml.train is not run: a copy of the built warehouse gets fabricated ml.* tables of the
loan_repayment task (predictions, deployments, a promotion decision, reference profiles and score
log of three runs), then dbt builds the nodes over them. Every test here runs dbt, so the module
is marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_dbt

pytestmark = pytest.mark.slow

#: Three ml.train runs, oldest first. Every run's loan_repayment champion is called `selection`
#: (as real runs often do), and a run id is shared by every task the run trained.
RUN_A, RUN_B, RUN_C = (
    "20260101T000000Z-aaaaaa",
    "20260102T000000Z-bbbbbb",
    "20260103T000000Z-cccccc",
)
CHAMPION = "selection"
#: The feature each run's reference profile holds (with the score): what shows which profile the
#: drift mart used.
PROFILED = {RUN_A: "debt_to_income", RUN_B: "credit_score", RUN_C: "interest_rate"}
#: Edges of the three bins of each profiled value (None: open end).
EDGES = {
    "debt_to_income": (None, 0.2, 0.4, None),
    "credit_score": (None, 600.0, 700.0, None),
    "interest_rate": (None, 10.0, 15.0, None),
    "score": (None, 0.3, 0.6, None),
}

#: What dbt builds: the views over the fabricated tables and the marts over them, with their
#: data tests and unit tests (the after_training selector also wants the tables of other tasks).
SELECTION = (
    "--select",
    "source:ml.deployments",
    "source:ml.promotion_decisions",
    "source:ml.loan_repayment_predictions",
    "stg_ml__loan_repayment_predictions",
    "stg_ml__prediction_explanations",
    "stg_ml__deployments",
    "stg_ml__promotion_decisions",
    "stg_ml__reference_profiles",
    "stg_ml__score_log",
    "int_deployments_current",
    "loan_decisions",
    "monitoring_drift",
    "monitoring_performance",
)

DEPLOYMENT = """
    insert into ml.deployments values
        (?, ?, ?, ?, '/artifacts/' || ? || '.joblib', repeat('0', 64), cast(? as timestamp), ?, ?, ?)
"""


def fabricate(con: duckdb.DuckDBPyConnection) -> None:
    """The ml.* tables of a warehouse where run A's champion was deployed first, run B's was
    promoted over it, and run C's champion (trained last) was not promoted."""
    con.execute("create schema ml")
    con.execute("""
        create table ml.loan_repayment_predictions (
            loan_id bigint, prediction bigint, probability double, threshold double,
            run_id varchar, model_name varchar, scored_at timestamp)""")
    con.execute("""
        create table ml.prediction_explanations (
            task varchar, run_id varchar, model_name varchar, entity_id varchar, rank integer,
            feature varchar, feature_value varchar, shap_value double, base_value double,
            model_output double, output_space varchar, explained_class varchar)""")
    con.execute("""
        create table ml.deployments (
            task varchar, deployment_id bigint, run_id varchar, model_name varchar,
            artifact_path varchar, artifact_sha256 varchar, deployed_at timestamp,
            command varchar, reason varchar, previous_deployment_id bigint)""")
    deployments = [
        ("loan_repayment", 1, RUN_A, "2026-01-01 09:00:00", "ml.train", "first run", None),
        ("loan_repayment", 2, RUN_B, "2026-01-02 09:00:00", "ml.train", "significant gain", 1),
        # the same run and model name deployed for another task, later and with a higher id
        ("customer_satisfaction", 1, RUN_A, "2026-01-01 09:00:00", "ml.train", "first run", None),
        ("customer_satisfaction", 2, RUN_A, "2026-01-01 12:00:00", "ml.promote", "by hand", 1),
        ("customer_satisfaction", 3, RUN_B, "2026-01-04 09:00:00", "ml.train", "gain", 2),
    ]
    for task, number, run, at, command, reason, previous in deployments:
        model = "linear" if command == "ml.promote" else CHAMPION
        con.execute(DEPLOYMENT, [task, number, run, model, run, at, command, reason, previous])
    con.execute(f"""
        create table ml.promotion_decisions as
        select
            'loan_repayment' as task, timestamp '2026-01-02 09:00:00' as decided_at,
            '{RUN_B}' as challenger_run_id, '{CHAMPION}' as challenger_model,
            '{RUN_A}' as deployed_run_id, '{CHAMPION}' as deployed_model,
            cast(1 as bigint) as deployed_deployment_id, 'auto' as mode, 'roc_auc' as metric,
            'DeLong' as test, 0.05 as alpha, cast(400 as bigint) as n_rows,
            cast(0 as bigint) as n_new_rows, 0.90 as challenger_score, 0.85 as deployed_score,
            0.05 as difference, 0.01 as ci_low, 0.09 as ci_high, 0.01 as p_value,
            true as significant, true as quality_passed, true as fairness_passed,
            'report only: no attribute gated' as fairness_checks, true as promoted,
            'significant gain; the quality and fairness gates passed' as reason,
            cast(2 as bigint) as deployment_id""")
    # every run's champion is profiled (deployed or not); run C's profile is the newest
    profiles = []
    for day, (run, feature) in enumerate(PROFILED.items(), start=1):
        for subject, name in (("feature", feature), ("score", "score")):
            edges = ["null" if edge is None else str(edge) for edge in EDGES[name]]
            for bin_number in range(3):
                profiles.append(
                    f"('loan_repayment', '{run}', '{CHAMPION}', 'marts.loan_features', 'loan_id', "
                    f"'defaulted', 'binary', 'roc_auc', 0.85, '{subject}', '{name}', 'numeric', "
                    f"{bin_number}, {edges[bin_number]}, {edges[bin_number + 1]}, null, "
                    "0.3333, 1000, 0.0, 'arrivals', "
                    f"null, timestamp '2026-01-0{day} 08:00:00')"
                )
    con.execute("""
        create table ml.reference_profiles (
            task varchar, run_id varchar, model_name varchar, relation varchar,
            id_column varchar, target varchar, problem varchar, primary_metric varchar,
            training_metric double, subject varchar, feature varchar, kind varchar, bin bigint,
            lower double, upper double, category varchar, share double, rows bigint,
            missing_share double, population varchar, trained_through_batch bigint,
            created_at timestamp)""")
    con.execute(f"insert into ml.reference_profiles values {', '.join(profiles)}")
    # every run's champion scored every loan (run C's scores are the newest)
    con.execute("""
        create table ml.score_log (
            task varchar, entity_id varchar, batch_id integer, feature_hash varchar,
            score double, predicted_label varchar, run_id varchar, model_name varchar,
            scored_by varchar, scored_at timestamp)""")
    for day, run in enumerate(PROFILED, start=1):
        con.execute(
            f"""
            insert into ml.score_log
            select
                'loan_repayment', cast(loan_id as varchar), batch_id, 'hash',
                (loan_id * {day * 37} % 100) / 100.0, null, ?, ?, 'ml.train',
                timestamp '2026-01-0{day} 08:00:00'
            from marts.loan_features""",
            [run, CHAMPION],
        )
    write_predictions(con, RUN_B)


def write_predictions(con: duckdb.DuckDBPyConnection, run: str) -> None:
    """Replace ml.loan_repayment_predictions with the predictions of `run`'s champion."""
    con.execute("delete from ml.loan_repayment_predictions")
    con.execute(
        """
        insert into ml.loan_repayment_predictions
        select
            loan_id,
            case when (loan_id * 37 % 100) / 100.0 >= 0.3 then 1 else 0 end,
            (loan_id * 37 % 100) / 100.0, 0.3, ?, ?, timestamp '2026-01-02 09:00:00'
        from marts.loan_features""",
        [run, CHAMPION],
    )


def build(warehouse: Path, workdir: Path) -> dict[str, str]:
    """dbt build of SELECTION; the status of every node it ran, all of them passing."""
    run_dbt("build", *SELECTION, warehouse=warehouse, workdir=workdir)
    results = json.loads((workdir / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    return statuses


def marts(warehouse: Path) -> tuple[list[tuple], list[tuple], set[str]]:
    """(loan_decisions' distinct deployments, monitoring_performance's loan_repayment rows,
    the features monitoring_drift measured for loan_repayment)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        decided = con.execute("""
            select distinct run_id, model_name, deployment_id, cast(deployed_at as varchar),
                count(*) over () = count(probability_of_default) over ()
            from marts.loan_decisions""").fetchall()
        performance = con.execute("""
            select distinct deployment_id, run_id, model_name
            from marts.monitoring_performance
            where task = 'loan_repayment'""").fetchall()
        drifted = {
            r[0]
            for r in con.execute(
                "select distinct feature from marts.monitoring_drift where task = 'loan_repayment'"
            ).fetchall()
        }
    return decided, performance, drifted


def test_decisions_and_monitoring_follow_the_deployments(built_copy, tmp_path):
    with duckdb.connect(str(built_copy)) as con:
        fabricate(con)
    statuses = build(built_copy, tmp_path)
    ran = "\n".join(statuses)  # unique ids: test.<package>.<name>[.<hash>], unit_test...
    for node in (
        "test.predictive_warehouse.assert_loan_decisions_name_the_deployment_of_their_prediction",
        "unit_test.predictive_warehouse.loan_decisions.loan_decision_names_the_deployment_of_its",
        "unit_test.predictive_warehouse.int_deployments_current.current_deployment_is_the_highest",
        ".relationships_loan_decisions_deployment_id__deployment_id__ref_stg_ml__deployments_.",
        ".not_null_loan_decisions_deployment_id.",
        ".relationships_monitoring_performance_deployment_id__",
        ".relationships_stg_ml__promotion_decisions_deployment_id__",
        ".source_unique_combination_of_columns_ml_deployments_task__deployment_id.",
    ):
        assert node in ran, node

    decided, performance, drifted = marts(built_copy)
    # run B's deployment (2), not run A's (1) nor customer_satisfaction's of run B (3)
    assert decided == [(RUN_B, CHAMPION, 2, "2026-01-02 09:00:00", True)]
    # the current deployment (run B), not the newest profile (run C, never promoted)
    assert performance == [(2, RUN_B, CHAMPION)]
    assert drifted == {PROFILED[RUN_B], "score"}

    # ml.rollback to run A: a third deployment; the predictions are run A's again
    with duckdb.connect(str(built_copy)) as con:
        con.execute(
            DEPLOYMENT,
            ["loan_repayment", 3, RUN_A, CHAMPION, RUN_A, "2026-01-05 09:00:00",
             "ml.rollback", "rolled back", 2],
        )  # fmt: skip
        write_predictions(con, RUN_A)
    build(built_copy, tmp_path)
    decided, performance, drifted = marts(built_copy)
    # run A's latest deployment (3), not its first (1)
    assert decided == [(RUN_A, CHAMPION, 3, "2026-01-05 09:00:00", True)]
    assert performance == [(3, RUN_A, CHAMPION)]
    assert drifted == {PROFILED[RUN_A], "score"}
