"""The whole flow through the user's own command, `make run`, on a tiny warehouse."""

from __future__ import annotations

import re

import duckdb
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow  # whole flows: make run itself

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


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("make_run")
    warehouse = workdir / "warehouse.duckdb"
    proc = run_cli(
        [
            "make",
            "--no-print-directory",
            "run",
            "CUSTOMERS=2000",
            "SEED=3",
            "TRAIN_ARGS=--fast",
            f"REPORTS_DIR={workdir / 'reports'}",
        ],  # fmt: skip
        env_extra={
            "WAREHOUSE_PATH": str(warehouse),
            "ARTIFACTS_PATH": str(workdir / "artifacts"),
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
        },
        timeout=1800,  # the whole pipeline: generous, so a busy CI machine is not a failure
    )
    return warehouse, proc


def test_make_run_builds_every_contract_table(make_run) -> None:
    warehouse, proc = make_run
    assert "done: warehouse at" in proc.stdout
    con = duckdb.connect(str(warehouse), read_only=True)
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


def test_make_run_writes_linked_reports_with_at_least_20_distinct_plots(make_run) -> None:
    warehouse, _ = make_run
    reports = warehouse.parent / "reports"
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


def test_make_run_reports_each_step(make_run) -> None:
    warehouse, proc = make_run
    assert (warehouse.parent / "reports" / "eda" / "index.html").exists()
    assert "raw rows/s" in proc.stdout  # simulator summary
    assert "Completed successfully" in proc.stdout  # dbt build
    assert "PASS" in proc.stdout and "FAIL" not in proc.stdout  # quality gate
