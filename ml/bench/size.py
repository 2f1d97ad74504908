"""Every measurement of one size, in a fresh warehouse: simulate, dbt against DuckDB alone,
training, scoring; or, on Spark, in a fresh lakehouse: simulate, dbt build, training, scoring
(no DuckDB-alone pairs, no generic-path or profiled scoring), every step in a process of its
own (`ml.bench.step_worker`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.bench.dbt_build import run_dbt
from ml.bench.dbt_vs_duckdb import SLOWEST_NODES, measure_dbt
from ml.bench.options import ORDERS_PER_CUSTOMER, BenchOptions
from ml.bench.process import base_env
from ml.bench.scoring import SCORING_INPUT, run_scoring
from ml.bench.serving import bench_serving
from ml.bench.step_worker import run_steps
from ml.bench.training import run_train

Say = Callable[[str], None]


def _train(options: BenchOptions, env: dict[str, str], folder: Path, label: str, say: Say):
    out = {}
    for task in options.tasks:
        say(f"{label}: training {task} (--fast)")
        result = run_train(task, options.seed, env, folder, options.train_timeout or None)
        out[task] = result
        say(f"{label}: {task} {result['status']} in {result['seconds']:.0f}s")
    return out


def _score_model(
    orders: int,
    role: str,
    model: dict[str, Any],
    options: BenchOptions,
    env: dict[str, str],
    folder: Path,
    say: Say,
) -> dict[str, Any]:
    """One model's scoring runs: the fast path, the generic path up to --generic-max-rows, and a
    profiled run at the largest size with --profile (those two on DuckDB only)."""
    warehouse = Path(env["WAREHOUSE_PATH"])
    duckdb = env["WAREHOUSE_ENGINE"] == "duckdb"
    target = f"bench.scored_{role}"
    result = run_scoring(warehouse, model, target, env, folder, batch_rows=options.batch_rows)
    result["role"] = role
    if duckdb and orders <= options.generic_max_rows:
        generic = run_scoring(
            warehouse, model, target, env, folder, fast=False, batch_rows=options.batch_rows
        )
        result["generic"] = {k: v for k, v in generic.items() if k != "profile"}
    if duckdb and options.profile and orders == max(options.sizes):
        profiled = run_scoring(
            warehouse, model, target, env, folder, batch_rows=options.batch_rows, profile=True
        )
        result["profile"] = profiled["profile"]
    extra = ""
    if "generic" in result and result["generic"]["rows_per_s"]:
        extra = f" (generic path {result['generic']['rows_per_s']:,.0f} rows/s)"
    say(
        f"{_label(orders, env)}: {role} {model['model_name']}: {result['rows_per_s']:,.0f} rows/s "
        f"on the {result['scoring_path']} path, peak RSS {result['peak_rss_mb']:,.0f} MB{extra}"
    )
    return result


def _score(
    orders: int, options: BenchOptions, env: dict[str, str], folder: Path, say: Say
) -> dict[str, Any]:
    label = _label(orders, env)
    warehouse = str(env["WAREHOUSE_PATH"])
    say(f"{label}: building {SCORING_INPUT} ({orders:,} rows)")
    models_args = {"warehouse": warehouse, "workdir": str(folder), "seed": options.seed}
    (built, models), process = run_steps(
        env["WAREHOUSE_ENGINE"],
        [
            ("scoring_input", {"warehouse": warehouse, "rows": orders}),
            ("scoring_models", models_args),
        ],
        env,
        folder,
        "scoring-setup",
    )
    if process is not None:
        built["setup_process_s"] = process["process_s"]
    scoring: dict[str, Any] = {"input": built, "models": {}}
    for role, model in models.items():
        if role != "champion" and model == models["champion"]:
            scoring["models"][role] = scoring["models"]["champion"]
            continue
        say(f"{label}: scoring {orders:,} rows with the {role} ({model['model_name']})")
        scoring["models"][role] = _score_model(orders, role, model, options, env, folder, say)
    return scoring


def _label(orders: int, env: dict[str, str]) -> str:
    """How progress lines name a size: "100,000 orders" (DuckDB), "100,000 orders on Spark"."""
    engine = env["WAREHOUSE_ENGINE"]
    return f"{orders:,} orders" + ("" if engine == "duckdb" else f" on {engine.title()}")


def _simulate(orders: int, options: BenchOptions, env: dict[str, str], folder: Path, say: Say):
    customers = max(orders // ORDERS_PER_CUSTOMER, 1)
    label = _label(orders, env)
    say(f"{label}: simulating {customers:,} customers")
    args = {"customers": customers, "seed": options.seed, "warehouse": env["WAREHOUSE_PATH"]}
    (sim,), process = run_steps(
        env["WAREHOUSE_ENGINE"], [("simulate", args)], env, folder, "simulate"
    )
    sim.update(process or {})
    say(
        f"{label}: simulated {sim['raw_rows']:,} raw rows in {sim['seconds']:.1f}s "
        f"({sim['rows_per_s']:,.0f} rows/s)"
    )
    return sim


def _dbt_build(env: dict[str, str], folder: Path, label: str, say: Say) -> dict[str, Any]:
    """One `dbt parse` + `dbt build` (no DuckDB-alone pairs): dbt's timings, its slowest nodes."""
    say(f"{label}: dbt parse + dbt build")
    dbt = run_dbt(folder / "dbt", env)
    node_s = dbt.pop("node_s")
    slowest = sorted(node_s, key=lambda uid: -node_s[uid])[:SLOWEST_NODES]
    dbt["slowest"] = [
        {"node": uid.split(".", 2)[-1], "dbt_s": round(node_s[uid], 3)} for uid in slowest
    ]
    say(
        f"{label}: dbt build {dbt['build_s']:.1f}s (execution {dbt['execute_s']:.1f}s, "
        f"before the first node {dbt['before_first_node_s'] or 0:.1f}s)"
    )
    return {"dbt": dbt}


def bench_size(
    orders: int, options: BenchOptions, workdir: Path, say: Say, engine: str = "duckdb"
) -> dict[str, Any]:
    """Every measurement of one size, in a fresh warehouse (DuckDB) or lakehouse (Spark) under
    `workdir`."""
    duckdb = engine == "duckdb"
    folder = workdir / (f"orders-{orders}" if duckdb else f"{engine}-orders-{orders}")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    warehouse = folder / ("warehouse.duckdb" if duckdb else "lakehouse")
    env = base_env(warehouse, folder / "artifacts", engine)
    label = _label(orders, env)
    out: dict[str, Any] = {"orders": orders, "customers": max(orders // ORDERS_PER_CUSTOMER, 1)}
    if not duckdb:
        out["engine"] = engine
    out["simulate"] = _simulate(orders, options, env, folder, say)
    if duckdb:
        out.update(measure_dbt(warehouse, folder, env, options.dbt_repeats, label, say))
    else:
        out.update(_dbt_build(env, folder, label, say))
    out["train"] = {} if options.skip_train else _train(options, env, folder, label, say)
    out["scoring"] = _score(orders, options, env, folder, say)
    trained_loans = (out["train"].get("loan_repayment") or {}).get("status") == "ok"
    if duckdb and options.serving and trained_loans and orders == min(options.sizes):
        say(f"{label}: the HTTP server (ml.serve) under load")
        out["serving"] = bench_serving(folder, env, say)
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    out["disk_mb"] = round(size_mb, 1)
    if not options.keep:
        shutil.rmtree(folder)
    return out
