"""Steps 2 and 3 together: (dbt build, the same SQL in DuckDB alone) pairs, and their ratio.

Wall times on a shared machine vary by 15-30 % from one run to the next, so one pair is a
sample, not a measurement: a size runs `repeats` pairs, each on fresh copies of the raw
warehouse, one after the other, and reports the median pair's ratio and every pair.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.bench.dbt_build import run_dbt
from ml.bench.replay import run_direct

Say = Callable[[str], None]
#: Slowest replayed nodes listed in the breakdown.
SLOWEST_NODES = 8


def dbt_breakdown(dbt: dict[str, Any], direct: dict[str, Any]) -> dict[str, Any]:
    """Where dbt's time beyond DuckDB's goes, from dbt's run_results.json: startup and parse,
    per-node overhead over the same statement in DuckDB alone, compile and execute phases."""
    shared = [uid for uid in direct["node_s"] if uid in dbt["node_s"]]
    overhead = {uid: dbt["node_s"][uid] - direct["node_s"][uid] for uid in shared}
    slowest = sorted(shared, key=lambda uid: -direct["node_s"][uid])[:SLOWEST_NODES]
    return {
        "startup_parse_s": dbt["startup_parse_s"],
        "before_first_node_s": dbt.get("before_first_node_s"),
        "execute_s": dbt["execute_s"],
        "compile_s_sum": dbt.get("compile_s_sum"),
        "execute_phase_s_sum": dbt.get("execute_s_sum"),
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


def _pair(
    raw: Path, folder: Path, env: dict[str, str], i: int, repeats: int, label: str, say: Say
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The `i`-th (dbt build, DuckDB alone) pair: dbt builds the warehouse `env` points at,
    DuckDB alone a fresh copy of `raw`."""
    step = f"{i} of {repeats}"
    say(f"{label}: dbt parse + dbt build ({step})")
    dbt = run_dbt(folder / f"dbt-{i}", env)
    say(
        f"{label}: dbt build {dbt['build_s']:.1f}s (execution {dbt['execute_s']:.1f}s, "
        f"startup+parse {dbt['startup_parse_s']:.1f}s; cold parse {dbt['parse_s']:.1f}s)"
    )
    direct_copy = folder / "direct" / "warehouse.duckdb"
    direct_copy.parent.mkdir()
    shutil.copy(raw, direct_copy)
    say(f"{label}: the same SQL directly in DuckDB ({step})")
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
    return pair, dbt, direct


def measure_dbt(
    warehouse: Path, folder: Path, env: dict[str, str], repeats: int, label: str, say: Say
) -> dict[str, Any]:
    """`repeats` pairs of (dbt build, the same SQL in DuckDB alone), each on fresh copies of the
    raw warehouse; the ratio is the median pair's (with an even count, the upper of the two
    middle pairs). The last pair's dbt build is left in `warehouse` for the steps after it."""
    raw = folder / "raw" / "warehouse.duckdb"
    raw.parent.mkdir()
    shutil.copy(warehouse, raw)
    pairs = []
    for i in range(1, repeats + 1):
        if i > 1:
            shutil.copy(raw, warehouse)
        pairs.append(_pair(raw, folder, env, i, repeats, label, say))
    shutil.rmtree(raw.parent)
    median, dbt, direct = sorted(pairs, key=lambda p: p[0]["ratio"])[len(pairs) // 2]
    return {
        "dbt": {k: v for k, v in dbt.items() if k != "node_s"},
        "duckdb": {k: v for k, v in direct.items() if k != "node_s"},
        "dbt_breakdown": dbt_breakdown(dbt, direct),
        "dbt_vs_duckdb_ratio": median["ratio"],
        "dbt_vs_duckdb_cpu_ratio": median["cpu_ratio"],
        "dbt_vs_duckdb_pairs": [pair for pair, _, _ in pairs],
    }
