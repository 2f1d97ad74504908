"""ml.train and ml.predict end to end on the tiny warehouse (`--fast` search spaces)."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml import load_model
from ml.core.errors import UserError
from ml.core.tasks import BASE_MODELS, ENSEMBLES
from tests.conftest import DBT_AFTER_TRAINING, run_dbt, run_python

pytestmark = pytest.mark.slow  # whole flows: ml.train and ml.predict on the tiny warehouse

TASKS = {
    "customer_satisfaction": ("marts.customer_features", "customer_id"),
    "customer_segment": ("marts.customer_features", "customer_id"),
    "loan_repayment": ("marts.loan_features", "loan_id"),
}
KINDS = {*BASE_MODELS, *ENSEMBLES}


@pytest.fixture(scope="session")
def trained(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the built warehouse after `ml.train --fast` (artifacts in its own folder)."""
    workdir = tmp_path_factory.mktemp("trained")
    warehouse = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts")}
    proc = run_python("ml.train", "--fast", "--seed", "3", warehouse=warehouse, env_extra=env)
    run_python("ml.segment", "--k-min", "2", "--k-max", "4", warehouse=warehouse)
    run_dbt("build", *DBT_AFTER_TRAINING, warehouse=warehouse, workdir=workdir)
    return {"warehouse": warehouse, "env": env, "stdout": proc.stdout, "workdir": workdir}


def _query(warehouse: Path, sql: str, params=None) -> pd.DataFrame:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def test_every_task_has_six_candidates_and_one_champion(trained) -> None:
    runs = _query(trained["warehouse"], "select * from ml.model_runs")
    runs = runs[runs["task"].isin(list(TASKS))]
    assert runs["run_id"].nunique() == 1
    for task in TASKS:
        rows = runs[runs["task"] == task]
        assert set(rows["model_name"]) == KINDS, task
        assert rows["is_champion"].sum() == 1, task
        metric = rows["primary_metric"].iloc[0]
        assert rows[f"cv_{metric}_mean"].notna().all() and rows[f"cv_{metric}_std"].notna().all()
        assert rows[f"test_{metric}"].notna().all()
        assert rows[f"oracle_{metric}"].notna().all(), "built-in tasks are compared with the truth"
        assert (rows["artifact_sha256"].str.len() == 64).all()
        champion = rows[rows["is_champion"]].iloc[0]
        assert champion["selection_score"] == rows["selection_score"].max()
        assert champion["fit_rows"] == champion["n_train"] + champion["n_val"] + champion["n_test"]
    for task in TASKS:
        champion = runs[(runs["task"] == task) & runs["is_champion"]].iloc[0]
        summary = json.loads(Path(champion["artifact_path"]).with_name("metadata.json").read_text())
        assert summary["champion"] == champion["model_name"]
        assert set(summary["candidates"]) == KINDS
    loans = runs[runs["task"] == "loan_repayment"]
    assert loans["threshold"].between(0, 1).all()
    confusion = json.loads(loans["test_confusion"].iloc[0])
    assert set(confusion) == {"tn", "fp", "fn", "tp"}


def test_fairness_metrics_by_group_and_gaps_for_every_task(trained) -> None:
    rows = _query(trained["warehouse"], "select * from ml.fairness_metrics")
    assert rows["run_id"].nunique() == 1 and set(rows["task"]) == set(TASKS)
    loans = rows[
        (rows["task"] == "loan_repayment") & rows["is_champion"] & (rows["split"] == "test")
    ]
    for attribute in ("age_group", "gender", "region"):
        groups = loans[(loans["attribute"] == attribute) & (loans["kind"] == "group")]
        for metric in ("count", "selection_rate", "true_positive_rate", "false_positive_rate"):
            values = groups.loc[groups["metric"] == metric, "value"]
            assert len(values) >= 2 and values.notna().all(), (attribute, metric)
        counts = groups.loc[groups["metric"] == "count", "value"].sum()
        assert counts == loans.loc[
            (loans["attribute"] == attribute) & (loans["kind"] == "overall")
            & (loans["metric"] == "count"), "value"
        ].iloc[0]  # fmt: skip
        gaps = loans[(loans["attribute"] == attribute) & (loans["kind"] == "gap")]
        assert set(gaps["metric"]) == {
            "demographic_parity_difference", "demographic_parity_ratio",
            "equalized_odds_difference",
        }  # fmt: skip
        ratio = gaps.loc[gaps["metric"] == "demographic_parity_ratio", "value"].iloc[0]
        assert 0 <= ratio <= 1
    satisfaction = rows[rows["task"] == "customer_satisfaction"]
    assert "mean_absolute_error_difference" in set(satisfaction["metric"])


def test_models_learn_something_real(trained) -> None:
    runs = _query(trained["warehouse"], "select * from ml.model_runs where is_champion")
    by_task = runs.set_index("task")
    assert by_task.loc["customer_satisfaction", "test_r2"] > 0.5
    assert by_task.loc["loan_repayment", "test_roc_auc"] > 0.75
    assert by_task.loc["customer_segment", "test_f1"] > 0.5


def test_prediction_tables_cover_every_entity(trained) -> None:
    for task, (relation, id_column) in TASKS.items():
        counts = _query(
            trained["warehouse"],
            f"""
            select
                (select count(*) from {relation}) as entities,
                (select count(*) from ml.{task}_predictions) as predictions,
                (select count(distinct {id_column}) from ml.{task}_predictions) as distinct_ids,
                (select count(*) from ml.{task}_predictions
                 where probability < 0 or probability > 1) as bad_probabilities
            """,
        ).iloc[0]
        assert counts["entities"] == counts["predictions"] == counts["distinct_ids"], task
        assert counts["bad_probabilities"] == 0, task
    segments = _query(trained["warehouse"], "select * from ml.customer_segment_predictions")
    per_class = [c for c in segments.columns if c.startswith("probability_")]
    assert len(per_class) == 4
    np.testing.assert_allclose(segments[per_class].sum(axis=1), 1.0, atol=1e-6)


def test_shap_tables_cover_every_task_and_every_scored_row(trained) -> None:
    wh = trained["warehouse"]
    champions = _query(wh, "select task, run_id, model_name from ml.model_runs where is_champion")
    importance = _query(wh, "select * from ml.feature_importance")
    for task, (relation, id_column) in TASKS.items():
        champion = champions[champions["task"] == task].iloc[0]
        imp = importance[
            (importance["task"] == task) & (importance["run_id"] == champion["run_id"])
        ]
        assert set(imp["model_name"]) == {champion["model_name"]}
        columns = set(_query(wh, f"select * from {relation} limit 0").columns)
        assert set(imp["feature"]) <= columns and len(imp) >= 10, task
        assert sorted(imp["rank"]) == list(range(1, len(imp) + 1))
        assert (imp["mean_abs_shap"] >= 0).all() and imp["mean_abs_shap"].max() > 0
        rows = _query(
            wh,
            f"""
            select e.*, p.prediction, p.probability
            from ml.prediction_explanations e
            join ml.{task}_predictions p on e.entity_id = p.{id_column}::varchar
            where e.task = ?
            """,
            [task],
        )
        scored = _query(wh, f"select count(*) as n from ml.{task}_predictions")["n"].iloc[0]
        assert rows["entity_id"].nunique() == scored, "every scored row is explained"
        per_entity = rows.groupby("entity_id")["rank"].agg(["count", "min", "max"])
        assert (per_entity["count"] <= 10).all() and (per_entity["count"] == 5).all()
        assert (per_entity["min"] == 1).all() and (per_entity["max"] == 5).all()
        assert set(rows["feature"]) <= columns, "named by the relation's columns"
        assert (rows["run_id"] == champion["run_id"]).all()
        # the explained output is the prediction written back (same model, same rows)
        space = rows["output_space"].iloc[0]
        if space == "value":
            expected = rows["prediction"].astype(float)
        elif space == "probability":
            expected = rows["probability"]
        else:
            expected = np.log(rows["probability"] / (1 - rows["probability"]))
        np.testing.assert_allclose(rows["model_output"], expected, atol=1e-4)
        ranked = rows.sort_values(["entity_id", "rank"])
        assert (
            ranked.groupby("entity_id")["shap_value"]
            .apply(lambda v: bool(np.all(np.diff(np.abs(v.to_numpy())) <= 1e-12)))
            .all()
        ), "ranked by |SHAP|"
    segment = _query(wh, "select * from ml.prediction_explanations where task = 'customer_segment'")
    predicted = _query(
        wh,
        "select customer_id::varchar as entity_id, prediction from ml.customer_segment_predictions",
    )
    merged = segment.merge(predicted, on="entity_id")
    assert (merged["explained_class"] == merged["prediction"]).all()


def test_the_shap_sample_holds_every_feature_of_explained_rows(trained) -> None:
    """What the reports draw beeswarm and dependence plots from, stored when training."""
    wh = trained["warehouse"]
    sample = _query(wh, "select * from ml.shap_sample")
    top = _query(wh, "select * from ml.prediction_explanations where rank = 1")
    for task, (relation, _) in TASKS.items():
        rows = sample[sample["task"] == task]
        columns = set(_query(wh, f"select * from {relation} limit 0").columns)
        features = rows["feature"].nunique()
        assert set(rows["feature"]) <= columns and features >= 10, task
        assert len(rows) == rows["entity_id"].nunique() * features
        assert 0 < rows["entity_id"].nunique() <= 1_000
        # every feature of a row: its SHAP values add up to the explained output
        first = top[top["task"] == task].set_index("entity_id")
        totals = rows.groupby("entity_id")["shap_value"].sum()
        expected = first.loc[totals.index, "model_output"] - first.loc[totals.index, "base_value"]
        np.testing.assert_allclose(totals, expected, atol=1e-4)
        assert rows.loc[rows["is_categorical"], "value"].isna().all()
    runs = _query(wh, "select task, class_labels from ml.model_runs where is_champion")
    labels = runs.set_index("task")["class_labels"]
    assert json.loads(labels["customer_segment"]) == sorted(json.loads(labels["customer_segment"]))
    assert pd.isna(labels["loan_repayment"])


def test_evaluation_predictions_hold_every_candidate_on_held_out_rows(trained) -> None:
    wh = trained["warehouse"]
    runs = _query(wh, "select * from ml.model_runs")
    evaluation = _query(wh, "select * from ml.evaluation_predictions")
    for task in TASKS:
        rows = evaluation[evaluation["task"] == task]
        run = runs[(runs["task"] == task) & (runs["run_id"] == rows["run_id"].iloc[0])]
        assert set(rows["model_name"]) == KINDS
        for name, group in rows.groupby("model_name"):
            r = run[run["model_name"] == name].iloc[0]
            assert (group["split"] == "test").sum() == r["n_test"]
            assert (group["split"] == "validation").sum() == r["n_val"]
        champion = run[run["is_champion"]].iloc[0]
        test = rows[(rows["split"] == "test") & (rows["model_name"] == champion["model_name"])]
        if task == "customer_satisfaction":
            residual = test["actual"] - test["predicted"]
            r2 = 1 - (residual**2).sum() / ((test["actual"] - test["actual"].mean()) ** 2).sum()
            assert r2 == pytest.approx(champion["test_r2"], abs=1e-9)
        elif task == "loan_repayment":
            from sklearn.metrics import roc_auc_score

            auc = roc_auc_score(test["actual"], test["predicted"])
            assert auc == pytest.approx(champion["test_roc_auc"], abs=1e-9)
        else:
            assert test["probabilities"].map(len).eq(4).all()
            assert (test["predicted_label"].notna() & test["actual_label"].notna()).all()


def test_marts_over_predictions(trained) -> None:
    counts = _query(
        trained["warehouse"],
        """
        select
            (select count(*) from marts.customer_scores) as scored_customers,
            (select count(*) from marts.customer_features) as customers,
            (select count(predicted_satisfaction) from marts.customer_scores) as with_satisfaction,
            (select count(predicted_segment) from marts.customer_scores) as with_segment,
            (select count(*) from marts.loan_risk) as scored_loans,
            (select count(*) from marts.loan_features) as loans,
            (select count(distinct risk_band) from marts.loan_risk) as bands,
            (select min(expected_loss) from marts.loan_risk) as min_loss
        """,
    ).iloc[0]
    assert counts["scored_customers"] == counts["customers"] == counts["with_satisfaction"]
    assert counts["with_segment"] == counts["customers"]
    assert counts["scored_loans"] == counts["loans"]
    assert counts["bands"] >= 2 and counts["min_loss"] >= 0


def test_loan_decisions_with_adverse_action_reasons(trained) -> None:
    wh = trained["warehouse"]
    decisions = _query(wh, "select * from marts.loan_decisions")
    scored = _query(wh, "select loan_id from ml.loan_repayment_predictions")
    assert decisions["loan_id"].is_unique and set(scored["loan_id"]) == set(decisions["loan_id"])
    assert set(decisions["decision"]) <= {"approve", "review", "decline"}
    assert decisions["decision"].notna().all() and decisions["decision"].nunique() >= 2
    tuned, p = decisions["tuned_threshold"], decisions["probability_of_default"]
    # the cut-offs are derived from the tuned threshold by the dbt vars' default factors
    np.testing.assert_allclose(decisions["approve_below"], 0.5 * tuned, atol=1e-12)
    np.testing.assert_allclose(decisions["decline_at_or_above"], tuned, atol=1e-12)
    expected = [
        "decline" if pi >= d else "approve" if pi < a else "review"
        for pi, a, d in zip(
            p, decisions["approve_below"], decisions["decline_at_or_above"], strict=True
        )
    ]
    assert decisions["decision"].tolist() == expected
    reason = re.compile(r"^[a-z][a-z0-9 ()'-]* \S+ (raises|lowers) risk$")
    for column in ("reason_1", "reason_2", "reason_3"):
        rows = decisions[decisions[column].notna()]
        for text, decision in zip(rows[column], rows["decision"], strict=True):
            assert reason.match(text), text
            assert text.endswith("lowers risk" if decision == "approve" else "raises risk"), text
            assert not re.search(r" -?\d+\.(\d{3,}|\d*0) (raises|lowers) risk$", text), text
    assert decisions["reason_1"].notna().mean() > 0.8
    assert (decisions["reason_2"].isna() | decisions["reason_1"].notna()).all()
    assert (decisions["reason_3"].isna() | decisions["reason_2"].notna()).all()
    # plain words, not column names: "debt-to-income 0.52 raises risk"
    words = " ".join(decisions["reason_1"].dropna())
    assert "debt_to_income" not in words and "credit_score" not in words


def test_marts_over_predictions_are_described(trained) -> None:
    manifest = json.loads((trained["workdir"] / "target" / "manifest.json").read_text())
    con = duckdb.connect(str(trained["warehouse"]), read_only=True)
    try:
        nodes = [
            n for n in [*manifest["nodes"].values(), *manifest["sources"].values()]
            if "ml_scores" in n.get("tags", []) or n.get("source_name", "").startswith("ml")
        ]  # fmt: skip
        assert len(nodes) >= 8
        for node in nodes:
            assert node["description"].strip(), node["name"]
            if node.get("config", {}).get("materialized") == "ephemeral":
                continue  # a CTE inside its children: no relation to describe
            relation = f"{node['schema']}.{node.get('identifier') or node['name']}"
            built = [r[0] for r in con.execute(f"describe {relation}").fetchall()]
            documented = {c for c, v in node["columns"].items() if v["description"].strip()}
            assert set(built) <= documented, (relation, set(built) - documented)
    finally:
        con.close()


def test_predict_scores_fifty_rows_from_a_csv(trained, tmp_path) -> None:
    rows = _query(
        trained["warehouse"], "select * from marts.loan_features order by loan_id limit 50"
    )
    rows["an_extra_column"] = "ignored"
    rows.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "scored.csv"
    proc = run_python(
        "ml.predict", "--task", "loan_repayment", "--input", str(tmp_path / "new.csv"),
        "--output", str(out), warehouse=trained["warehouse"], env_extra=trained["env"],
    )  # fmt: skip
    assert "scored 50 rows" in proc.stdout
    scored = pd.read_csv(out)
    assert len(scored) == 50 and list(scored["loan_id"]) == list(rows["loan_id"])
    assert scored["probability"].between(0, 1).all()
    assert set(scored["prediction"]) <= {0, 1}
    # the same rows scored by training match (same champion, same features)
    stored = _query(
        trained["warehouse"],
        "select loan_id, probability from ml.loan_repayment_predictions order by loan_id limit 50",
    )
    np.testing.assert_allclose(scored["probability"], stored["probability"], atol=1e-6)


def test_predict_refuses_a_csv_missing_a_column(trained, tmp_path) -> None:
    rows = _query(trained["warehouse"], "select * from marts.loan_features limit 20")
    rows.drop(columns=["debt_to_income"]).to_csv(tmp_path / "bad.csv", index=False)
    proc = run_python(
        "ml.predict", "--task", "loan_repayment", "--input", str(tmp_path / "bad.csv"),
        "--output", str(tmp_path / "o.csv"), warehouse=trained["warehouse"],
        env_extra=trained["env"], check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "debt_to_income" in lines[0], proc.stderr
    assert not (tmp_path / "o.csv").exists()


def test_python_api_and_type_coercion(trained, monkeypatch) -> None:
    monkeypatch.setenv("WAREHOUSE_PATH", str(trained["warehouse"]))
    model = load_model("customer_satisfaction")
    rows = _query(trained["warehouse"], "select * from marts.customer_features limit 5")
    rows["age"] = rows["age"].astype(str)  # numbers as text are coerced
    rows.loc[0, "region"] = "atlantis"  # an unseen category is handled
    scored = model.predict(rows)
    assert len(scored) == 5 and scored["prediction"].notna().all()
    rows["age"] = "not a number"
    with pytest.raises(UserError, match="age"):
        model.predict(rows)


def _champion_path(trained, task: str) -> Path:
    row = _query(
        trained["warehouse"],
        "select artifact_path from ml.model_runs where task = ? and is_champion",
        [task],
    )
    return Path(row["artifact_path"].iloc[0])


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_tampered_or_foreign_artifacts_are_refused_before_unpickling(trained, tmp_path) -> None:
    path = _champion_path(trained, "customer_segment")
    original = path.read_bytes()
    marker = tmp_path / "pwned"
    rows = _query(trained["warehouse"], "select * from marts.customer_features limit 5")
    rows.to_csv(tmp_path / "in.csv", index=False)
    args = ["ml.predict", "--task", "customer_segment", "--input", str(tmp_path / "in.csv"),
            "--output", str(tmp_path / "o.csv")]  # fmt: skip
    try:
        flipped = bytearray(original)
        flipped[len(flipped) // 2] ^= 0xFF
        path.write_bytes(bytes(flipped))
        proc = run_python(
            *args, warehouse=trained["warehouse"], env_extra=trained["env"], check=False
        )
        assert proc.returncode == 2 and "sha256" in proc.stderr, proc.stderr
        path.write_bytes(pickle.dumps(_Exploit(str(marker))))
        proc = run_python(
            *args, warehouse=trained["warehouse"], env_extra=trained["env"], check=False
        )
        assert proc.returncode == 2 and "refusing" in proc.stderr, proc.stderr
        assert not marker.exists(), "the foreign pickle was executed"
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        path.write_bytes(original)


def test_bring_your_own_csv(trained, tmp_path) -> None:
    """load_csv + train + predict on a CSV the project has never seen."""
    rng = np.random.default_rng(5)
    n = 400
    income = rng.normal(50, 15, n).round(1)
    kind = rng.choice(["Urban", "Rural", "Semi Urban"], n)
    score = 0.08 * (income - 50) + (kind == "Urban") * 0.8 + rng.normal(0, 0.7, n)
    frame = pd.DataFrame({
        "Applicant ID": [f"A{i:04d}" for i in range(n)],
        "Income (k$)": income,
        "Property.Area": kind,
        "Dependents": rng.choice(["0", "1", "2", "3+"], n),
        "Branch": rng.choice([f"B{i:02d}" for i in range(40)], n),  # target-encoded
        "Approved?": np.where(score > 0.3, "Y", "N"),
    })  # fmt: skip
    frame.loc[rng.choice(n, 20, replace=False), "Income (k$)"] = np.nan
    frame.to_csv(tmp_path / "applications.csv", index=False, sep=";")
    wh, env = trained["warehouse"], trained["env"]
    run_python("scripts.load_csv", str(tmp_path / "applications.csv"), "--table", "raw.applications",
               warehouse=wh)  # fmt: skip
    proc = run_python("ml.train", "--table", "raw.applications", "--target", "Approved?",
                      "--id", "Applicant ID", "--fast", "--time-budget", "4",
                      warehouse=wh, env_extra=env)  # fmt: skip
    assert '"Y": 1' in proc.stdout and '"N": 0' in proc.stdout  # the mapping is reported
    assert "trials" in proc.stdout  # the leaderboard's tuning column
    runs = _query(wh, "select * from ml.model_runs where task = 'applications'")
    assert set(runs["model_name"]) == KINDS and runs["is_champion"].sum() == 1
    # the budgeted search ran for the searched candidates, which shared the budget
    params = dict(zip(runs["model_name"], runs["params"], strict=True))
    searches = {m: json.loads(p).get("search") for m, p in params.items()}
    assert {m for m, found in searches.items() if found} == {
        "linear",
        "tree",
        "xgboost",
        "lightgbm",
    }
    assert sum(found["budget_seconds"] for found in searches.values() if found) == pytest.approx(4)
    assert all(found["trials"] >= 1 for found in searches.values() if found)
    assert json.loads(runs["target_mapping"].iloc[0]) == {"Y": 1, "N": 0}
    assert runs.loc[runs["is_champion"], "test_roc_auc"].iloc[0] > 0.75
    preds = _query(wh, "select * from ml.applications_predictions")
    assert len(preds) == n and preds["Applicant ID"].is_unique
    frame.drop(columns=["Approved?"]).head(30).to_csv(tmp_path / "new.csv", index=False)
    run_python("ml.predict", "--task", "applications", "--input", str(tmp_path / "new.csv"),
               "--write-table", "ml.application_scores", warehouse=wh, env_extra=env)  # fmt: skip
    scores = _query(wh, "select * from ml.application_scores")
    assert len(scores) == 30 and scores["probability"].between(0, 1).all()
    # explanations of a bring-your-own task are named by the CSV's own headers, and the
    # built-in tasks' explanations are kept
    explained = _query(wh, "select task, feature, entity_id from ml.prediction_explanations")
    mine = explained[explained["task"] == "applications"]
    assert mine["entity_id"].nunique() == n
    assert set(mine["feature"]) <= {"Income (k$)", "Property.Area", "Dependents", "Branch"}
    assert "Income (k$)" in set(mine["feature"])
    assert set(TASKS) <= set(explained["task"])


def test_failed_training_changes_nothing(trained) -> None:
    before = _query(trained["warehouse"], "select count(*) as n from ml.model_runs")["n"].iloc[0]
    proc = run_python("ml.train", "--table", "raw.nope", "--target", "x", "--fast",
                      warehouse=trained["warehouse"], env_extra=trained["env"], check=False)  # fmt: skip
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = run_python("ml.train", "--table", 'x"; drop table ml.model_runs; --', "--target", "x",
                      warehouse=trained["warehouse"], env_extra=trained["env"], check=False)  # fmt: skip
    assert proc.returncode == 2 and "invalid table name" in proc.stderr
    after = _query(trained["warehouse"], "select count(*) as n from ml.model_runs")["n"].iloc[0]
    assert before == after
    leftovers = _query(
        trained["warehouse"],
        "select table_name from information_schema.tables where table_name like '__tmp_%'",
    )
    assert leftovers.empty
