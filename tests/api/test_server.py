"""The HTTP API and the page on a tiny warehouse with a trained, deployed loan model: answers
equal `ml.predict` and `marts.loan_decisions`, refusals name the field, the key is checked, a
promotion and a rollback reach a running server, and the page works in Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ml.api.app import Settings, create_app
from ml.api.live import LiveModels
from tests.conftest import ROOT, run_dbt, run_python

pytestmark = pytest.mark.slow  # trains a model and starts servers

TASK = "loan_repayment"
ROWS = 50
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def deployed(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the tiny warehouse with loan_repayment trained (--fast) and deployed, marts.loan_decisions
    built, and 50 rows of marts.loan_features as JSON."""
    workdir = tmp_path_factory.mktemp("served")
    warehouse = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts"), "WAREHOUSE_PATH": str(warehouse)}
    run_python(
        "ml.train", "--fast", "--task", TASK, "--seed", "3", warehouse=warehouse, env_extra=env
    )
    run_dbt("run", "--select", "+loan_decisions", warehouse=warehouse, workdir=workdir)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        features = con.execute(
            f"select * from marts.loan_features order by loan_id limit {ROWS}"
        ).df()
        decisions = con.execute("select * from marts.loan_decisions order by loan_id").df()
        run_id = con.execute(
            "select run_id from ml.model_runs where task = ? and is_champion", [TASK]
        ).fetchone()[0]
    finally:
        con.close()
    rows = json.loads(features.to_json(orient="records", date_format="iso"))
    return {
        "warehouse": warehouse,
        "workdir": workdir,
        "env": env,
        "manifest": workdir / "artifacts" / "deployments.json",
        "features": features,
        "rows": rows,
        "decisions": decisions.set_index("loan_id"),
        "run_id": run_id,
    }


@pytest.fixture()
def client(deployed) -> TestClient:
    return TestClient(create_app(Settings(manifest=deployed["manifest"], max_rows=200)))


def _predict(client: TestClient, rows, **params) -> httpx.Response:
    return client.post(f"/v1/tasks/{TASK}/predict", json={"rows": rows}, params=params)


def test_tasks_list_the_deployed_model_with_its_contract(client, deployed) -> None:
    answer = client.get("/v1/tasks")
    assert answer.status_code == 200
    (task,) = answer.json()["tasks"]
    assert task["task"] == TASK and task["status"] == "ok"
    assert task["deployment"]["deployment_id"] == 1
    assert task["deployment"]["run_id"] == deployed["run_id"]
    assert task["metrics"]["test"]["roc_auc"] > 0.6
    fields = {f["name"]: f for f in task["input"]["fields"]}
    assert fields["credit_score"]["kind"] in ("number", "integer")
    assert fields["credit_score"]["min"] <= fields["credit_score"]["median"]
    assert fields["credit_score"]["median"] <= fields["credit_score"]["max"]
    assert "A" in fields["grade"]["categories"]
    assert 0 < task["decision"]["approve_below"] <= task["decision"]["decline_at_or_above"] < 1
    assert "xgboost" in task["candidates"]


def test_fifty_rows_equal_ml_predict_and_the_loan_decisions_mart(client, deployed) -> None:
    answer = _predict(client, deployed["rows"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"]["deployed"] and body["model"]["deployment_id"] == 1
    got = pd.DataFrame(body["rows"]).set_index("id")
    out = deployed["workdir"] / "scored.csv"
    run_python(
        "ml.predict", "--task", TASK, "--table", "marts.loan_features", "--output", str(out),
        warehouse=deployed["warehouse"], env_extra=deployed["env"],
    )  # fmt: skip
    expected = pd.read_csv(out).set_index("loan_id").loc[got.index]
    assert len(got) == ROWS
    assert (got["probability"] - expected["probability"]).abs().max() <= 1e-9
    assert (got["prediction"] == expected["prediction"]).all()
    mart = deployed["decisions"].loc[got.index]
    assert (got["decision"] == mart["decision"]).all()
    for loan_id, answer_row in got.iterrows():
        stored = [r for r in mart.loc[loan_id, ["reason_1", "reason_2", "reason_3"]] if pd.notna(r)]
        assert answer_row["reasons"] == stored, loan_id
    assert got["reasons"].map(len).sum() > 0


def test_refusals_name_the_field(client, deployed) -> None:
    row = dict(deployed["rows"][0])
    missing = {k: v for k, v in row.items() if k != "annual_income"}
    answer = _predict(client, [missing])
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "rows", 0, "annual_income"]
    answer = _predict(client, [row, {**row, "credit_score": "abc"}])
    assert answer.status_code == 422
    (error,) = answer.json()["detail"]
    assert error["loc"] == ["body", "rows", 1, "credit_score"] and "number" in error["msg"]
    too_many = _predict(client, [row] * 201)
    assert too_many.status_code == 413 and "200" in too_many.json()["detail"]
    assert client.post(f"/v1/tasks/{TASK}/predict", content=b"{not json").status_code == 422
    assert _predict(client, []).status_code == 422
    assert client.post("/v1/tasks/nope/predict", json={"rows": [row]}).status_code == 404
    small = TestClient(create_app(Settings(manifest=deployed["manifest"], max_body_bytes=1000)))
    big = small.post(f"/v1/tasks/{TASK}/predict", json={"rows": [row] * 10})
    assert big.status_code == 413 and "bytes" in big.json()["detail"]


def test_a_pickle_in_the_body_is_data_not_code(client, deployed) -> None:
    row = {**deployed["rows"][0], "grade": "cos\nsystem\n(S'touch /tmp/pwned'\ntR."}
    answer = _predict(client, [row])
    assert answer.status_code == 200  # an unseen category, scored as infrequent
    assert not Path("/tmp/pwned").exists()


def test_a_candidate_of_the_deployed_run_by_name(client, deployed) -> None:
    answer = _predict(client, deployed["rows"][:5], model="xgboost")
    assert answer.status_code == 200
    assert answer.json()["model"] == {**answer.json()["model"], "model_name": "xgboost",
                                      "deployed": False, "deployment_id": None}  # fmt: skip
    assert _predict(client, deployed["rows"][:1], model="nope").status_code == 404


def test_the_api_key(deployed) -> None:
    keyed = TestClient(create_app(Settings(manifest=deployed["manifest"], api_key="s3cret")))
    assert keyed.get("/v1/tasks").status_code == 401
    assert keyed.get("/v1/tasks", headers={"X-API-Key": "wrong"}).status_code == 401
    assert keyed.get("/v1/tasks", headers={"X-API-Key": "s3cret"}).status_code == 200
    assert keyed.get("/healthz").status_code == 200  # health and the page need no key
    assert keyed.get("/").status_code == 200


def test_a_changed_artifact_makes_the_task_unavailable(deployed, tmp_path) -> None:
    manifest = json.loads(deployed["manifest"].read_text())
    manifest["tasks"][TASK]["artifact_sha256"] = "0" * 64
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps(manifest))
    tampered = TestClient(create_app(Settings(manifest=path)))
    answer = _predict(tampered, deployed["rows"][:1])
    assert answer.status_code == 503 and "sha256" in answer.json()["detail"]
    assert tampered.get("/healthz").status_code == 503


def test_the_openapi_page_documents_the_rows(client) -> None:
    schema = client.get("/openapi.json").json()
    assert "LoanRepaymentRow" in schema["components"]["schemas"]
    row = schema["components"]["schemas"]["LoanRepaymentRow"]
    assert "credit_score" in row["properties"] and "credit_score" in row["required"]
    page = client.get("/docs")
    assert page.status_code == 200 and "/swagger/swagger-ui-bundle.js" in page.text
    assert client.get("/swagger/swagger-ui-bundle.js").status_code == 200


# --------------------------------------------------------------------------- a real server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m ml.serve` in a subprocess, until stopped."""

    def __init__(self, deployed: dict, *args: str, key: str | None = None):
        self.port = _free_port()
        env = {**os.environ, **deployed["env"], "TF_CPP_MIN_LOG_LEVEL": "3"}
        env.pop("SERVE_API_KEY", None)
        if key is not None:
            env["SERVE_API_KEY"] = key
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ml.serve", "--port", str(self.port), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, timeout: float = 120) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ml.serve exited {self.proc.returncode}: {self.output()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"ml.serve did not answer in {timeout}s: {self.output()}")

    def output(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        out, err = self.proc.communicate(timeout=30)
        return out[-2000:] + err[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture()
def server(deployed):
    running = Server(deployed).wait()
    yield running
    running.stop()


def test_elsewhere_than_loopback_needs_a_key(deployed) -> None:
    refused = Server(deployed, "--host", "0.0.0.0")
    assert refused.proc.wait(timeout=120) == 2
    assert "SERVE_API_KEY" in refused.output()
    keyed = Server(deployed, "--host", "0.0.0.0", key="s3cret").wait()
    try:
        url = f"{keyed.url}/v1/tasks"
        assert httpx.get(url, headers={"X-API-Key": "wrong"}).status_code == 401
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"X-API-Key": "s3cret"}).status_code == 200
    finally:
        keyed.stop()


def test_a_promotion_and_a_rollback_reach_the_running_server(server, deployed) -> None:
    rows = deployed["rows"][:20]

    def ask() -> dict:
        answer = httpx.post(f"{server.url}/v1/tasks/{TASK}/predict", json={"rows": rows})
        assert answer.status_code == 200, answer.text
        return answer.json()

    before = ask()
    env = deployed["env"]
    run_python(
        "ml.promote", "--task", TASK, "--run", deployed["run_id"], "--model", "xgboost",
        "--force", "--reason", "serving test", warehouse=deployed["warehouse"], env_extra=env,
    )  # fmt: skip
    promoted = ask()
    assert promoted["model"]["model_name"] == "xgboost"
    assert promoted["model"]["deployment_id"] == 2
    run_python("ml.rollback", "--task", TASK, warehouse=deployed["warehouse"], env_extra=env)
    rolled_back = ask()
    assert rolled_back["model"]["deployment_id"] == 3
    assert rolled_back["model"]["model_name"] == before["model"]["model_name"]
    assert [r["probability"] for r in rolled_back["rows"]] == [
        r["probability"] for r in before["rows"]
    ]


def test_the_page_in_chromium(server) -> None:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for_selector("#task-form:not([hidden])")
            assert page.input_value("#f-credit_score") != ""  # a typical application
            page.fill("#f-credit_score", "720")
            page.click("#submit")
            page.wait_for_selector("#result:not([hidden])")
            assert page.text_content("#decision").strip() in ("approve", "review", "decline")
            assert "%" in page.text_content("#probability")
            assert "deployment" in page.text_content("#deployment").lower()
            page.fill("#f-annual_income", "lots")
            page.click("#submit")
            page.wait_for_selector("#error:not([hidden])")
            message = page.text_content("#error")
            assert "annual income" in message and "422" in message
            assert "invalid" in (page.get_attribute("#f-annual_income", "class") or "")
        finally:
            browser.close()


def test_live_models_reload_only_what_changed(deployed, tmp_path) -> None:
    path = tmp_path / "deployments.json"
    shutil.copy(deployed["manifest"], path)
    live = LiveModels(path)
    first = live.served(TASK)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched, same content
    assert live.served(TASK) is first and live.reloads == 2


def test_the_benchmark_load_generator_measures_the_server(server, deployed) -> None:
    """`ml.bench.serve_load` (what `make bench` runs in its own processes) against a running
    server and in-process; the bench's headline numbers and table are made of its answers."""
    from ml.bench import serve_load
    from ml.bench.markdown import _serving
    from ml.bench.summary import _serving_summary

    rows = deployed["rows"]
    manifest = str(deployed["manifest"])
    measured: dict = {}
    for role, model in (("champion", None), ("xgboost", "xgboost")):
        http, in_process = {}, {}
        for kind, batch, explain in (("single", 1, True), ("batch", 20, True),
                                     ("batch_no_reasons", 20, False)):  # fmt: skip
            spec = {"task": TASK, "model": model, "batch": batch, "requests": 6,
                    "explain": explain, "warmup": 2}  # fmt: skip
            stats = serve_load.run_http({**spec, "url": server.url, "concurrency": 2}, rows)
            assert stats["requests"] == 6 and stats["errors"] == 0, stats
            assert 0 < stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]
            assert stats["rows_per_s"] == pytest.approx(6 * batch / stats["wall_s"], rel=0.05)
            http[f"{kind}_2"] = stats
            in_process[kind] = serve_load.run_in_process({**spec, "manifest": manifest}, rows)
        measured[role] = {"http": http, "in_process": in_process}
    served = {"task": TASK, "levels": [2], "batch_rows": 20, "models": measured,
              "champion_model": "selection", "startup_s": 1.0}  # fmt: skip
    summary = _serving_summary({3000: {"serving": served}})
    assert summary["serve_xgboost_p99_ms"] == measured["xgboost"]["http"]["single_2"]["p99_ms"]
    best = measured["champion"]["http"]["batch_no_reasons_2"]["rows_per_s"]
    assert summary["serve_batch_rows_per_s"] == best
    table = "\n".join(_serving({3000: {"serving": served}}))
    assert "| champion (selection) | 2 |" in table and "| xgboost | in-process |" in table
