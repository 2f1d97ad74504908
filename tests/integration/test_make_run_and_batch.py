"""The whole flow through the user's own commands on one warehouse: `make run` (batch 0, models
trained on it), then four monthly batches through the steps of `make batch` (the third through
`make batch` itself, with an income shift; the fourth with a concept shift): incremental scoring
counts, drift and realised-performance marts, the monitor's exit codes, the monitoring page.

12,000 customers: a month then brings about 240 new customers, 8,000 orders and 450 loan
applications, enough for a batch's PSI to sit well under the act threshold when nothing moved.
`make run` and the batches share the warehouse because each costs minutes; the tests of `make
run` read a copy taken before the first batch.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import duckdb
import pandas as pd
import pytest

from tests.conftest import run_cli, run_dbt, run_python

pytestmark = pytest.mark.slow  # whole flows: make run, then make batch

CUSTOMERS = 12_000
SEED = 11
#: Features computed from the applicant's annual income: an income shift moves them too.
INCOME_FEATURES = {"annual_income", "loan_to_income", "installment_to_income"}
EXPECTED_TABLES = {
    "raw.customers", "raw.orders", "raw.loans",
    "sim.customer_truth", "sim.loan_truth",
    "staging.stg_customers", "staging.stg_orders", "staging.stg_loans",
    "staging.stg_customers_rejected", "staging.stg_orders_rejected", "staging.stg_loans_rejected",
    "marts.satisfaction_by_age_group", "marts.satisfaction_by_income_bracket",
    "marts.satisfaction_by_age_group_and_income_bracket",
    "marts.default_rate_by_purpose", "marts.default_rate_by_grade",
    "marts.customer_features", "marts.loan_features",
    "ml.model_runs", "ml.customer_satisfaction_predictions", "ml.customer_segment_predictions",
    "ml.loan_repayment_predictions", "marts.customer_scores", "marts.loan_risk",
    "ml.segmentation_runs", "ml.customer_segments", "marts.segment_profiles",
    "ml.feature_importance", "ml.prediction_explanations", "ml.evaluation_predictions",
    "marts.loan_decisions",
}  # fmt: skip


def _query(warehouse, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _batch(warehouse, workdir, drift: str | None = None) -> dict:
    """The steps of `make batch` (without the reports); the monitor's exit code and output."""
    env = {"WAREHOUSE_PATH": str(warehouse)}
    args = ["--append", "--seed", str(SEED)] + (["--drift", drift] if drift else [])
    run_python("scripts.simulate", *args, warehouse=warehouse)
    run_python(
        "scripts.check_quality", "--suite", "raw.customers", "raw.orders", "raw.loans",
        warehouse=warehouse,
    )  # fmt: skip
    run_dbt("build", "--selector", "production_build", warehouse=warehouse, workdir=workdir)
    run_python(
        "scripts.check_quality", "--suite", "marts.customer_features", "marts.loan_features",
        warehouse=warehouse,
    )  # fmt: skip
    scored = run_python("ml.score", warehouse=warehouse)
    run_dbt("build", "--selector", "production_scores", warehouse=warehouse, workdir=workdir)
    monitor = run_python("ml.monitor", warehouse=warehouse, check=False, env_extra=env)
    return {"score": scored.stdout, "monitor": monitor}


def _make(target: str, workdir, warehouse, *args: str) -> subprocess.CompletedProcess[str]:
    """`make TARGET SEED=11 ARGS` on the warehouse, its artifacts and dbt's files in `workdir`."""
    return run_cli(
        ["make", "--no-print-directory", target, f"SEED={SEED}", *args],
        env_extra={
            "WAREHOUSE_PATH": str(warehouse),
            "ARTIFACTS_PATH": str(workdir / "artifacts"),
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
        },
        check=False,
        timeout=1800,  # the whole pipeline: generous, so a busy CI machine is not a failure
    )


@pytest.fixture(scope="module")
def day_two(tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("day_two")
    warehouse = workdir / "warehouse.duckdb"
    run = _make("run", workdir, warehouse, f"CUSTOMERS={CUSTOMERS}", "TRAIN_ARGS=--fast",
                f"REPORTS_DIR={workdir / 'reports_run'}")  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    after_run = workdir / "after_make_run.duckdb"
    shutil.copy(warehouse, after_run)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts")}
    after_training = run_python("ml.score", warehouse=warehouse, env_extra=env).stdout
    batches = {0: {"score": after_training}}
    batches[1] = _batch(warehouse, workdir)
    batches[2] = _batch(warehouse, workdir)
    # the third batch through the user's command, reports included
    reports = workdir / "reports"
    make = _make("batch", workdir, warehouse, "DRIFT=income=1.5", f"REPORTS_DIR={reports}")
    batches[3] = {"make": make}
    batches[4] = _batch(warehouse, workdir, drift="concept=credit_score")
    return {
        "warehouse": warehouse,
        "workdir": workdir,
        "batches": batches,
        "reports": reports,
        "make_run": {"warehouse": after_run, "stdout": run.stdout,
                     "reports": workdir / "reports_run"},
    }  # fmt: skip


# --------------------------------------------------------------------------- make run


def test_make_run_builds_every_contract_table(day_two) -> None:
    run = day_two["make_run"]
    assert "done: warehouse at" in run["stdout"]
    con = duckdb.connect(str(run["warehouse"]), read_only=True)
    try:
        tables = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        missing = EXPECTED_TABLES - tables
        assert not missing, f"missing after make run: {sorted(missing)}"
        for entity in ("customers", "orders", "loans"):
            raw, staged, rejected = (
                con.execute(f"select count(*) from {rel}").fetchall()[0][0]
                for rel in (f"raw.{entity}", f"staging.stg_{entity}",
                            f"staging.stg_{entity}_rejected")
            )  # fmt: skip
            assert raw == staged + rejected > 0, entity
            assert rejected > 0, f"the simulator's mess should reject some {entity}"
        gate_runs = con.execute("select count(distinct run_id) from quality.check_results")
        assert gate_runs.fetchall()[0][0] == 2  # raw suites before dbt, feature suites after
        scored = con.execute(
            "select count(*), count(probability_of_default) from marts.loan_risk"
        ).fetchall()[0]
        assert scored[0] == scored[1] > 0  # every loan has a probability of default
    finally:
        con.close()


def test_make_run_writes_linked_reports_with_at_least_20_distinct_plots(day_two) -> None:
    reports = day_two["make_run"]["reports"]
    index = (reports / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"#]+)"', index)
    expected = {
        "eda/index.html", "segments.html", "models/customer_satisfaction.html",
        "models/customer_segment.html", "models/loan_repayment.html",
    }  # fmt: skip
    assert expected <= set(links)
    images: list[str] = []
    for link in links:
        page = (reports / link).read_text(encoding="utf-8")
        assert "<script" not in page and "http://" not in page and "https://" not in page
        found = re.findall(r'<img src="(data:image/png;base64,[^"]+)" alt="([^"]+)"', page)
        assert found, link
        images += [src for src, _ in found]
    assert len(images) >= 20 and len(set(images)) == len(images), "plots must be distinct"


def test_make_run_reports_each_step(day_two) -> None:
    run = day_two["make_run"]
    assert (run["reports"] / "eda" / "index.html").exists()
    assert "raw rows/s" in run["stdout"]  # simulator summary
    assert "Completed successfully" in run["stdout"]  # dbt build
    assert "PASS" in run["stdout"] and "FAIL" not in run["stdout"]  # quality gate


# --------------------------------------------------------------------------- day two


def _scored(stdout: str, task: str) -> int:
    line = next(line for line in stdout.splitlines() if line.startswith(f"{task}: scored "))
    return int(line.split("scored ")[1].split(" of ")[0].replace(",", ""))


def test_scoring_after_training_scores_nothing(day_two) -> None:
    out = day_two["batches"][0]["score"]
    assert _scored(out, "loan_repayment") == 0
    assert _scored(out, "customer_satisfaction") == 0


def test_each_batch_scores_exactly_its_new_and_changed_rows(day_two) -> None:
    wh = day_two["warehouse"]
    for batch in (1, 2):
        out = day_two["batches"][batch]["score"]
        # a loan is scored once, in the batch it arrived in: its staged rows of the batch
        (loans,) = _query(wh, f"select count(*) from staging.stg_loans where batch_id = {batch}")[0]
        raw, rejected = _query(
            wh,
            f"select (select count(*) from raw.loans where batch_id = {batch}), "
            f"(select count(*) from staging.stg_loans_rejected where batch_id = {batch})",
        )[0]
        assert loans == raw - rejected > 100
        assert _scored(out, "loan_repayment") == loans
        # a customer is scored when they arrive or place an order: staged rows of the batch
        (touched,) = _query(
            wh,
            f"""select count(*) from (
                select customer_id from staging.stg_customers where batch_id = {batch}
                union
                select customer_id from staging.stg_orders where batch_id = {batch}
            ) as touched""",
        )[0]
        assert _scored(out, "customer_satisfaction") == touched > 0
    # every entity has one prediction and the log's latest hash for it
    (missing,) = _query(
        wh,
        "select count(*) from marts.loan_features as f "
        "left join ml.loan_repayment_predictions as p using (loan_id) where p.loan_id is null",
    )[0]
    assert missing == 0


def _drift(wh, task: str, batch: int) -> dict[str, float]:
    rows = _query(
        wh,
        f"select feature, psi from marts.monitoring_drift "
        f"where task = '{task}' and batch_id = {batch} and subject = 'feature'",
    )
    return dict(rows)


def test_monitor_is_quiet_for_two_batches_then_flags_the_income_shift(day_two) -> None:
    wh, batches = day_two["warehouse"], day_two["batches"]
    assert batches[1]["monitor"].returncode == 0, batches[1]["monitor"].stdout
    assert batches[2]["monitor"].returncode == 0, batches[2]["monitor"].stdout
    make = batches[3]["make"]
    assert make.returncode == 2, make.stdout[-3000:]  # make fails because ml.monitor exits 1
    assert "monitor: act -> retrain" in make.stdout
    for batch in (1, 2):
        for task in ("loan_repayment", "customer_satisfaction"):
            drift = _drift(wh, task, batch)
            assert drift and max(drift.values()) < 0.25, (task, batch, drift)
    shifted = _drift(wh, "loan_repayment", 3)
    assert shifted["annual_income"] >= 0.25
    assert max(v for k, v in shifted.items() if k not in INCOME_FEATURES) < 0.25, shifted


def test_a_concept_shift_shows_in_the_realised_metric_not_in_psi(day_two) -> None:
    wh, batches = day_two["warehouse"], day_two["batches"]
    perf = dict(
        (batch, (realised, training, status))
        for batch, realised, training, status in _query(
            wh,
            "select batch_id, realised_metric, training_metric, status "
            "from marts.monitoring_performance where task = 'loan_repayment'",
        )
    )
    for batch in (1, 2):
        realised, training, status = perf[batch]
        assert status in ("stable", "watch") and realised > training - 0.1, perf
    realised, training, status = perf[4]
    assert status == "act" and realised < training - 0.1, perf
    assert max(_drift(wh, "loan_repayment", 4).values()) < 0.25
    assert batches[4]["monitor"].returncode == 1
    assert "realised roc_auc of batch 4" in batches[4]["monitor"].stdout


def test_the_monitoring_page_is_written(day_two) -> None:
    page = day_two["reports"] / "monitoring.html"
    assert page.exists()
    text = page.read_text()
    assert "loan_repayment" in text and "<img" in text
    assert (day_two["reports"] / "index.html").exists()


def test_score_all_rescores_every_row_with_the_same_values(day_two, tmp_path) -> None:
    wh = day_two["warehouse"]
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(wh.read_bytes())
    before = _query(
        copy, "select loan_id, probability from ml.loan_repayment_predictions order by 1"
    )
    out = run_python(
        "ml.score",
        "--task",
        "loan_repayment",
        "--all",
        warehouse=copy,
        env_extra={"ARTIFACTS_PATH": str(day_two["workdir"] / "artifacts")},
    ).stdout
    after = _query(
        copy, "select loan_id, probability from ml.loan_repayment_predictions order by 1"
    )
    assert _scored(out, "loan_repayment") == len(before) == len(after)
    assert [k for k, _ in after] == [k for k, _ in before]
    # the same model on the same values: equal up to the last bits of a sum whose order depends
    # on how many rows one call scores (BLAS blocks)
    assert max(abs(a - b) for (_, a), (_, b) in zip(after, before, strict=True)) < 1e-12


# --------------------------------------------------------------------------- serving

TASK_MARTS = {
    "customer_satisfaction": ("marts.customer_features", "customer_id"),
    "customer_segment": ("marts.customer_features", "customer_id"),
    "loan_repayment": ("marts.loan_features", "loan_id"),
}


def _json_rows(frame: pd.DataFrame) -> list[dict]:
    """The rows as a client sends them: every number to the last bit (pandas' to_json keeps 10
    significant digits), missing values as null, timestamps as text."""
    records = [
        {k: None if pd.api.types.is_scalar(v) and pd.isna(v) else v for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]
    return json.loads(json.dumps(records, default=str))


def test_the_server_answers_every_task_as_the_warehouse_scored_it(day_two) -> None:
    """`ml.serve`'s application on the manifest make run wrote: /v1/tasks lists the three tasks
    (what `ml.serve` reads from the warehouse is the same), and 40 posted rows of each feature
    mart come back with the predictions the batches left in ml.<task>_predictions, to 1e-9 (those
    were scored in one call over every row; these 40 at a time)."""
    from fastapi.testclient import TestClient

    from ml.api.app import Settings, create_app
    from ml.serve import sync_manifest

    manifest = day_two["workdir"] / "artifacts" / "deployments.json"
    client = TestClient(create_app(Settings(manifest=manifest)))
    tasks = client.get("/v1/tasks").json()["tasks"]
    assert [t["task"] for t in tasks] == sorted(TASK_MARTS)
    assert {t["status"] for t in tasks} == {"ok"}
    synced = day_two["workdir"] / "synced.json"
    env = {"WAREHOUSE_PATH": str(day_two["warehouse"]),
           "ARTIFACTS_PATH": str(day_two["workdir"] / "artifacts")}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        sync_manifest(synced)
    read = (json.loads(p.read_text())["tasks"] for p in (manifest, synced))
    assert next(read) == next(read)  # the warehouse's deployments, as training wrote them

    con = duckdb.connect(str(day_two["warehouse"]), read_only=True)
    try:
        for task, (mart, key) in TASK_MARTS.items():
            rows = con.execute(f"select * from {mart} order by {key} desc limit 40").df()
            stored = (
                con.execute(
                    f"select {key}, prediction, probability from ml.{task}_predictions "
                    f"where {key} in (select {key} from {mart} order by {key} desc limit 40)"
                )
                .df()
                .set_index(key)
            )
            body = _json_rows(rows)
            answer = client.post(f"/v1/tasks/{task}/predict", json={"rows": body})
            assert answer.status_code == 200, answer.text
            got = pd.DataFrame(answer.json()["rows"]).set_index("id").loc[stored.index]
            assert len(got) == 40, task
            if task == "customer_satisfaction":  # regression: the value, no probability
                assert (got["prediction"] - stored["prediction"]).abs().max() <= 1e-9
            else:
                assert (got["prediction"].astype(str) == stored["prediction"].astype(str)).all()
                assert (got["probability"] - stored["probability"]).abs().max() <= 1e-9, task
    finally:
        con.close()
