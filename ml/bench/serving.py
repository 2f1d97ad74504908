"""The server in the benchmark: `python -m ml.serve` on a size's warehouse, loaded from a
client process on loopback, beside the same scoring in-process.

For the loan model deployed by the size's training (the champion) and the xgboost candidate of
the same run (`?model=xgboost`): single-row requests, 1,000-row requests with the loan officer's
reasons, and 1,000-row requests without them (`explain=false`), each with 1, 4 and 16
concurrent clients (`ml.bench.serve_load`: one keep-alive connection per client), then the same
bodies scored in-process by `ml.api.live` one after another. A single row's answer holds what a
loan officer gets: the decision and its reasons (exact SHAP of the model on the row).

The server is one uvicorn worker (`ml.serve`'s default); it and the clients share the machine's
cores, as they would on one 2-core host.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.bench.process import python_module, run_worker, tail
from ml.core.config import PROJECT_ROOT
from ml.core.warehouse import open_warehouse

TASK = "loan_repayment"
#: The models measured: the deployed one, and a candidate of its run by name.
MODELS = {"champion": None, "xgboost": "xgboost"}


@dataclass(frozen=True)
class Plan:
    """What is measured: requests per measurement, rows of a batch body, client levels."""

    levels: tuple[int, ...] = (1, 4, 16)  # concurrent clients
    single_requests: int = 400
    batch_rows: int = 1_000
    batch_requests: int = 24

    def kinds(self) -> list[tuple[str, int, int, bool]]:
        """(name, rows per request, requests, with reasons) of each kind of request: single
        rows and batches with the loan officer's reasons, and batches without (`explain=false`:
        what a system that only needs the probability and the decision asks for)."""
        return [
            ("single", 1, self.single_requests, True),
            ("batch", self.batch_rows, self.batch_requests, True),
            ("batch_no_reasons", self.batch_rows, self.batch_requests, False),
        ]


Say = Callable[[str], None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(warehouse: Path, path: Path, limit: int) -> int:
    """`limit` rows of marts.loan_features as a JSON list at `path`; how many."""
    with open_warehouse(warehouse, engine="duckdb", read_only=True) as wh:
        frame = wh.query_arrow(
            f"select * from marts.loan_features order by loan_id limit {int(limit)}"
        ).to_pandas()
    path.write_text(frame.to_json(orient="records", date_format="iso"))
    return len(frame)


def _wait(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    import http.client

    host, port = url.split("//")[1].split(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ml.serve exited {proc.returncode}: {tail(log)}")
        try:
            con = http.client.HTTPConnection(host, int(port), timeout=2)
            con.request("GET", "/healthz")
            if con.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"ml.serve did not answer in {timeout:.0f}s: {tail(log)}")


def _rss_mb(pid: int) -> float | None:
    """The resident memory of a process (Linux), in MiB; None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _load(spec: dict[str, Any], name: str, folder: Path, env: dict[str, str]) -> dict[str, Any]:
    run = run_worker("ml.bench.serve_load", spec, name, folder, env, timeout=1800)
    out = Path(run["log"]).read_text().strip().splitlines()
    if run["returncode"] != 0 or not out:
        raise RuntimeError(f"{name} failed: {tail(run['log'])}")
    return json.loads(out[-1])


def bench_serving(
    folder: Path, env: dict[str, str], say: Say, plan: Plan | None = None
) -> dict[str, Any]:
    """Every serving measurement on the warehouse and artifacts of `env` (a trained size)."""
    plan = plan or Plan()
    folder = folder / "serving"
    folder.mkdir(parents=True, exist_ok=True)
    rows_file = folder / "rows.json"
    _rows(Path(env["WAREHOUSE_PATH"]), rows_file, plan.batch_rows)
    manifest = Path(env["ARTIFACTS_PATH"]) / "deployments.json"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = folder / "server.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            python_module("ml.serve", "--port", str(port), "--max-rows", str(plan.batch_rows)),
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    result: dict[str, Any] = {
        "task": TASK,
        "levels": list(plan.levels),
        "batch_rows": plan.batch_rows,
        "models": {},
    }
    try:
        started = time.perf_counter()
        _wait(url, proc, log)
        result["startup_s"] = round(time.perf_counter() - started, 1)
        for role, model in MODELS.items():
            measured: dict[str, Any] = {"http": {}, "in_process": {}}
            for kind, batch, requests, explain in plan.kinds():
                common = {"task": TASK, "model": model, "rows_file": str(rows_file),
                          "batch": batch, "requests": requests, "explain": explain}  # fmt: skip
                for level in plan.levels:
                    spec = {**common, "mode": "http", "url": url, "concurrency": level}
                    stats = _load(spec, f"{role}-{kind}-{level}", folder, env)
                    measured["http"][f"{kind}_{level}"] = stats
                    say(
                        f"serving {role} {kind} x{level}: p50 {stats['p50_ms']:.1f} ms, p99 "
                        f"{stats['p99_ms']:.1f} ms, {stats['rows_per_s']:,.0f} rows/s"
                    )
                spec = {**common, "mode": "in_process", "manifest": str(manifest),
                        "concurrency": 1}  # fmt: skip
                stats = _load(spec, f"{role}-{kind}-in-process", folder, env)
                measured["in_process"][kind] = stats
                say(
                    f"in-process {role} {kind}: p50 {stats['p50_ms']:.1f} ms, p99 "
                    f"{stats['p99_ms']:.1f} ms, {stats['rows_per_s']:,.0f} rows/s"
                )
            result["models"][role] = measured
        deployed = json.loads(manifest.read_text())["tasks"][TASK]
        result["champion_model"] = deployed["model_name"]
        result["server_rss_mb"] = _rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return result
