"""Benchmark the warehouse at growing sizes: `python -m scripts.bench` (`make bench`).

    python -m scripts.bench                                   # 100k, 1M and 10M orders
    python -m scripts.bench --sizes 100000,1000000 --keep --workdir /tmp/bench
    python -m scripts.bench --sizes 3000 --skip-train         # a smoke test in seconds

Every size is a number of orders (customers = orders / 10) in its own fresh warehouse under
`--workdir` (WAREHOUSE_PATH and ARTIFACTS_PATH point there for every subprocess). Per size:

1. simulate: `scripts.simulate.simulate()` + `write()`; raw rows landed per second, computed as
   the simulator's own summary line computes it;
2. dbt: `dbt build --exclude source:ml+ source:ml_segmentation+ --exclude-resource-type
   unit_test` (the production build, as `make dbt-build`) in a subprocess with target/ and logs/
   under the workdir, after a timed `dbt parse` that does the full parse, so the build partially
   parses as a repeated `make dbt-build` does;
3. DuckDB alone: the SAME compiled SQL that build ran (target/manifest.json), in dependency
   order, in one DuckDB connection on a copy of the same raw warehouse: models as `create or
   replace table|view ... as <compiled_code>`, the seed loaded from its CSV, every data test as
   `select count(*) from (<compiled_code>)` (and a unit test's SQL, its model over fixture CTEs
   from run_results.json, just before its model, should a build run unit tests). Steps 2 and 3
   run as `--dbt-repeats` pairs (default 3), each pair on fresh copies of the raw warehouse, one
   after the other: dbt_vs_duckdb_ratio is the median of the pairs' ratios (dbt build wall time
   / DuckDB wall time), and every pair is reported;
4. train: `python -m ml.train --fast --task T --seed S --skip-gate` per task, each in its own
   subprocess (through a thin wrapper that also logs when each training step starts);
5. scoring: `bench.scoring_input`, as many rows as the size has orders (marts.loan_features rows
   repeated with new loan ids), scored by the loan_repayment champion and by the xgboost
   candidate of the same run with `ml.scoring.score_table`, each in its own subprocess so its peak
   RSS is the scoring's own (fast path; the generic pandas path too up to --generic-max-rows).

Writes `<output>/bench.json` (the largest size's headline numbers at the top level, every size
under "runs"), `<output>/bench.md` (tables, targets, where the time goes) and
`<output>/bench.png` (log-log time against rows). Timings on a shared machine are noisy: every
step also records its CPU seconds, and the report states the load average.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml import config
from ml.cli import ArgumentParser, positive_int, run
from ml.errors import UserError

ROOT = config.PROJECT_ROOT
DBT_PROJECT = ROOT / "dbt_project"
DEFAULT_SIZES = (100_000, 1_000_000, 10_000_000)
ORDERS_PER_CUSTOMER = 10
#: Tasks trained per size; loan_repayment first: scoring needs its models.
TASKS = ("loan_repayment", "customer_satisfaction", "customer_segment")
SCORING_TASK = "loan_repayment"
DBT_EXCLUDE = ("source:ml+", "source:ml_segmentation+")
#: `make dbt-build`'s flags: the production build, without dbt's unit tests (`make test` runs them).
DBT_BUILD_FLAGS = ("--exclude", *DBT_EXCLUDE, "--exclude-resource-type", "unit_test")
DEFAULT_DBT_REPEATS = 3
SCORING_INPUT = "bench.scoring_input"
#: The targets the report checks (at the largest size).
TARGETS = {
    "simulate_rows_per_s": (">=", 2_000_000),
    "dbt_vs_duckdb_ratio": ("<=", 1.3),
    "scoring_rows_per_s": (">=", 1_000_000),
    "scoring_peak_rss_mb": ("<=", 2048),
    "dbt_growth": ("<=", 11),
    "scoring_growth": ("<=", 11),
}
#: A training task slower than this at the largest size gets its slowest steps named.
SLOW_TRAIN_S = 600
#: A training task is stopped after this long (the report names the step it was in).
DEFAULT_TRAIN_TIMEOUT_S = 3600.0
WORKER = "_worker"

Say = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# helpers


def parse_sizes(text: str) -> list[int]:
    """`100000,1e6,10_000_000` -> [100000, 1000000, 10000000] (each at least 10 orders)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().replace("_", "")
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise UserError(f"--sizes: {part!r} is not a number") from None
        if not math.isfinite(value) or value != int(value) or value < ORDERS_PER_CUSTOMER:
            raise UserError(f"--sizes: {part!r} must be a whole number of at least 10 orders")
        sizes.append(int(value))
    if not sizes:
        raise UserError("--sizes is empty")
    return sorted(set(sizes))


def _rss_mb(field: str = "VmRSS") -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mb() -> float:
    """This process's peak resident memory since it started.

    VmHWM, not getrusage's ru_maxrss: on Linux ru_maxrss survives fork+exec, so a worker would
    report the bench parent's high-water mark instead of its own.
    """
    peak = _rss_mb("VmHWM")
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, OS, Python and the load average now."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def library_versions() -> dict[str, str]:
    """Versions of what the benchmark exercises."""
    from ml.experiment import MODEL_LIBRARIES
    from ml.experiment import library_versions as versions

    return versions(("dbt-core", "dbt-duckdb", "pyarrow", *MODEL_LIBRARIES))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def base_env(warehouse: Path, artifacts: Path) -> dict[str, str]:
    """The environment of every subprocess of one size."""
    return {
        **os.environ,
        "WAREHOUSE_PATH": str(warehouse),
        "ARTIFACTS_PATH": str(artifacts),
        "DBT_PROFILES_DIR": str(ROOT),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONUNBUFFERED": "1",
    }


def run_command(
    args: list[str], env: dict[str, str], log: Path, timeout: float | None = None
) -> dict[str, Any]:
    """Run a command from the repository root, output to `log`; wall and CPU seconds, exit code.

    CPU is the command's own (and its children's): the change in this process's waited-for
    children's usage, which is exact because commands run one at a time.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    cpu0, wall0 = _children_cpu(), time.perf_counter()
    timed_out = False
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.terminate()
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return {
        "seconds": time.perf_counter() - wall0,
        "cpu_s": _children_cpu() - cpu0,
        "returncode": code,
        "timed_out": timed_out,
        "log": str(log),
    }


def _tail(path: str | Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# 1. simulate


def run_simulate(customers: int, seed: int, warehouse: Path) -> dict[str, Any]:
    """Simulate and land raw.* and sim.*; rows per second as `scripts.simulate` reports it."""
    from scripts.simulate import simulate, write

    cpu0, wall0 = _self_cpu(), time.perf_counter()
    sim = simulate(customers, seed)
    generate_s = float(sim.seconds)
    t_write = time.perf_counter()
    reported = write(sim, str(warehouse))
    write_wall = time.perf_counter() - t_write
    write_s = float(reported) if isinstance(reported, int | float) else write_wall
    rows = {name: int(n) for name, n in sim.rows.items()}
    del sim
    raw_rows = sum(n for name, n in rows.items() if name.startswith("raw."))
    seconds = generate_s + write_s
    return {
        "customers": customers,
        "rows": rows,
        "raw_rows": raw_rows,
        "generate_s": generate_s,
        "write_s": write_s,
        "seconds": seconds,
        "wall_s": time.perf_counter() - wall0,
        "cpu_s": _self_cpu() - cpu0,
        "rows_per_s": raw_rows / seconds if seconds > 0 else None,
    }


# ---------------------------------------------------------------------------------------------
# 2. dbt build


def dbt_command(command: str, workdir: Path, *extra: str) -> list[str]:
    """`dbt <command>` on the project with target/ and logs/ in `workdir`."""
    dbt = Path(sys.executable).with_name("dbt")
    return [
        str(dbt),
        command,
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(ROOT),
        "--target-path",
        str(workdir / "target"),
        "--log-path",
        str(workdir / "logs"),
        *extra,
    ]


def _dbt_threads(log: str | Path) -> int | None:
    """The thread count dbt reports ("Concurrency: 2 threads")."""
    match = re.search(r"Concurrency: (\d+) threads", Path(log).read_text(errors="replace"))
    return int(match[1]) if match else None


def run_dbt(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """`dbt parse` (the full parse) then `dbt build` as `make dbt-build` runs it."""
    parse = run_command(dbt_command("parse", workdir), env, workdir / "parse.out")
    if parse["returncode"] != 0:
        raise RuntimeError(f"dbt parse failed:\n{_tail(parse['log'])}")
    build = run_command(dbt_command("build", workdir, *DBT_BUILD_FLAGS), env, workdir / "build.out")
    target = workdir / "target"
    results = json.loads((target / "run_results.json").read_text())
    if build["returncode"] != 0:
        failed = [
            r["unique_id"] for r in results.get("results", []) if r["status"] in {"error", "fail"}
        ]
        raise RuntimeError(
            f"dbt build failed ({', '.join(failed[:5]) or 'see log'}):\n{_tail(build['log'])}"
        )
    nodes = results["results"]
    kind = {"model": 0, "seed": 0, "test": 0, "unit_test": 0}
    node_s: dict[str, float] = {}
    for r in nodes:
        prefix = r["unique_id"].split(".")[0]
        kind[prefix] = kind.get(prefix, 0) + 1
        node_s[r["unique_id"]] = float(r["execution_time"])
    unit_s = sum(s for uid, s in node_s.items() if uid.startswith("unit_test."))
    execute_s = float(results.get("elapsed_time") or 0.0)
    return {
        "parse_s": parse["seconds"],
        "parse_cpu_s": parse["cpu_s"],
        "build_s": build["seconds"],
        "build_cpu_s": build["cpu_s"],
        "execute_s": execute_s,
        "startup_parse_s": build["seconds"] - execute_s,
        "nodes": kind,
        "node_s_sum": sum(node_s.values()),
        "unit_test_s": unit_s,
        "node_s": node_s,
        "threads": _dbt_threads(build["log"]),
        "target": str(target),
    }


# ---------------------------------------------------------------------------------------------
# 3. the same SQL in DuckDB alone


def _dependency_order(ids: list[str], manifest: dict[str, Any]) -> list[str]:
    """`ids` in dependency order (dbt's execution order among nodes ready at the same time).

    Dependencies through nodes that are not in `ids` (ephemeral models, inlined as CTEs) count:
    a model reading an ephemeral model waits for what the ephemeral model reads.
    """
    position = {uid: i for i, uid in enumerate(ids)}
    wanted = set(ids)
    nodes = manifest["nodes"]

    def parents(uid: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for dep in nodes.get(uid, {}).get("depends_on", {}).get("nodes", []):
            if dep in seen:
                continue
            seen.add(dep)
            found |= {dep} if dep in wanted else parents(dep, seen)
        return found

    deps = {uid: parents(uid, set()) for uid in ids}
    done: set[str] = set()
    order: list[str] = []
    pending = sorted(ids, key=position.get)
    while pending:
        ready = [uid for uid in pending if deps[uid] <= done]
        if not ready:  # a cycle cannot happen in dbt; keep dbt's order for what is left
            ready = pending
        for uid in ready:
            done.add(uid)
            order.append(uid)
        pending = [uid for uid in pending if uid not in done]
    return order


def replay_statements(target: Path) -> list[tuple[str, str, str]]:
    """(unique_id, kind, SQL) of every node `dbt build` ran, in dependency order.

    A unit test's SQL (its model's compiled code over fixture CTEs, as run_results.json records
    it) runs just before its model, as dbt runs it.
    """
    manifest = json.loads((target / "manifest.json").read_text())
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit_tests: dict[str, list[tuple[str, str, str]]] = {}
    for r in results:
        uid = r["unique_id"]
        if uid.startswith("unit_test.") and r.get("compiled_code"):
            sql = f"select count(*) as failures from (\n{r['compiled_code']}\n) as dbt_unit_test"
            model = manifest.get("unit_tests", {}).get(uid, {}).get("depends_on", {})
            parent = next(iter(model.get("nodes", [])), "")
            unit_tests.setdefault(parent, []).append((uid, "unit_test", sql))
    ids = [
        r["unique_id"]
        for r in results
        if r["unique_id"].split(".")[0] in {"model", "seed", "test"}
        and r["status"] in {"success", "pass", "warn", "fail"}
    ]
    statements = []
    order = _dependency_order(ids, manifest)
    for parent in [p for p in unit_tests if p not in order]:  # model not built: run them first
        statements += unit_tests.pop(parent)
    for uid in order:
        statements += unit_tests.pop(uid, [])
        node = manifest["nodes"][uid]
        kind = node["resource_type"]
        if kind == "seed":
            csv = DBT_PROJECT / node["original_file_path"]
            types = node["config"].get("column_types") or {}
            options = ""
            if types:
                typed = ", ".join(f"'{c}': '{t}'" for c, t in types.items())
                options = f", types = {{{typed}}}"
            literal = "'" + str(csv).replace("'", "''") + "'"
            sql = (
                f"create or replace table {node['relation_name']} as "
                f"select * from read_csv({literal}, header = true{options})"
            )
        elif kind == "model":
            materialized = node["config"]["materialized"]
            if materialized == "ephemeral":
                continue
            what = "view" if materialized == "view" else "table"
            sql = (
                f"create or replace {what} {node['relation_name']} as (\n{node['compiled_code']}\n)"
            )
        else:
            sql = f"select count(*) as failures from (\n{node['compiled_code']}\n) as dbt_test"
        statements.append((uid, kind, sql))
    return statements


def run_direct(raw_copy: Path, target: Path) -> dict[str, Any]:
    """Run dbt's compiled SQL directly in one DuckDB connection; wall and CPU seconds."""
    import duckdb

    manifest = json.loads((target / "manifest.json").read_text())
    database = next(
        (n["database"] for n in manifest["nodes"].values() if n.get("database")), "warehouse"
    )
    schemas = sorted(
        {
            (n["database"], n["schema"])
            for n in manifest["nodes"].values()
            if n["resource_type"] in {"model", "seed"} and n.get("database")
        }
    )
    statements = replay_statements(target)
    cpu0, wall0 = _self_cpu(), time.perf_counter()
    con = duckdb.connect(":memory:")
    node_s: dict[str, float] = {}
    failures: dict[str, int] = {}
    errors: dict[str, str] = {}
    try:
        literal = "'" + str(raw_copy).replace("'", "''") + "'"
        con.execute(f'attach {literal} as "{database}"')
        con.execute(f'use "{database}"')
        for db, schema in schemas:
            con.execute(f'create schema if not exists "{db}"."{schema}"')
        for uid, kind, sql in statements:
            t0 = time.perf_counter()
            try:
                rows = con.execute(sql).fetchall()
                if kind == "test" and rows and rows[0][0]:
                    failures[uid] = int(rows[0][0])
            except duckdb.Error as err:
                errors[uid] = str(err).splitlines()[0][:200]
            node_s[uid] = time.perf_counter() - t0
        con.execute("checkpoint")
    finally:
        con.close()
    counts: dict[str, int] = {}
    for _, kind, _ in statements:
        counts[kind] = counts.get(kind, 0) + 1
    return {
        "seconds": time.perf_counter() - wall0,
        "cpu_s": _self_cpu() - cpu0,
        "statements": counts,
        "node_s": node_s,
        "failing_tests": failures,
        "errors": errors,
        "unit_tests_included": counts.get("unit_test", 0) > 0,
    }


def dbt_breakdown(dbt: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """Where dbt's time beyond DuckDB's goes: startup and parse, per-node overhead."""
    shared = [uid for uid in direct["node_s"] if uid in dbt["node_s"]]
    overhead = {uid: dbt["node_s"][uid] - direct["node_s"][uid] for uid in shared}
    slowest = sorted(shared, key=lambda uid: -direct["node_s"][uid])[:8]
    return {
        "startup_parse_s": dbt["startup_parse_s"],
        "execute_s": dbt["execute_s"],
        "node_overhead_s": sum(overhead.values()),
        "node_overhead_per_node_ms": 1000 * sum(overhead.values()) / max(len(overhead), 1),
        "dbt_node_s_sum": sum(dbt["node_s"][uid] for uid in shared),
        "direct_node_s_sum": sum(direct["node_s"][uid] for uid in shared),
        "slowest": [
            {
                "node": uid.split(".", 2)[-1],
                "dbt_s": round(dbt["node_s"][uid], 3),
                "duckdb_s": round(direct["node_s"][uid], 3),
            }
            for uid in slowest
        ],
    }


def measure_dbt(
    warehouse: Path, folder: Path, env: dict[str, str], repeats: int, label: str, say: Say
) -> dict[str, Any]:
    """`repeats` pairs of (dbt build, the same SQL in DuckDB alone), each on fresh copies of the
    raw warehouse; the ratio is the median pair's. Wall times on a shared machine vary by 15-30 %
    from one run to the next, so one pair is a sample, not a measurement.

    The last pair's dbt build is left in `warehouse` for the steps after it.
    """
    raw = folder / "raw" / "warehouse.duckdb"
    raw.parent.mkdir()
    shutil.copy(warehouse, raw)
    pairs = []
    for i in range(1, repeats + 1):
        if i > 1:
            shutil.copy(raw, warehouse)
        say(f"{label}: dbt parse + dbt build ({i} of {repeats})")
        dbt = run_dbt(folder / f"dbt-{i}", env)
        say(
            f"{label}: dbt build {dbt['build_s']:.1f}s (execution {dbt['execute_s']:.1f}s, "
            f"startup+parse {dbt['startup_parse_s']:.1f}s; cold parse {dbt['parse_s']:.1f}s)"
        )
        direct_copy = folder / "direct" / "warehouse.duckdb"
        direct_copy.parent.mkdir()
        shutil.copy(raw, direct_copy)
        say(f"{label}: the same SQL directly in DuckDB ({i} of {repeats})")
        direct = run_direct(direct_copy, Path(dbt["target"]))
        shutil.rmtree(direct_copy.parent)
        if direct["errors"]:
            first = "; ".join(f"{k}: {v}" for k, v in list(direct["errors"].items())[:3])
            say(f"{label}: {len(direct['errors'])} statements failed in DuckDB alone, e.g. {first}")
        pair = {
            "dbt_build_s": dbt["build_s"],
            "duckdb_s": direct["seconds"],
            "ratio": dbt["build_s"] / direct["seconds"],
            "cpu_ratio": dbt["build_cpu_s"] / direct["cpu_s"] if direct["cpu_s"] > 0 else None,
        }
        say(f"{label}: DuckDB alone {direct['seconds']:.1f}s; dbt/DuckDB = {pair['ratio']:.2f}")
        pairs.append((pair, dbt, direct))
    shutil.rmtree(raw.parent)
    # the median; with an even count the upper of the two middle pairs
    median, dbt, direct = sorted(pairs, key=lambda p: p[0]["ratio"])[len(pairs) // 2]
    return {
        "dbt": {k: v for k, v in dbt.items() if k != "node_s"},
        "duckdb": {k: v for k, v in direct.items() if k != "node_s"},
        "dbt_breakdown": dbt_breakdown(dbt, direct),
        "dbt_vs_duckdb_ratio": median["ratio"],
        "dbt_vs_duckdb_cpu_ratio": median["cpu_ratio"],
        "dbt_vs_duckdb_pairs": [pair for pair, _, _ in pairs],
    }


# ---------------------------------------------------------------------------------------------
# 4. training


def run_train(
    task: str,
    seed: int,
    env: dict[str, str],
    workdir: Path,
    timeout: float | None,
) -> dict[str, Any]:
    """`python -m ml.train --fast --task T --seed S --skip-gate`, with its steps timed."""
    steps_file = workdir / f"train-{task}.steps.jsonl"
    steps_file.unlink(missing_ok=True)
    args = ["--fast", "--task", task, "--seed", str(seed), "--skip-gate"]
    spec = workdir / f"train-{task}.json"
    spec.write_text(json.dumps({"args": args, "steps": str(steps_file)}))
    result = run_command(
        [sys.executable, "-m", "scripts.bench", WORKER, "train", str(spec)],
        env,
        workdir / f"train-{task}.out",
        timeout=timeout,
    )
    steps = _read_steps(steps_file, result["seconds"])
    status = "ok" if result["returncode"] == 0 else "failed"
    if result["timed_out"]:
        status = "timeout"
    out = {
        "seconds": result["seconds"],
        "cpu_s": result["cpu_s"],
        "status": status,
        "steps": steps,
        "command": "python -m ml.train " + " ".join(args),
    }
    if status != "ok":
        out["log_tail"] = _tail(result["log"])
    return out


def _read_steps(path: Path, total_s: float) -> list[dict[str, Any]]:
    """The logged steps as (step, seconds until the next one), from the process start."""
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not events:
        return []
    steps = []
    for i, event in enumerate(events):
        end = events[i + 1]["t"] if i + 1 < len(events) else total_s
        steps.append({"step": event["step"], "seconds": round(max(end - event["t"], 0.0), 2)})
    return steps


def _worker_train(spec: dict[str, Any]) -> None:
    """Run ml.train's CLI, logging when each of its progress steps starts (seconds since start)."""
    started = time.perf_counter()
    log = open(spec["steps"], "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    def note(step: str) -> None:
        log.write(json.dumps({"t": time.perf_counter() - started, "step": step}) + "\n")

    note("start python, import, read the task's table")
    import ml.train as train_module

    original = train_module.train_task

    def timed_train_task(data, run_id, *args, progress=None, **kwargs):
        def step(message: str) -> None:
            note(message)
            if progress is not None:
                progress(message)

        result = original(data, run_id, *args, progress=step, **kwargs)
        note(f"{data.spec.name}: write ml.* tables, print the leaderboard")
        return result

    train_module.train_task = timed_train_task
    run(train_module.main, "ml.train", spec["args"])


# ---------------------------------------------------------------------------------------------
# 5. scoring


def build_scoring_input(warehouse: Path, rows: int) -> dict[str, Any]:
    """`bench.scoring_input`: `rows` rows of marts.loan_features repeated, loan ids 1..rows."""
    from ml.warehouse import session

    t0 = time.perf_counter()
    with session(warehouse) as con:
        base = con.execute("select count(*) from marts.loan_features").fetchall()[0][0]
        if not base:
            raise RuntimeError("marts.loan_features is empty")
        copies = math.ceil(rows / base)
        con.execute("create schema if not exists bench")
        con.execute(
            f"""
            create or replace table {SCORING_INPUT} as
            select * exclude (copy_row) replace (copy_row as loan_id)
            from (
                select f.*, row_number() over () as copy_row
                from marts.loan_features as f, range({copies}) as r(copy_no)
            )
            where copy_row <= {rows}
            """
        )
        count = con.execute(f"select count(*) from {SCORING_INPUT}").fetchall()[0][0]
    return {"rows": int(count), "base_rows": int(base), "seconds": time.perf_counter() - t0}


def scoring_models(warehouse: Path, workdir: Path, seed: int) -> dict[str, dict[str, Any]]:
    """The loan_repayment champion and xgboost candidate of the latest run, from ml.model_runs.

    Without a trained run (--skip-train), an xgboost pipeline is fitted here on
    marts.loan_features (the --fast grid's first configuration) and used for both.
    """
    from ml.warehouse import relation_exists, session

    with session(warehouse, read_only=True) as con:
        rows = []
        if relation_exists(con, "ml.model_runs"):
            rows = con.execute(
                """
                select model_name, run_id, artifact_path, artifact_sha256, is_champion
                from ml.model_runs
                where task = ? and run_id = (
                    select max(run_id) from ml.model_runs where task = ?
                )
                """,
                [SCORING_TASK, SCORING_TASK],
            ).fetchall()
    found = {
        name: {"model_name": name, "run_id": run_id, "path": path, "sha256": sha, "champion": champ}
        for name, run_id, path, sha, champ in rows
    }
    champion = next((m for m in found.values() if m["champion"]), None)
    if champion and "xgboost" in found:
        return {"champion": champion, "xgboost": found["xgboost"]}
    stand_in = fit_stand_in_model(warehouse, workdir, seed)
    return {"champion": stand_in, "xgboost": stand_in}


def fit_stand_in_model(warehouse: Path, workdir: Path, seed: int) -> dict[str, Any]:
    """An untuned xgboost pipeline for loan_repayment, saved like ml.train saves one."""
    import joblib

    from ml import models
    from ml.experiment import prepare_task, scoring_metadata
    from ml.registry import sha256_file
    from ml.warehouse import session

    with session(warehouse, read_only=True) as con:
        data = prepare_task(con, config.BUILTIN_TASKS[SCORING_TASK])
    fast = config.SEARCH_SPACES["fast"]["xgboost"]
    pipeline = models.make_pipeline(
        data.features, models.base_estimator("xgboost", "binary", data.y, seed)
    )
    pipeline.set_params(**{f"model__{k}": v[0] for k, v in fast.items()})
    X = data.X_all.iloc[data.labelled].reset_index(drop=True)
    pipeline.fit(X, data.y)
    run_id = "bench-stand-in"
    metadata = scoring_metadata(data, run_id, "xgboost", 0.5, seed)
    path = workdir / "stand-in-xgboost.joblib"
    joblib.dump({"pipeline": pipeline, "metadata": metadata}, path, compress=3)
    return {
        "model_name": "xgboost",
        "run_id": run_id,
        "path": str(path),
        "sha256": sha256_file(path),
        "champion": True,
        "stand_in": True,
    }


def run_scoring(
    warehouse: Path,
    model: dict[str, Any],
    target: str,
    env: dict[str, str],
    workdir: Path,
    *,
    fast: bool = True,
    batch_rows: int | None = None,
    profile: bool = False,
) -> dict[str, Any]:
    """Score bench.scoring_input into `target` in a subprocess; its stats and peak RSS."""
    label = (
        target.replace(".", "_") + ("" if fast else "_generic") + ("_profile" if profile else "")
    )
    result_file = workdir / f"score-{label}.json"
    result_file.unlink(missing_ok=True)
    spec = {
        "warehouse": str(warehouse),
        "model": model,
        "source": SCORING_INPUT,
        "target": target,
        "fast": fast,
        "batch_rows": batch_rows,
        "profile": profile,
        "result": str(result_file),
    }
    spec_file = workdir / f"score-{label}.spec.json"
    spec_file.write_text(json.dumps(spec))
    proc = run_command(
        [sys.executable, "-m", "scripts.bench", WORKER, "score", str(spec_file)],
        env,
        workdir / f"score-{label}.out",
    )
    if proc["returncode"] != 0 or not result_file.exists():
        raise RuntimeError(f"scoring {model['model_name']} failed:\n{_tail(proc['log'])}")
    out = json.loads(result_file.read_text())
    out["process_s"] = proc["seconds"]
    out["process_cpu_s"] = proc["cpu_s"]
    return out


def _worker_score(spec: dict[str, Any]) -> None:
    """Load a model (hash-checked) and score a table with ml.scoring; write the measurements."""
    t0 = time.perf_counter()
    from ml.predict import TrainedModel
    from ml.registry import load_verified
    from ml.scoring import DEFAULT_BATCH_ROWS, ScoringStats, score_table
    from ml.warehouse import session

    ref = spec["model"]
    pipeline, metadata = load_verified(ref["path"], ref["sha256"])
    model = TrainedModel(metadata["task"], ref["run_id"], ref["model_name"], pipeline, metadata)
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mb()
    stats = ScoringStats()
    batch_rows = spec.get("batch_rows") or DEFAULT_BATCH_ROWS
    profile_text = None
    with session(spec["warehouse"]) as con:
        if spec.get("profile"):
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        rows = score_table(
            con,
            model,
            spec["source"],
            spec["target"],
            batch_rows,
            fast=spec["fast"],
            stats=stats,
        )
        if spec.get("profile"):
            profiler.disable()
            buffer = io.StringIO()
            pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(20)
            profile_text = buffer.getvalue()
        written = con.execute(f"select count(*) from {spec['target']}").fetchall()[0][0]
    result = {
        "model_name": ref["model_name"],
        "model_class": type(pipeline).__name__,
        "run_id": ref["run_id"],
        "stand_in": bool(ref.get("stand_in")),
        "rows": rows,
        "rows_written": int(written),
        "batch_rows": batch_rows,
        "seconds": stats.seconds,
        "rows_per_s": rows / stats.seconds if stats.seconds > 0 else None,
        "cpu_s": stats.cpu_s,
        "rows_per_cpu_s": rows / stats.cpu_s if stats.cpu_s > 0 else None,
        "load_s": load_s,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": _peak_rss_mb(),
        "stats": stats.as_dict(),
        "profile": profile_text,
    }
    Path(spec["result"]).write_text(json.dumps(result, default=str))


# ---------------------------------------------------------------------------------------------
# one size


def bench_size(orders: int, args: Any, workdir: Path, say: Say) -> dict[str, Any]:
    """Every measurement of one size, in a fresh warehouse under `workdir`."""
    customers = max(orders // ORDERS_PER_CUSTOMER, 1)
    folder = workdir / f"orders-{orders}"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    warehouse = folder / "warehouse.duckdb"
    env = base_env(warehouse, folder / "artifacts")
    label = f"{orders:,} orders"
    out: dict[str, Any] = {"orders": orders, "customers": customers}

    say(f"{label}: simulating {customers:,} customers")
    sim = run_simulate(customers, args.seed, warehouse)
    out["simulate"] = sim
    say(
        f"{label}: simulated {sim['raw_rows']:,} raw rows in {sim['seconds']:.1f}s "
        f"({sim['rows_per_s']:,.0f} rows/s)"
    )
    out.update(measure_dbt(warehouse, folder, env, args.dbt_repeats, label, say))

    out["train"] = {}
    if not args.skip_train:
        for task in args.tasks:
            say(f"{label}: training {task} (--fast)")
            result = run_train(task, args.seed, env, folder, args.train_timeout or None)
            out["train"][task] = result
            say(f"{label}: {task} {result['status']} in {result['seconds']:.0f}s")

    say(f"{label}: building {SCORING_INPUT} ({orders:,} rows)")
    scoring: dict[str, Any] = {"input": build_scoring_input(warehouse, orders), "models": {}}
    models = scoring_models(warehouse, folder, args.seed)
    for role, model in models.items():
        if role != "champion" and model is models["champion"]:
            scoring["models"][role] = scoring["models"]["champion"]
            continue
        say(f"{label}: scoring {orders:,} rows with the {role} ({model['model_name']})")
        result = run_scoring(
            warehouse, model, f"bench.scored_{role}", env, folder, batch_rows=args.batch_rows
        )
        result["role"] = role
        if orders <= args.generic_max_rows:
            generic = run_scoring(
                warehouse,
                model,
                f"bench.scored_{role}",
                env,
                folder,
                fast=False,
                batch_rows=args.batch_rows,
            )
            result["generic"] = {k: v for k, v in generic.items() if k != "profile"}
        if args.profile and orders == max(args.sizes):
            profiled = run_scoring(
                warehouse,
                model,
                f"bench.scored_{role}",
                env,
                folder,
                batch_rows=args.batch_rows,
                profile=True,
            )
            result["profile"] = profiled["profile"]
        scoring["models"][role] = result
        extra = ""
        if "generic" in result and result["generic"]["rows_per_s"]:
            extra = f" (generic path {result['generic']['rows_per_s']:,.0f} rows/s)"
        say(
            f"{label}: {role} {model['model_name']}: {result['rows_per_s']:,.0f} rows/s, "
            f"peak RSS {result['peak_rss_mb']:,.0f} MB{extra}"
        )
    out["scoring"] = scoring
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    out["disk_mb"] = round(size_mb, 1)
    if not args.keep:
        shutil.rmtree(folder)
    return out


# ---------------------------------------------------------------------------------------------
# summary and reports


def _get(run: dict[str, Any] | None, *keys: str) -> Any:
    value: Any = run
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _growth(runs: dict[int, dict[str, Any]], *keys: str) -> float | None:
    """Time at the largest size over the time at the next smaller one."""
    sizes = sorted(runs)
    if len(sizes) < 2:
        return None
    big, small = _get(runs[sizes[-1]], *keys), _get(runs[sizes[-2]], *keys)
    return big / small if big and small else None


def summarize(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The headline numbers: the largest size's, and growth from the next smaller size."""
    largest = runs[max(runs)]
    xgb = _get(largest, "scoring", "models", "xgboost") or {}
    champion = _get(largest, "scoring", "models", "champion") or {}
    trained = largest.get("train") or {}
    train = {task: (r["seconds"] if r["status"] == "ok" else None) for task, r in trained.items()}
    return {
        "largest_orders": max(runs),
        "simulate_rows_per_s": _get(largest, "simulate", "rows_per_s"),
        "dbt_build_s": _get(largest, "dbt", "build_s"),
        "duckdb_direct_s": _get(largest, "duckdb", "seconds"),
        "dbt_vs_duckdb_ratio": largest.get("dbt_vs_duckdb_ratio"),
        "dbt_vs_duckdb_cpu_ratio": largest.get("dbt_vs_duckdb_cpu_ratio"),
        "train_fast_s": train or None,
        "train_status": {t: r["status"] for t, r in trained.items()} or None,
        "scoring_model": xgb.get("model_name"),
        "scoring_rows_per_s": xgb.get("rows_per_s"),
        "scoring_rows_per_cpu_s": xgb.get("rows_per_cpu_s"),
        "scoring_peak_rss_mb": xgb.get("peak_rss_mb"),
        "scoring_champion_model": champion.get("model_name"),
        "scoring_champion_rows_per_s": champion.get("rows_per_s"),
        "scoring_champion_peak_rss_mb": champion.get("peak_rss_mb"),
        "dbt_growth": _growth(runs, "dbt", "build_s"),
        "duckdb_growth": _growth(runs, "duckdb", "seconds"),
        "scoring_growth": _growth(runs, "scoring", "models", "xgboost", "seconds"),
        "scoring_champion_growth": _growth(runs, "scoring", "models", "champion", "seconds"),
        "growth_sizes": sorted(runs)[-2:] if len(runs) > 1 else None,
    }


def check_targets(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it is met (None: not measured)."""
    rows = []
    for key, (op, limit) in TARGETS.items():
        value = summary.get(key)
        met = None
        if isinstance(value, int | float):
            met = value >= limit if op == ">=" else value <= limit
        rows.append({"metric": key, "target": f"{op} {limit:,}", "value": value, "met": met})
    return rows


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.{digits}f}"
    return str(value)


def plot(runs: dict[int, dict[str, Any]], path: Path) -> Path | None:
    """Log-log plot of each step's seconds against the number of orders."""
    from scripts.report_html import figure_png, new_figure

    sizes = sorted(runs)
    series: dict[str, list[float | None]] = {
        "simulate": [_get(runs[s], "simulate", "seconds") for s in sizes],
        "dbt build": [_get(runs[s], "dbt", "build_s") for s in sizes],
        "same SQL in DuckDB": [_get(runs[s], "duckdb", "seconds") for s in sizes],
        "scoring (xgboost)": [
            _get(runs[s], "scoring", "models", "xgboost", "seconds") for s in sizes
        ],
        "scoring (champion)": [
            _get(runs[s], "scoring", "models", "champion", "seconds") for s in sizes
        ],
    }
    tasks = sorted({t for s in sizes for t in (runs[s].get("train") or {})})
    for task in tasks:
        series[f"train --fast {task}"] = [
            _get(runs[s], "train", task, "seconds")
            if _get(runs[s], "train", task, "status") == "ok"
            else None
            for s in sizes
        ]
    fig, ax = new_figure(figsize=(7.5, 4.8))
    drawn = 0
    for name, values in series.items():
        points = [(s, v) for s, v in zip(sizes, values, strict=True) if v and v > 0]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, marker="o", label=name)
        drawn += 1
    if not drawn:
        return None
    if len(sizes) > 1:  # a linear-growth reference through the first dbt point
        first = series["dbt build"][0]
        if first:
            ax.plot(
                sizes,
                [first * s / sizes[0] for s in sizes],
                linestyle=":",
                color="grey",
                label="linear growth (from dbt build)",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("orders (customers = orders / 10; scoring input rows = orders)")
    ax.set_ylabel("seconds (wall)")
    ax.set_title("Time against rows")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    path.write_bytes(figure_png(fig))
    return path


def markdown(result: dict[str, Any], png: Path | None) -> str:
    """bench.md: machine, versions, the table of sizes, targets, where the time goes."""
    runs = {int(k): v for k, v in result["runs"].items()}
    sizes = sorted(runs)
    summary = result["summary"]
    machine = result["machine"]
    lines = [
        "# Benchmark",
        "",
        f"Run {result['started_at']} – {result['finished_at']} (UTC) with "
        f"`{result['command']}`, seed {result['seed']}.",
        "",
        f"Machine: {machine.get('cores')} cores ({machine.get('cpu', 'unknown CPU')}), "
        f"{machine.get('memory_gb', '?')} GB RAM, {machine.get('platform')}, "
        f"Python {machine.get('python')}. Load average at the start "
        f"{machine.get('load_average')}, at the end {result.get('load_average_end')}: "
        "a load above the number of cores means other processes shared the CPU, and wall "
        "times are inflated (CPU seconds are listed beside them).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()) + ".",
        "",
        "## Results",
        "",
    ]
    header = ["", *[f"{s:,} orders" for s in sizes]]
    table = [header, ["---"] * len(header)]

    def row(name: str, values: list[Any], digits: int = 1) -> None:
        table.append([name, *[_fmt(v, digits) for v in values]])

    row("customers", [runs[s]["customers"] for s in sizes])
    row("raw rows landed", [_get(runs[s], "simulate", "raw_rows") for s in sizes])
    row("simulate s", [_get(runs[s], "simulate", "seconds") for s in sizes], 2)
    row("simulate raw rows/s", [_get(runs[s], "simulate", "rows_per_s") for s in sizes])
    row("dbt parse (full) s", [_get(runs[s], "dbt", "parse_s") for s in sizes])
    row("dbt build s", [_get(runs[s], "dbt", "build_s") for s in sizes])
    row(
        "  of which startup + partial parse s",
        [_get(runs[s], "dbt", "startup_parse_s") for s in sizes],
    )
    row("same SQL in DuckDB s", [_get(runs[s], "duckdb", "seconds") for s in sizes])
    row("dbt / DuckDB (wall)", [runs[s].get("dbt_vs_duckdb_ratio") for s in sizes], 2)
    row("dbt / DuckDB (CPU)", [runs[s].get("dbt_vs_duckdb_cpu_ratio") for s in sizes], 2)
    tasks = sorted({t for s in sizes for t in (runs[s].get("train") or {})})
    for task in tasks:
        values = []
        for s in sizes:
            r = _get(runs[s], "train", task)
            if r is None:
                values.append(None)
            else:
                values.append(
                    f"{r['seconds']:,.0f}" + ("" if r["status"] == "ok" else f" ({r['status']})")
                )
        row(f"train --fast {task} s", values)
    for role in ("xgboost", "champion"):
        name = {s: _get(runs[s], "scoring", "models", role, "model_name") for s in sizes}
        row(
            f"scoring {role} rows/s",
            [
                (
                    f"{_fmt(_get(runs[s], 'scoring', 'models', role, 'rows_per_s'))}"
                    + (f" ({name[s]})" if role == "champion" and name[s] else "")
                )
                if _get(runs[s], "scoring", "models", role)
                else None
                for s in sizes
            ],
        )
        row(
            f"scoring {role} rows/CPU-s",
            [_get(runs[s], "scoring", "models", role, "rows_per_cpu_s") for s in sizes],
        )
        row(
            f"scoring {role} generic path rows/s",
            [_get(runs[s], "scoring", "models", role, "generic", "rows_per_s") for s in sizes],
        )
        row(
            f"scoring {role} peak RSS MB",
            [_get(runs[s], "scoring", "models", role, "peak_rss_mb") for s in sizes],
            0,
        )
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in table]
    lines += [""]
    if png is not None:
        lines += [f"![time against rows, log-log]({png.name})", ""]

    lines += [
        "## Targets (largest size)",
        "",
        "| metric | target | measured | met |",
        "|---|---|---|---|",
    ]
    for t in result["targets"]:
        lines.append(
            f"| {t['metric']} | {t['target']} | {_fmt(t['value'], 2)} | "
            f"{'–' if t['met'] is None else ('yes' if t['met'] else '**no**')} |"
        )
    if summary.get("growth_sizes"):
        small, big = summary["growth_sizes"]
        lines += [
            "",
            f"Growth = time at {big:,} orders / time at {small:,} orders "
            f"({big / small:.0f}x the rows): dbt {_fmt(summary['dbt_growth'], 2)}, "
            f"DuckDB alone {_fmt(summary['duckdb_growth'], 2)}, scoring xgboost "
            f"{_fmt(summary['scoring_growth'], 2)}, scoring champion "
            f"{_fmt(summary['scoring_champion_growth'], 2)}.",
        ]

    largest = runs[sizes[-1]]
    bd = largest.get("dbt_breakdown") or {}
    pairs = largest.get("dbt_vs_duckdb_pairs") or []
    lines += [
        "",
        "## Where dbt's time goes (largest size)",
        "",
        f"- {len(pairs)} (dbt build, DuckDB alone) pairs, each on fresh copies of the raw "
        "warehouse, one after the other; dbt_vs_duckdb_ratio is the median pair's, and the "
        "numbers below are that pair's. Every pair: "
        + "; ".join(
            f"{p['dbt_build_s']:.1f} s / {p['duckdb_s']:.1f} s = {p['ratio']:.2f}" for p in pairs
        )
        + ".",
        f"- `dbt build` wall {_fmt(_get(largest, 'dbt', 'build_s'))} s: startup + partial parse "
        f"{_fmt(bd.get('startup_parse_s'))} s, node execution {_fmt(bd.get('execute_s'))} s "
        f"with {_get(largest, 'dbt', 'threads') or '?'} threads "
        f"(nodes: {_get(largest, 'dbt', 'nodes')}).",
        f"- The replayed nodes took {_fmt(bd.get('dbt_node_s_sum'))} s inside dbt and "
        f"{_fmt(bd.get('direct_node_s_sum'))} s in DuckDB alone: "
        f"{_fmt(bd.get('node_overhead_s'))} s more "
        f"({_fmt(bd.get('node_overhead_per_node_ms'), 0)} ms a node): dbt's per-node work "
        "(compiling, materialising via a temporary relation and renames, adapter calls, events "
        "and logs) and, with more than one thread, nodes running side by side that share the "
        "cores (each takes longer, the wall time does not add up).",
        "- dbt's unit tests are not part of the production build (`make dbt-build` passes "
        "`--exclude-resource-type unit_test`, as dbt Labs recommends: their inputs are fixed "
        "fixtures); `make test` runs them on every change.",
        f"- A full parse (a fresh target/ or a changed profile) costs "
        f"{_fmt(_get(largest, 'dbt', 'parse_s'))} s more; `make dbt-build` keeps target/ "
        "between runs, so it partially parses.",
        "",
        "Slowest nodes (seconds in dbt / in DuckDB alone):",
        "",
        "| node | dbt s | DuckDB s |",
        "|---|---|---|",
        *[f"| {n['node']} | {n['dbt_s']} | {n['duckdb_s']} |" for n in bd.get("slowest", [])],
    ]
    errors = _get(largest, "duckdb", "errors")
    if errors:
        lines += ["", f"Statements that failed in DuckDB alone: {errors}"]

    if largest.get("train"):
        lines += ["", "## Training steps (largest size)", ""]
        for r in largest["train"].values():
            steps = sorted(r.get("steps", []), key=lambda s: -s["seconds"])[:6]
            slow = " (over 10 minutes)" if r["seconds"] > SLOW_TRAIN_S else ""
            stopped = ""
            if r["status"] != "ok" and r.get("steps"):
                stopped = f"; stopped in: {r['steps'][-1]['step']}"
            lines.append(
                f"- `{r['command']}`: {r['status']}, {r['seconds']:,.0f} s{slow}{stopped}; "
                "slowest steps: " + "; ".join(f"{s['step']} {s['seconds']:,.0f} s" for s in steps)
            )

    lines += ["", "## Scoring (largest size)", ""]
    for role in ("xgboost", "champion"):
        r = _get(largest, "scoring", "models", role)
        if not r:
            continue
        st = r["stats"]
        stages = ", ".join(
            f"{k} {st['stage_s'][k]:.1f} s ({st['stage_cpu_s'][k]:.1f} CPU-s)"
            for k in st["stage_s"]
        )
        members = ", ".join(f"{k} {v:.1f} s" for k, v in st["estimator_s"].items())
        stand_in = ", stand-in: no training" if r.get("stand_in") else ""
        path = "fast path" if st["fast"] else f"generic path: {st['fallback_reason']}"
        compiled = st.get("compiled_trees") or {}
        if compiled:
            path += "; xgboost trees: " + ", ".join(f"{k} {v}" for k, v in compiled.items())
        lines += [
            f"- {role}: `{r['model_name']}` ({r['model_class']}{stand_in}), "
            f"{r['rows']:,} rows in {r['seconds']:.1f} s = {_fmt(r['rows_per_s'])} rows/s "
            f"({_fmt(r['rows_per_cpu_s'])} rows per CPU-second); {path}; "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB ({r['rss_after_load_mb'] or 0:,.0f} MB after "
            f"imports and loading the model in {r['load_s']:.1f} s).",
            f"  Stages: {stages}; background writer {st['writer_s']:.1f} s. Estimators: {members}.",
        ]
        if r.get("profile"):
            lines += ["", "  ```", *["  " + x for x in r["profile"].splitlines()[:40]], "  ```"]
    lines.append("")
    return "\n".join(lines)


def write_reports(result: dict[str, Any], output: Path) -> tuple[Path, Path, Path | None]:
    """bench.json, bench.png and bench.md in `output`."""
    output.mkdir(parents=True, exist_ok=True)
    json_path = output / "bench.json"
    json_path.write_text(json.dumps(result, indent=2, default=str))
    runs = {int(k): v for k, v in result["runs"].items()}
    png = plot(runs, output / "bench.png")
    md_path = output / "bench.md"
    md_path.write_text(markdown(result, png))
    return json_path, md_path, png


# ---------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [WORKER]:
        kind, spec_path = argv[1], argv[2]
        spec = json.loads(Path(spec_path).read_text())
        {"train": _worker_train, "score": _worker_score}[kind](spec)
        return 0
    parser = ArgumentParser(prog="python -m scripts.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="orders per size, comma-separated (default 100000,1000000,10000000)",
    )
    parser.add_argument("--output", default="reports", help="folder of bench.md/json/png")
    parser.add_argument(
        "--workdir", help="folder for the warehouses (default: a new folder in the temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the warehouses afterwards")
    parser.add_argument("--seed", type=int, default=config.DEFAULT_SEED, help="random seed")
    parser.add_argument("--skip-train", action="store_true", help="no training (smoke tests)")
    parser.add_argument(
        "--dbt-repeats",
        type=positive_int,
        default=DEFAULT_DBT_REPEATS,
        help="(dbt build, DuckDB alone) pairs per size; the ratio is the median pair's "
        f"(default {DEFAULT_DBT_REPEATS})",
    )
    parser.add_argument(
        "--tasks",
        default=",".join(TASKS),
        help=f"tasks to train (default {','.join(TASKS)})",
    )
    parser.add_argument(
        "--train-timeout",
        type=float,
        default=DEFAULT_TRAIN_TIMEOUT_S,
        help="seconds after which a training task is stopped and reported as timed out, with "
        f"the step it was in (default {DEFAULT_TRAIN_TIMEOUT_S:.0f}; 0: no limit)",
    )
    parser.add_argument(
        "--batch-rows", type=positive_int, default=None, help="rows per scoring batch"
    )
    parser.add_argument(
        "--generic-max-rows",
        type=int,
        default=1_000_000,
        help="also score on the generic (pandas) path up to this many rows (default 1,000,000)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the scoring at the largest size"
    )
    args = parser.parse_args(argv)
    args.sizes = parse_sizes(args.sizes)
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = [t for t in args.tasks if t not in config.BUILTIN_TASKS]
    if unknown:
        raise UserError(f"--tasks: unknown task {unknown[0]!r}")
    if SCORING_TASK in args.tasks:  # scoring needs its models first
        args.tasks.remove(SCORING_TASK)
        args.tasks.insert(0, SCORING_TASK)

    started = datetime.now(UTC)
    own_workdir = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-")).expanduser().resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    output = Path(args.output)

    def say(message: str) -> None:
        print(f"[bench {datetime.now():%H:%M:%S}] {message}", flush=True)

    machine = machine_info()
    say(
        f"sizes {', '.join(f'{s:,}' for s in args.sizes)} orders; workdir {workdir}; "
        f"{machine['cores']} cores, load average {machine['load_average']}"
    )
    runs: dict[int, dict[str, Any]] = {}
    try:
        for orders in args.sizes:
            runs[orders] = bench_size(orders, args, workdir, say)
    finally:
        if own_workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = summarize(runs)
    result = {
        **summary,
        "summary": summary,
        "targets": check_targets(summary),
        "started_at": started.strftime("%Y-%m-%d %H:%M:%S"),
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "command": "python -m scripts.bench " + " ".join(argv),
        "seed": args.seed,
        "sizes": args.sizes,
        "machine": machine,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "versions": library_versions(),
        "workdir": str(workdir) if args.keep else None,
        "runs": {str(k): v for k, v in runs.items()},
    }
    json_path, md_path, _ = write_reports(result, output)
    for t in result["targets"]:
        verdict = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        say(f"{t['metric']}: {_fmt(t['value'], 2)} (target {t['target']}): {verdict}")
    say(f"wrote {md_path} and {json_path}")
    return 0


if __name__ == "__main__":
    run(main, "scripts.bench")
