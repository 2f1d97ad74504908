"""Spark beside DuckDB: each step's seconds, cost per row and growth at the Spark sizes, and a
paragraph computed from those numbers.

Rows are the size's orders (customers = orders / 10; scoring scores as many rows as there are
orders). With two sizes or more, each step's time is also split into a fixed part and a per-row
part (the line through the smallest and the largest size), which says what more rows, or more
machines, would change.
"""

from __future__ import annotations

import math
from typing import Any

from ml.bench.summary import get

ENGINES = ("duckdb", "spark")
ENGINE_NAMES = {"duckdb": "DuckDB", "spark": "Spark"}
#: The steps compared: name -> the keys of a run holding its seconds (training: one per task).
STEPS = {
    "simulate": ("simulate", "seconds"),
    "dbt build": ("dbt", "build_s"),
    "scoring xgboost": ("scoring", "models", "xgboost", "seconds"),
    "scoring champion": ("scoring", "models", "champion", "seconds"),
}
TRAIN = "train --fast "


def _seconds(run: dict[str, Any] | None, step: str) -> float | None:
    """A step's seconds in a run (None when not measured, failed, or the run is missing)."""
    if step.startswith(TRAIN):
        task = step.removeprefix(TRAIN)
        ok = get(run, "train", task, "status") == "ok"
        return get(run, "train", task, "seconds") if ok else None
    value = get(run, *STEPS[step])
    return float(value) if isinstance(value, int | float) else None


def line_fit(points: dict[int, float]) -> dict[str, float] | None:
    """seconds = fixed_s + us_per_row * rows / 1e6, through the smallest and largest size."""
    if len(points) < 2:
        return None
    small, big = min(points), max(points)
    per_row = (points[big] - points[small]) / (big - small)
    return {"fixed_s": points[small] - per_row * small, "us_per_row": per_row * 1e6}


def _engine_step(runs: dict[int, dict[str, Any]], sizes: list[int], step: str) -> dict[str, Any]:
    seconds = {n: _seconds(runs.get(n), step) for n in sizes}
    measured = {n: s for n, s in seconds.items() if s is not None}
    small, big = (sizes[0], sizes[-1]) if len(sizes) > 1 else (None, None)
    growth = None
    if small is not None and measured.get(small) and measured.get(big):
        growth = measured[big] / measured[small]
    return {
        "seconds": {str(n): s for n, s in seconds.items()},
        "us_per_row": {
            str(n): (s / n * 1e6 if s is not None else None) for n, s in seconds.items()
        },
        "growth": growth,
        "fit": line_fit(measured) if len(measured) == len(sizes) else None,
    }


def champion_is_xgboost(run: dict[str, Any] | None) -> bool:
    """True when a run's champion is its xgboost model (one scoring: the stand-in, or an xgboost
    champion)."""
    models = get(run, "scoring", "models") or {}
    return models.get("champion") == models.get("xgboost")


def _champion_is_xgboost(runs: dict[str, dict[int, dict[str, Any]]], sizes: list[int]) -> bool:
    return all(champion_is_xgboost(runs[e].get(n)) for e in ENGINES for n in sizes)


def compare_engines(
    duckdb_runs: dict[int, dict[str, Any]], spark_runs: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """Each step at the Spark sizes that ran (failed ones left out) on both engines: seconds,
    µs per row, growth from the smallest to the largest size, the fixed + per-row fit, the ratio
    Spark / DuckDB per size; and the paragraph that reads them."""
    sizes = sorted(n for n, run in spark_runs.items() if "error" not in run)
    runs = {"duckdb": duckdb_runs, "spark": spark_runs}
    tasks = sorted({t for n in sizes for t in (spark_runs[n].get("train") or {})})
    steps = []
    for step in [*STEPS, *(TRAIN + t for t in tasks)]:
        row: dict[str, Any] = {"step": step}
        for engine in ENGINES:
            row[engine] = _engine_step(runs[engine], sizes, step)
        ratios = {}
        for n in sizes:
            d, s = row["duckdb"]["seconds"][str(n)], row["spark"]["seconds"][str(n)]
            ratios[str(n)] = s / d if d and s is not None else None
        row["spark_over_duckdb"] = ratios
        if step == "scoring champion" and _champion_is_xgboost(runs, sizes):
            continue
        if any(row[e]["seconds"][str(n)] is not None for e in ENGINES for n in sizes):
            steps.append(row)
    out = {
        "sizes": sizes,
        "growth_sizes": [sizes[0], sizes[-1]] if len(sizes) > 1 else None,
        "steps": steps,
        "failed": {str(n): run["error"] for n, run in sorted(spark_runs.items()) if "error" in run},
    }
    out["paragraph"] = paragraph(out, duckdb_runs, spark_runs)
    return out


# -- the paragraph ----------------------------------------------------------------------------


def _num(value: float) -> str:
    """A number in a sentence: whole from 10, one decimal from 1, else 2 significant digits."""
    if abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 1 else f"{value:.2g}"


def _span(values: list[float]) -> str:
    """`3.1x` or `2.0-3.1x`."""
    lo, hi = min(values), max(values)
    return f"{_num(lo)}x" if math.isclose(lo, hi, rel_tol=0.05) else f"{_num(lo)}-{_num(hi)}x"


def _step(comparison: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in comparison["steps"] if s["step"] == name), None)


def _ratios(step: dict[str, Any] | None) -> list[float]:
    return [r for r in (step or {}).get("spark_over_duckdb", {}).values() if r is not None]


def _nodes(dbt: dict[str, Any] | None) -> int:
    return sum((dbt or {}).get("nodes", {}).values())


def nodes_s(dbt: dict[str, Any] | None) -> float | None:
    """Wall seconds of a dbt build from its first node to its end (the build less what came
    before the first node: starting dbt and, on Spark, a JVM and a session)."""
    dbt = dbt or {}
    build, first = dbt.get("build_s"), dbt.get("before_first_node_s")
    return build - first if build and first is not None else None


def _dbt_sentence(big: int, duckdb: dict[str, Any] | None, spark: dict[str, Any]) -> str | None:
    """Where Spark's dbt build spends its time at size `big`, beside DuckDB's."""
    dbt = spark.get("dbt") or {}
    first, build, running = dbt.get("before_first_node_s"), dbt.get("build_s"), nodes_s(dbt)
    if not (first and build and running and _nodes(dbt)):
        return None
    text = (
        f"Of Spark's {_num(build)} s dbt build at {big:,} orders, {_num(first)} s "
        f"({100 * first / build:.0f} %) passed before dbt ran its first node: starting dbt, a JVM "
        "and a Spark session, which every dbt command pays whatever the data"
    )
    duck = (duckdb or {}).get("dbt") or {}
    if duck.get("before_first_node_s") is not None:
        text += f" (DuckDB: {_num(duck['before_first_node_s'])} s)"
    text += (
        f". Its {_nodes(dbt)} nodes then took {_num(1000 * running / _nodes(dbt))} ms of wall "
        "time each"
    )
    if nodes_s(duck) and _nodes(duck):
        text += f" against {_num(1000 * nodes_s(duck) / _nodes(duck))} ms on DuckDB"
    return text + (
        ": Spark plans and optimises every query, asks the Hive metastore about every table it "
        "touches and writes every table as new Parquet files, costs that do not shrink with the "
        "data."
    )


def _fit_text(fit: dict[str, float]) -> str:
    return f"{_num(fit['fixed_s'])} s + {_num(fit['us_per_row'])} µs/row"


def _growth_sentence(comparison: dict[str, Any]) -> str | None:
    """Growth and the fixed + per-row split of the dbt build and the scoring."""
    if not comparison["growth_sizes"]:
        return None
    small, big = comparison["growth_sizes"]
    parts = []
    for name, said in (("dbt build", "the dbt build"), ("scoring xgboost", "scoring (xgboost)")):
        step = _step(comparison, name)
        if not step or step["spark"]["growth"] is None:
            continue
        text = f"{said} grew {_num(step['spark']['growth'])}x on Spark"
        if step["duckdb"]["growth"] is not None:
            text += f" and {_num(step['duckdb']['growth'])}x on DuckDB"
        if step["spark"]["fit"] and step["duckdb"]["fit"]:
            text += (
                f" (as fixed + per-row cost: Spark {_fit_text(step['spark']['fit'])}, DuckDB "
                f"{_fit_text(step['duckdb']['fit'])})"
            )
        parts.append(text)
    if not parts:
        return None
    return (
        f"From {small:,} to {big:,} orders ({big / small:.0f}x the rows) " + "; ".join(parts) + "."
    )


def _where_sentence(comparison: dict[str, Any]) -> str:
    """Where each engine wins, from the dbt build's fixed + per-row costs where there are two
    sizes (else in general terms)."""
    step = _step(comparison, "dbt build") or {}
    spark, duck = (step.get("spark") or {}).get("fit"), (step.get("duckdb") or {}).get("fit")
    elsewhere = (
        "Spark wins where one machine is not enough: its executors on more machines share the "
        "per-row work, and it works on data larger than one machine's memory and disk, which "
        "DuckDB cannot hold at all. local[2] on one machine measures neither, so that part is "
        "an estimate, not a measurement."
    )
    if not (spark and duck) or duck["us_per_row"] <= 0 or spark["us_per_row"] <= 0:
        return (
            "With fewer than two sizes on both engines, fixed and per-row costs cannot be told "
            "apart here. " + elsewhere
        )
    if spark["us_per_row"] > duck["us_per_row"]:
        machines = math.ceil(spark["us_per_row"] / duck["us_per_row"])
        return (
            "On one machine DuckDB wins: Spark's dbt build costs more per extra row as well as "
            "more up front, so more rows do not close the gap here. "
            + elsewhere.replace(
                "share the per-row work,",
                "share the per-row work (if it scaled linearly, about "
                f"{machines} machines like this one would bring its dbt build's per-row cost "
                "down to DuckDB's),",
            )
        )
    if spark["fixed_s"] > duck["fixed_s"]:
        rows = (spark["fixed_s"] - duck["fixed_s"]) / (duck["us_per_row"] - spark["us_per_row"])
        rows *= 1e6
        return (
            "Spark's per-row cost is at or below DuckDB's even here, so its larger fixed cost "
            f"would be paid back past about {rows:,.0f} orders on this machine; below that "
            "DuckDB wins. " + elsewhere
        )
    return "Spark was at least as fast as DuckDB at these sizes on this machine. " + elsewhere


def paragraph(
    comparison: dict[str, Any],
    duckdb_runs: dict[int, dict[str, Any]],
    spark_runs: dict[int, dict[str, Any]],
) -> str:
    """The honest reading of the numbers: how much slower (or faster) Spark was, where its time
    went, how it grew, and where each engine wins."""
    sizes = comparison["sizes"]
    if not sizes:
        return "Spark did not complete any size, so there is nothing to compare."
    where = f"{sizes[0]:,} orders" if len(sizes) == 1 else "these sizes"
    sentences = []
    dbt_ratios = _ratios(_step(comparison, "dbt build"))
    score_ratios = _ratios(_step(comparison, "scoring xgboost"))
    if dbt_ratios or score_ratios:
        said = []
        if dbt_ratios:
            said.append(f"{_span(dbt_ratios)} DuckDB's time for the dbt build")
        if score_ratios:
            said.append(f"{_span(score_ratios)} for scoring (the xgboost model)")
        sentences.append(f"On this machine Spark took {' and '.join(said)} at {where}.")
    big = sizes[-1]
    dbt = _dbt_sentence(big, duckdb_runs.get(big), spark_runs[big])
    growth = _growth_sentence(comparison)
    train = [s for s in comparison["steps"] if s["step"].startswith(TRAIN)]
    spark_train = [s["spark"]["seconds"][str(big)] for s in train]
    duck_train = [s["duckdb"]["seconds"][str(big)] for s in train]
    sentences += [s for s in (dbt, growth) if s]
    if train and None not in spark_train and None not in duck_train:
        sentences.append(
            f"Training {', '.join(s['step'].removeprefix(TRAIN) for s in train)} (--fast) took "
            f"{_num(sum(spark_train))} s on Spark "
            f"against {_num(sum(duck_train))} s on DuckDB at {big:,} orders: each worker starts "
            "a Spark session and reads its table through Spark before the same models fit."
        )
    sentences.append(_where_sentence(comparison))
    return " ".join(sentences)
