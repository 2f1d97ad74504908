"""A load generator for the serving benchmark, run in a process of its own.

    python -m ml.bench.serve_load SPEC.json     # prints one JSON line of measurements

SPEC: {"mode": "http" | "in_process", "task", "model" (null: deployed), "rows_file" (a JSON list
of rows), "batch" (rows per request), "requests", "concurrency", "explain" (false: no reasons,
`?explain=false`), "url" (http), "manifest" (in_process), "warmup"}.

http: `concurrency` threads, each with its own keep-alive connection (http.client), take request
numbers from one counter until `requests` are done; each request's latency is from sending to the
whole answer read. in_process: the same bodies validated, scored and decided by `ml.api.live`
(what the server does after parsing the body), one after another, in this process.
"""

from __future__ import annotations

import http.client
import itertools
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ml.api.live import LiveModels


def _bodies(rows: list[dict[str, Any]], batch: int, count: int) -> list[list[dict[str, Any]]]:
    """`count` request bodies of `batch` rows, cycling through `rows`."""
    out = []
    for i in range(count):
        start = (i * batch) % len(rows)
        out.append([rows[(start + j) % len(rows)] for j in range(batch)])
    return out


def _stats(latencies: list[float], wall: float, batch: int, errors: int) -> dict[str, Any]:
    ms = np.asarray(latencies) * 1000
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "max_ms": round(float(ms.max()), 2),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 1),
        "rows_per_s": round(len(latencies) * batch / wall, 1),
    }


def run_http(spec: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Measure the server at spec["url"]."""
    url = urlparse(spec["url"])
    params = [f"model={spec['model']}"] if spec.get("model") else []
    if not spec.get("explain", True):
        params.append("explain=false")
    path = f"/v1/tasks/{spec['task']}/predict" + ("?" + "&".join(params) if params else "")
    payloads = [
        json.dumps({"rows": b}).encode()
        for b in _bodies(rows, spec["batch"], min(spec["requests"], 64))
    ]
    headers = {"Content-Type": "application/json"}
    counter = itertools.count()
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client(total: int, record: bool) -> None:
        con = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        try:
            while (i := next(counter)) < total:
                body = payloads[i % len(payloads)]
                t0 = time.perf_counter()
                con.request("POST", path, body=body, headers=headers)
                answer = con.getresponse()
                answer.read()
                dt = time.perf_counter() - t0
                with lock:
                    if answer.status != 200:
                        errors[0] += 1
                    elif record:
                        latencies.append(dt)
        finally:
            con.close()

    def round_of(total: int, record: bool) -> float:
        nonlocal counter
        counter = itertools.count()
        threads = [
            threading.Thread(target=client, args=(total, record))
            for _ in range(spec["concurrency"])
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    round_of(spec.get("warmup", 10), record=False)
    wall = round_of(spec["requests"], record=True)
    return _stats(latencies, wall, spec["batch"], errors[0])


def run_in_process(spec: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Measure `ml.api.live`'s scoring of the same bodies in this process."""
    served = LiveModels(Path(spec["manifest"])).served(spec["task"], spec.get("model"))
    bodies = _bodies(rows, spec["batch"], min(spec["requests"], 64))
    explain = spec.get("explain", True)
    for i in range(spec.get("warmup", 10)):
        served.predict(bodies[i % len(bodies)], explain)
    latencies = []
    t_start = time.perf_counter()
    for i in range(spec["requests"]):
        t0 = time.perf_counter()
        served.predict(bodies[i % len(bodies)], explain)
        latencies.append(time.perf_counter() - t0)
    return _stats(latencies, time.perf_counter() - t_start, spec["batch"], 0)


def main(argv: list[str]) -> int:
    """Entry point: one JSON line on stdout."""
    spec = json.loads(Path(argv[0]).read_text())
    rows = json.loads(Path(spec["rows_file"]).read_text())
    run = run_http if spec["mode"] == "http" else run_in_process
    print(json.dumps(run(spec, rows)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
