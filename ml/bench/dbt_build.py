"""Step 2 of a size: `dbt build` of the production selection, timed by dbt's own run_results.json.

The selection is dbt's: `--selector production_build` of dbt_project/selectors.yml, what
`make dbt-build` runs. The subprocess's wall and CPU seconds are the headline; dbt's
`run_results.json` (under `--target-path`) says where the time went: `elapsed_time` (running the
nodes), each node's `execution_time` and its compile and execute phases (`timing`), and the
threads that ran them.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from ml.bench.process import run_command, tail
from ml.core.config import DBT_PROJECT_DIR, PROJECT_ROOT

#: The production build (dbt_project/selectors.yml): before_training without unit tests.
DBT_SELECTOR = "production_build"
#: Node kinds a build reports, by the first part of their unique_id.
NODE_KINDS = ("model", "seed", "test", "unit_test")


def dbt_command(command: str, workdir: Path, *extra: str) -> list[str]:
    """`dbt <command>` on the project with target/ and logs/ in `workdir`."""
    dbt = Path(sys.executable).with_name("dbt")
    return [
        str(dbt),
        command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_ROOT),
        "--target-path",
        str(workdir / "target"),
        "--log-path",
        str(workdir / "logs"),
        *extra,
    ]


def _instant(text: str | None) -> datetime | None:
    """A timestamp of run_results.json ("2026-12-04T16:49:00.668345Z")."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _phase_s(result: dict[str, Any], phase: str) -> float:
    """Seconds of a node's `compile` or `execute` phase (0 when dbt did not record it)."""
    for timing in result.get("timing") or []:
        start, end = _instant(timing.get("started_at")), _instant(timing.get("completed_at"))
        if timing.get("name") == phase and start and end:
            return (end - start).total_seconds()
    return 0.0


def read_run_results(target: Path) -> dict[str, Any]:
    """What dbt recorded of its build: per-node seconds, phases, threads, the selection."""
    run_results = json.loads((target / "run_results.json").read_text())
    results = run_results["results"]
    kinds = dict.fromkeys(NODE_KINDS, 0)
    node_s: dict[str, float] = {}
    for r in results:
        prefix = r["unique_id"].split(".")[0]
        kinds[prefix] = kinds.get(prefix, 0) + 1
        node_s[r["unique_id"]] = float(r["execution_time"])
    starts = [_instant(t.get("started_at")) for r in results for t in r.get("timing") or []]
    started = _instant(run_results.get("metadata", {}).get("invocation_started_at"))
    first = min((s for s in starts if s), default=None)
    return {
        "nodes": kinds,
        "node_s": node_s,
        "node_s_sum": sum(node_s.values()),
        "unit_test_s": sum(s for uid, s in node_s.items() if uid.startswith("unit_test.")),
        "compile_s_sum": sum(_phase_s(r, "compile") for r in results),
        "execute_s_sum": sum(_phase_s(r, "execute") for r in results),
        "execute_s": float(run_results.get("elapsed_time") or 0.0),
        "before_first_node_s": (first - started).total_seconds() if first and started else None,
        "threads": len({r["thread_id"] for r in results if r.get("thread_id")}) or None,
        "selector": (run_results.get("args") or {}).get("selector"),
        "failed": [r["unique_id"] for r in results if r["status"] in {"error", "fail"}],
    }


def run_dbt(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """`dbt parse` (the full parse) then `dbt build --selector production_build`, as a repeated
    `make dbt-build` runs it (partially parsed): wall and CPU seconds, and dbt's own timings."""
    parse = run_command(dbt_command("parse", workdir), env, workdir / "parse.out")
    if parse["returncode"] != 0:
        raise RuntimeError(f"dbt parse failed:\n{tail(parse['log'])}")
    build = run_command(
        dbt_command("build", workdir, "--selector", DBT_SELECTOR), env, workdir / "build.out"
    )
    target = workdir / "target"
    if build["returncode"] != 0:
        failed = []
        if (target / "run_results.json").exists():
            failed = read_run_results(target)["failed"]
        named = ", ".join(failed[:5]) or "see log"
        raise RuntimeError(f"dbt build failed ({named}):\n{tail(build['log'])}")
    recorded = read_run_results(target)
    del recorded["failed"]
    return {
        "parse_s": parse["seconds"],
        "parse_cpu_s": parse["cpu_s"],
        "build_s": build["seconds"],
        "build_cpu_s": build["cpu_s"],
        **recorded,
        "startup_parse_s": build["seconds"] - recorded["execute_s"],
        "target": str(target),
    }
