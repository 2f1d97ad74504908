"""Day two on one warehouse: trained on batch 0, then four monthly batches through the same steps
as `make batch` (the third through `make batch` itself, with an income shift; the fourth with a
concept shift): incremental scoring counts, drift and realised-performance marts, the monitor's
exit codes, the monitoring page.

12,000 customers: a month then brings about 240 new customers, 8,000 orders and 450 loan
applications, enough for a batch's PSI to sit well under the act threshold when nothing moved.
"""

from __future__ import annotations

import duckdb
import pytest

from tests.conftest import run_cli, run_dbt, run_python

pytestmark = pytest.mark.slow

CUSTOMERS = 12_000
SEED = 11
#: Features computed from the applicant's annual income: an income shift moves them too.
INCOME_FEATURES = {"annual_income", "loan_to_income", "installment_to_income"}


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


@pytest.fixture(scope="module")
def day_two(tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("day_two")
    warehouse = workdir / "warehouse.duckdb"
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts")}
    run_python("scripts.simulate", "--customers", str(CUSTOMERS), "--seed", str(SEED),
               warehouse=warehouse)  # fmt: skip
    run_dbt("build", "--selector", "production_build", "--full-refresh", warehouse=warehouse,
            workdir=workdir)  # fmt: skip
    run_python("ml.train", "--fast", "--skip-gate", "--seed", str(SEED), warehouse=warehouse,
               env_extra=env)  # fmt: skip
    run_python("ml.segment", "--seed", str(SEED), "--skip-gate", warehouse=warehouse)
    run_dbt("build", "--selector", "production_scores", warehouse=warehouse, workdir=workdir)
    after_training = run_python("ml.score", warehouse=warehouse, env_extra=env).stdout
    batches = {0: {"score": after_training}}
    batches[1] = _batch(warehouse, workdir)
    batches[2] = _batch(warehouse, workdir)
    # the third batch through the user's command, reports included
    reports = workdir / "reports"
    make = run_cli(
        [
            "make",
            "--no-print-directory",
            "batch",
            f"SEED={SEED}",
            "DRIFT=income=1.5",
            f"REPORTS_DIR={reports}",
        ],  # fmt: skip
        env_extra={
            "WAREHOUSE_PATH": str(warehouse),
            "DBT_TARGET_PATH": str(workdir / "target"),
            "DBT_LOG_PATH": str(workdir / "logs"),
            **env,
        },
        check=False,
        timeout=1800,
    )
    batches[3] = {"make": make}
    batches[4] = _batch(warehouse, workdir, drift="concept=credit_score")
    return {"warehouse": warehouse, "workdir": workdir, "batches": batches, "reports": reports}


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
    assert make.returncode != 0, make.stdout[-3000:]  # make fails because ml.monitor exits 1
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
