"""Every measurement of one size, in a fresh warehouse: simulate, dbt against DuckDB alone,
training, scoring."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.bench.dbt_vs_duckdb import measure_dbt
from ml.bench.options import ORDERS_PER_CUSTOMER, BenchOptions
from ml.bench.process import base_env
from ml.bench.scoring import SCORING_INPUT, build_scoring_input, run_scoring, scoring_models
from ml.bench.simulate import run_simulate
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
    profiled run at the largest size with --profile."""
    warehouse = Path(env["WAREHOUSE_PATH"])
    target = f"bench.scored_{role}"
    result = run_scoring(warehouse, model, target, env, folder, batch_rows=options.batch_rows)
    result["role"] = role
    if orders <= options.generic_max_rows:
        generic = run_scoring(
            warehouse, model, target, env, folder, fast=False, batch_rows=options.batch_rows
        )
        result["generic"] = {k: v for k, v in generic.items() if k != "profile"}
    if options.profile and orders == max(options.sizes):
        profiled = run_scoring(
            warehouse, model, target, env, folder, batch_rows=options.batch_rows, profile=True
        )
        result["profile"] = profiled["profile"]
    extra = ""
    if "generic" in result and result["generic"]["rows_per_s"]:
        extra = f" (generic path {result['generic']['rows_per_s']:,.0f} rows/s)"
    say(
        f"{orders:,} orders: {role} {model['model_name']}: {result['rows_per_s']:,.0f} rows/s "
        f"on the {result['scoring_path']} path, peak RSS {result['peak_rss_mb']:,.0f} MB{extra}"
    )
    return result


def _score(
    orders: int, options: BenchOptions, env: dict[str, str], folder: Path, say: Say
) -> dict[str, Any]:
    label = f"{orders:,} orders"
    warehouse = Path(env["WAREHOUSE_PATH"])
    say(f"{label}: building {SCORING_INPUT} ({orders:,} rows)")
    scoring: dict[str, Any] = {"input": build_scoring_input(warehouse, orders), "models": {}}
    models = scoring_models(warehouse, folder, options.seed)
    for role, model in models.items():
        if role != "champion" and model is models["champion"]:
            scoring["models"][role] = scoring["models"]["champion"]
            continue
        say(f"{label}: scoring {orders:,} rows with the {role} ({model['model_name']})")
        scoring["models"][role] = _score_model(orders, role, model, options, env, folder, say)
    return scoring


def bench_size(orders: int, options: BenchOptions, workdir: Path, say: Say) -> dict[str, Any]:
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
    sim = run_simulate(customers, options.seed, warehouse)
    out["simulate"] = sim
    say(
        f"{label}: simulated {sim['raw_rows']:,} raw rows in {sim['seconds']:.1f}s "
        f"({sim['rows_per_s']:,.0f} rows/s)"
    )
    out.update(measure_dbt(warehouse, folder, env, options.dbt_repeats, label, say))
    out["train"] = {} if options.skip_train else _train(options, env, folder, label, say)
    out["scoring"] = _score(orders, options, env, folder, say)
    size_mb = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    out["disk_mb"] = round(size_mb, 1)
    if not options.keep:
        shutil.rmtree(folder)
    return out
