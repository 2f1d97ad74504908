"""bench.png: each step's seconds against the number of orders, log-log (Spark's dashed)."""

from __future__ import annotations

from typing import Any

from ml.bench.summary import get
from ml.reports.figures import figure_png, new_figure


def _series(runs: dict[int, dict[str, Any]]) -> dict[str, list[float | None]]:
    sizes = sorted(runs)
    series: dict[str, list[float | None]] = {
        "simulate": [get(runs[s], "simulate", "seconds") for s in sizes],
        "dbt build": [get(runs[s], "dbt", "build_s") for s in sizes],
        "same SQL in DuckDB": [get(runs[s], "duckdb", "seconds") for s in sizes],
        "scoring (xgboost)": [
            get(runs[s], "scoring", "models", "xgboost", "seconds") for s in sizes
        ],
        "scoring (champion)": [
            get(runs[s], "scoring", "models", "champion", "seconds") for s in sizes
        ],
    }
    for task in sorted({t for s in sizes for t in (runs[s].get("train") or {})}):
        series[f"train --fast {task}"] = [
            get(runs[s], "train", task, "seconds")
            if get(runs[s], "train", task, "status") == "ok"
            else None
            for s in sizes
        ]
    return series


def plot_png(
    runs: dict[int, dict[str, Any]], spark_runs: dict[int, dict[str, Any]] | None = None
) -> bytes | None:
    """The PNG of the log-log plot (None when nothing was measured): DuckDB's steps, and with
    `spark_runs` Spark's dbt build, training and scoring, dashed."""
    sizes = sorted(runs)
    series = _series(runs)
    fig, ax = new_figure(figsize=(7.5, 4.8))
    drawn = 0
    lines = [(name, sizes, values, {}) for name, values in series.items()]
    ok = {n: r for n, r in (spark_runs or {}).items() if "error" not in r}
    spark = _series(ok) if ok else {}
    dashed = {"linestyle": "--", "marker": "s"}
    for name in ("dbt build", "scoring (xgboost)", *(k for k in spark if k.startswith("train"))):
        if name in spark:
            lines.append((f"Spark: {name}", sorted(ok), spark[name], dashed))
    for name, xs_all, values, style in lines:
        points = [(s, v) for s, v in zip(xs_all, values, strict=True) if v and v > 0]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        ax.plot(xs, ys, label=name, **{"marker": "o", **style})
        drawn += 1
    if not drawn:
        return None
    first = series["dbt build"][0]
    if len(sizes) > 1 and first:  # a linear-growth reference through the first dbt point
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
    return figure_png(fig)
