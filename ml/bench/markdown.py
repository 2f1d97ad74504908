"""bench.md: the machine, the versions, the table of sizes, the targets, where the time goes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.bench.comparison import ENGINE_NAMES, ENGINES, champion_is_xgboost, nodes_s
from ml.bench.dbt_build import DBT_SELECTOR
from ml.bench.summary import get

#: A training task slower than this at the largest size is flagged in the report.
SLOW_TRAIN_S = 600
ROLES = ("xgboost", "champion")


def fmt(value: Any, digits: int = 1) -> str:
    """A number as the report shows it (thousands separated, `–` for none)."""
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


def path_text(run: dict[str, Any], trees: bool = True) -> str:
    """Which path a scoring run took: "fast path" or "generic path: <why>", and (with `trees`)
    how each xgboost member's trees were evaluated."""
    path = run.get("scoring_path") or get(run, "stats", "path") or "?"
    text = f"{path} path"
    reason = run.get("fallback_reason")
    if path != "fast" and reason:
        text += f": {reason}"
    compiled = run.get("compiled_trees") or {}
    if trees and compiled:
        text += "; xgboost trees: " + ", ".join(f"{k} {v}" for k, v in compiled.items())
    return text


def _header(result: dict[str, Any]) -> list[str]:
    machine = result["machine"]
    return [
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
    ]


def _train_cell(r: dict[str, Any] | None) -> str | None:
    if r is None:
        return None
    return f"{r['seconds']:,.0f}" + ("" if r["status"] == "ok" else f" ({r['status']})")


def _results(runs: dict[int, dict[str, Any]], png: Path | None) -> list[str]:
    sizes = sorted(runs)
    header = ["", *[f"{s:,} orders" for s in sizes]]
    table = [header, ["---"] * len(header)]

    def row(name: str, *keys: str, digits: int = 1) -> None:
        table.append([name, *[fmt(get(runs[s], *keys), digits) for s in sizes]])

    def cells(name: str, values: list[Any]) -> None:
        table.append([name, *[fmt(v) for v in values]])

    row("customers", "customers")
    row("raw rows landed", "simulate", "raw_rows")
    row("simulate s", "simulate", "seconds", digits=2)
    row("simulate raw rows/s", "simulate", "rows_per_s")
    row("dbt parse (full) s", "dbt", "parse_s")
    row("dbt build s", "dbt", "build_s")
    row("  of which startup + partial parse s", "dbt", "startup_parse_s")
    row("same SQL in DuckDB s", "duckdb", "seconds")
    row("dbt / DuckDB (wall)", "dbt_vs_duckdb_ratio", digits=2)
    row("dbt / DuckDB (CPU)", "dbt_vs_duckdb_cpu_ratio", digits=2)
    for task in sorted({t for s in sizes for t in (runs[s].get("train") or {})}):
        cells(f"train --fast {task} s", [_train_cell(get(runs[s], "train", task)) for s in sizes])
    for role in ROLES:
        models = {s: get(runs[s], "scoring", "models", role) for s in sizes}
        rate = [
            fmt(m["rows_per_s"]) + (f" ({m['model_name']})" if role == "champion" else "")
            if m
            else None
            for m in models.values()
        ]
        cells(f"scoring {role} rows/s", rate)
        cells(
            f"scoring {role} path",
            [path_text(m, trees=False) if m else None for m in models.values()],
        )
        row(f"scoring {role} rows/CPU-s", "scoring", "models", role, "rows_per_cpu_s")
        row(
            f"scoring {role} generic path rows/s",
            "scoring",
            "models",
            role,
            "generic",
            "rows_per_s",
        )
        row(f"scoring {role} peak RSS MB", "scoring", "models", role, "peak_rss_mb", digits=0)
    lines = ["## Results", "", *["| " + " | ".join(map(str, r)) + " |" for r in table], ""]
    if png is not None:
        lines += [f"![time against rows, log-log]({png.name})", ""]
    return lines


def _targets(result: dict[str, Any]) -> list[str]:
    summary = result["summary"]
    lines = [
        "## Targets (largest size)",
        "",
        "| metric | target | measured | met |",
        "|---|---|---|---|",
    ]
    for t in result["targets"]:
        met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
        lines.append(f"| {t['metric']} | {t['target']} | {fmt(t['value'], 2)} | {met} |")
    if summary.get("growth_sizes"):
        small, big = summary["growth_sizes"]
        lines += [
            "",
            f"Growth = time at {big:,} orders / time at {small:,} orders "
            f"({big / small:.0f}x the rows): dbt {fmt(summary['dbt_growth'], 2)}, "
            f"DuckDB alone {fmt(summary['duckdb_growth'], 2)}, scoring xgboost "
            f"{fmt(summary['scoring_growth'], 2)}, scoring champion "
            f"{fmt(summary['scoring_champion_growth'], 2)}.",
        ]
    return lines


def _dbt(largest: dict[str, Any]) -> list[str]:
    bd = largest.get("dbt_breakdown") or {}
    pairs = largest.get("dbt_vs_duckdb_pairs") or []
    every = "; ".join(
        f"{p['dbt_build_s']:.1f} s / {p['duckdb_s']:.1f} s = {p['ratio']:.2f}" for p in pairs
    )
    lines = [
        "",
        "## Where dbt's time goes (largest size)",
        "",
        f"- {len(pairs)} (dbt build, DuckDB alone) pairs, each on fresh copies of the raw "
        "warehouse, one after the other; dbt_vs_duckdb_ratio is the median pair's, and the "
        f"numbers below are that pair's. Every pair: {every}.",
        f"- `dbt build` wall {fmt(get(largest, 'dbt', 'build_s'))} s: startup + partial parse "
        f"{fmt(bd.get('startup_parse_s'))} s, node execution {fmt(bd.get('execute_s'))} s "
        f"(dbt's elapsed_time) with {get(largest, 'dbt', 'threads') or '?'} threads "
        f"(nodes: {get(largest, 'dbt', 'nodes')}).",
        f"- dbt's own clock (run_results.json): {fmt(bd.get('before_first_node_s'))} s from "
        "the invocation to the first node; the nodes spent "
        f"{fmt(bd.get('compile_s_sum'))} s compiling and "
        f"{fmt(bd.get('execute_phase_s_sum'))} s executing (summed over nodes and threads).",
        f"- The replayed nodes took {fmt(bd.get('dbt_node_s_sum'))} s inside dbt and "
        f"{fmt(bd.get('direct_node_s_sum'))} s in DuckDB alone: "
        f"{fmt(bd.get('node_overhead_s'))} s more "
        f"({fmt(bd.get('node_overhead_per_node_ms'), 0)} ms a node): dbt's per-node work "
        "(compiling, materialising via a temporary relation and renames, adapter calls, events "
        "and logs) and, with more than one thread, nodes running side by side that share the "
        "cores (each takes longer, the wall time does not add up).",
        f"- The build is `dbt build --selector {DBT_SELECTOR}` (dbt_project/selectors.yml), as "
        "`make dbt-build` runs it: before_training without dbt's unit tests, as dbt Labs "
        "recommends (their inputs are fixed fixtures); `make test` runs them on every change.",
        f"- A full parse (a fresh target/ or a changed profile) costs "
        f"{fmt(get(largest, 'dbt', 'parse_s'))} s more; `make dbt-build` keeps target/ "
        "between runs, so it partially parses.",
        "",
        "Slowest nodes (seconds in dbt / in DuckDB alone):",
        "",
        "| node | dbt s | DuckDB s |",
        "|---|---|---|",
        *[f"| {n['node']} | {n['dbt_s']} | {n['duckdb_s']} |" for n in bd.get("slowest", [])],
    ]
    errors = get(largest, "duckdb", "errors")
    if errors:
        lines += ["", f"Statements that failed in DuckDB alone: {errors}"]
    return lines


def _training(largest: dict[str, Any]) -> list[str]:
    if not largest.get("train"):
        return []
    lines = ["", "## Training steps (largest size)", ""]
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
    return lines


def _scoring(largest: dict[str, Any]) -> list[str]:
    lines = ["", "## Scoring (largest size)", ""]
    for role in ROLES:
        r = get(largest, "scoring", "models", role)
        if not r:
            continue
        st = r["stats"]
        stages = ", ".join(
            f"{k} {st['stage_s'][k]:.1f} s ({st['stage_cpu_s'][k]:.1f} CPU-s)"
            for k in st["stage_s"]
        )
        members = ", ".join(f"{k} {v:.1f} s" for k, v in st["estimator_s"].items())
        stand_in = ", stand-in: no training" if r.get("stand_in") else ""
        lines += [
            f"- {role}: `{r['model_name']}` ({r['model_class']}{stand_in}), "
            f"{r['rows']:,} rows in {r['seconds']:.1f} s = {fmt(r['rows_per_s'])} rows/s "
            f"({fmt(r['rows_per_cpu_s'])} rows per CPU-second); "
            f"peak RSS {r['peak_rss_mb']:,.0f} MB ({r['rss_after_load_mb'] or 0:,.0f} MB after "
            f"imports and loading the model in {r['load_s']:.1f} s).",
            f"  Scoring path: {path_text(r)}.",
            f"  Stages: {stages}; background writer {st['writer_s']:.1f} s. Estimators: {members}.",
        ]
        generic = r.get("generic")
        if generic:
            lines.append(
                f"  Generic path run: {fmt(generic['rows_per_s'])} rows/s; scoring path: "
                f"{path_text(generic)}."
            )
        if r.get("profile"):
            lines += ["", "  ```", *["  " + x for x in r["profile"].splitlines()[:40]], "  ```"]
    return lines


def _serving(runs: dict[int, dict[str, Any]]) -> list[str]:
    """The server's table: latency of single rows and rows per second of 1,000-row bodies, with
    and without the reasons, per model and number of clients, and in-process."""
    sized = [(n, r["serving"]) for n, r in sorted(runs.items()) if r.get("serving")]
    if not sized:
        return []
    orders, served = sized[0]
    batch = f"{served.get('batch_rows', 1000):,}-row"
    lines = [
        "",
        f"## Serving ({orders:,} orders; `python -m ml.serve`, one worker, clients on loopback)",
        "",
        f"Task {served['task']}; the server answered /healthz {served.get('startup_s', 0):.1f} s "
        f"after it started and held {fmt(served.get('server_rss_mb'), 0)} MiB with both models "
        "loaded. Single rows and the first batch column carry the decision and its "
        "reasons (exact SHAP of every row); the last column asks `explain=false`.",
        "",
        f"| model | clients | single row p50 / p95 / p99 ms | single rows/s | {batch} p50 ms "
        f"| {batch} rows/s | {batch} rows/s, no reasons |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for role, measured in served["models"].items():
        for level in [*served["levels"], "in-process"]:
            if level == "in-process":
                one, many, bare = (
                    measured["in_process"].get(k) or {}
                    for k in ("single", "batch", "batch_no_reasons")
                )
            else:
                one, many, bare = (
                    measured["http"].get(f"{k}_{level}") or {}
                    for k in ("single", "batch", "batch_no_reasons")
                )
            name = role if role != "champion" else f"champion ({served.get('champion_model')})"
            lines.append(
                f"| {name} | {level} | {fmt(one.get('p50_ms'))} / {fmt(one.get('p95_ms'))} / "
                f"{fmt(one.get('p99_ms'))} | {fmt(one.get('rows_per_s'), 0)} | "
                f"{fmt(many.get('p50_ms'))} | {fmt(many.get('rows_per_s'), 0)} | "
                f"{fmt(bare.get('rows_per_s'), 0)} |"
            )
    return lines


def _engine_table(comparison: dict[str, Any]) -> list[str]:
    """One table: each step on DuckDB, on Spark and Spark / DuckDB, per size: seconds and µs per
    row; growth from the smallest to the largest size."""
    sizes = comparison["sizes"]
    header = ["step", "engine"]
    for n in sizes:
        header += [f"{n:,} orders s", "µs/row"]
    if comparison["growth_sizes"]:
        small, big = comparison["growth_sizes"]
        header.append(f"growth ({big / small:.0f}x rows)")
    table = [header, ["---"] * len(header)]
    for step in comparison["steps"]:
        for engine in ENGINES:
            row = [step["step"], ENGINE_NAMES[engine]]
            for n in sizes:
                row += [
                    fmt(step[engine]["seconds"][str(n)]),
                    fmt(step[engine]["us_per_row"][str(n)]),
                ]
            if comparison["growth_sizes"]:
                row.append(fmt(step[engine]["growth"], 2))
            table.append(row)
        ratio = [step["step"], "Spark / DuckDB"]
        for n in sizes:
            value = step["spark_over_duckdb"][str(n)]
            ratio += [f"{value:,.1f}x" if value is not None else "–", ""]
        if comparison["growth_sizes"]:
            ratio.append("")
        table.append(ratio)
    return ["| " + " | ".join(map(str, r)) + " |" for r in table]


def _spark(result: dict[str, Any]) -> list[str]:
    """The Spark section: the table beside DuckDB, the paragraph, where Spark's time went."""
    spark = result.get("spark")
    if not spark:
        return []
    comparison = spark["comparison"]
    versions = result.get("versions", {})
    lines = [
        "",
        "## Spark beside DuckDB",
        "",
        f"Spark `{spark['master']}` (pyspark {versions.get('pyspark', '?')}, dbt-spark "
        f"{versions.get('dbt-spark', '?')}): each size in a fresh lakehouse (Parquet tables, a "
        "Derby metastore), the same steps as on DuckDB, each in a process of its own (the "
        "metastore admits one process at a time), so each step starts its own JVM. One dbt "
        "build per size (no DuckDB-alone pairs); scoring is distributed (`mapInArrow`). "
        "simulate's seconds include starting the Spark session (landing the tables opens the "
        "lakehouse), scoring's do not (its worker's whole time is listed below), training's are "
        "the worker's. The scoring champion is left out where it is the xgboost model. No "
        "targets: these numbers describe, they do not gate. µs/row = seconds / orders.",
        "",
    ]
    if comparison["sizes"]:
        lines += [*_engine_table(comparison), ""]
    lines.append(comparison["paragraph"])
    for orders, error in comparison["failed"].items():
        lines += ["", f"Spark failed at {int(orders):,} orders: `{error.splitlines()[0]}`"]
    for orders in comparison["sizes"]:
        run = spark["runs"][str(orders)]
        dbt = run.get("dbt") or {}
        lines += [
            "",
            f"At {orders:,} orders on Spark: dbt build {fmt(dbt.get('build_s'))} s "
            f"({fmt(dbt.get('before_first_node_s'))} s before the first node, "
            f"{fmt(nodes_s(dbt))} s from there running {sum((dbt.get('nodes') or {}).values())} "
            "nodes); slowest nodes: "
            + "; ".join(f"{n['node']} {n['dbt_s']:.1f} s" for n in dbt.get("slowest", [])[:5])
            + ".",
        ]
        for role in ROLES:
            r = get(run, "scoring", "models", role)
            if r and not (role == "champion" and champion_is_xgboost(run)):
                lines.append(
                    f"- scoring {role} `{r['model_name']}`: {r['rows']:,} rows in "
                    f"{r['seconds']:.1f} s ({fmt(r['rows_per_s'])} rows/s, "
                    f"{path_text(r, trees=False)}); "
                    f"the worker {fmt(r.get('process_s'))} s with its Spark session; peak RSS "
                    f"{fmt(r.get('peak_rss_mb'), 0)} MB in Python + "
                    f"{fmt(r.get('engine_peak_rss_mb'), 0)} MB in the JVM and its workers."
                )
    return lines


def markdown(result: dict[str, Any], png: Path | None) -> str:
    """bench.md: machine, versions, the table of sizes, targets, where the time goes."""
    runs = {int(k): v for k, v in result["runs"].items()}
    largest = runs[max(runs)]
    lines = [
        *_header(result),
        *_results(runs, png),
        *_targets(result),
        *_dbt(largest),
        *_training(largest),
        *_scoring(largest),
        *_serving(runs),
        *_spark(result),
        "",
    ]
    return "\n".join(lines)
