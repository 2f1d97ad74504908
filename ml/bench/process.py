"""Timed subprocesses and what the machine is: wall and CPU seconds, peak memory, versions."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.core.config import PROJECT_ROOT
from ml.core.errors import UserError
from ml.core.runs import MODEL_LIBRARIES, library_versions


def rss_mb(field: str = "VmRSS") -> float | None:
    """This process's resident memory (or another /proc/self/status field) in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak resident memory since it started.

    VmHWM, not getrusage's ru_maxrss: on Linux ru_maxrss survives fork+exec, so a worker would
    report the bench parent's high-water mark instead of its own.
    """
    peak = rss_mb("VmHWM")
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def descendants_peak_rss_mb() -> float | None:
    """The summed peak resident memory of this process's live descendants (a JVM and its Python
    workers, for Spark), each its own peak; None without any (or without /proc)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], list(parents.get(os.getpid(), []))
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending += parents.get(pid, [])
    total = None
    for pid in found:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total = (total or 0.0) + int(line.split()[1]) / 1024
    return total


def self_cpu() -> float:
    """CPU seconds (user + system) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, OS, Python and the load average now."""
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average": load_average(),
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


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def bench_versions(spark: bool = False) -> dict[str, str]:
    """Versions of what the benchmark exercises (with `spark`, Spark's too)."""
    dists = ("dbt-core", "dbt-duckdb", "pyarrow", *MODEL_LIBRARIES)
    return library_versions(dists + (("pyspark", "dbt-spark") if spark else ()))


def base_env(warehouse: Path, artifacts: Path, engine: str = "duckdb") -> dict[str, str]:
    """The environment of every subprocess of one size, on `engine` (duckdb or spark)."""
    return {
        **os.environ,
        "WAREHOUSE_ENGINE": engine,
        "WAREHOUSE_PATH": str(warehouse),
        "ARTIFACTS_PATH": str(artifacts),
        "DBT_PROFILES_DIR": str(PROJECT_ROOT),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONUNBUFFERED": "1",
    }


def python_module(module: str, *args: str) -> list[str]:
    """`python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


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
        proc = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
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


def tail(path: str | Path, lines: int = 15) -> str:
    """The last lines of a log (empty when it cannot be read)."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# -- the workers: `python -m ml.bench.<worker> <spec.json>`, each its own process -------------


def run_worker(
    module: str,
    spec: dict[str, Any],
    name: str,
    workdir: Path,
    env: dict[str, str],
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run the worker `module` on `spec` (written to `<workdir>/<name>.spec.json`, with the
    launch time as `launched_at`), output to `<workdir>/<name>.out`; `run_command`'s result."""
    spec_file = workdir / f"{name}.spec.json"
    spec_file.write_text(json.dumps({**spec, "launched_at": time.time()}, default=str))
    return run_command(
        python_module(module, str(spec_file)), env, workdir / f"{name}.out", timeout=timeout
    )


def read_spec(argv: Sequence[str] | None) -> dict[str, Any]:
    """A worker's spec, from the file its one argument names."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        raise UserError("usage: python -m ml.bench.<worker> SPEC.json (started by the benchmark)")
    return json.loads(Path(args[0]).read_text())


def since_launch(spec: dict[str, Any]) -> float:
    """Seconds since the parent launched this worker (python start and imports included)."""
    return time.time() - float(spec["launched_at"])
