"""The headline numbers of a benchmark (the largest size's, growth from the next smaller size)
and the targets they are checked against."""

from __future__ import annotations

from typing import Any

#: The targets the report checks (at the largest size).
TARGETS = {
    "simulate_rows_per_s": (">=", 2_000_000),
    "dbt_vs_duckdb_ratio": ("<=", 1.3),
    "scoring_rows_per_s": (">=", 1_000_000),
    "scoring_peak_rss_mb": ("<=", 2048),
    "dbt_growth": ("<=", 11),
    "scoring_growth": ("<=", 11),
    "serve_xgboost_p99_ms": ("<=", 50),
    "serve_champion_p99_ms": ("<=", 150),
    "serve_batch_rows_per_s": (">=", 20_000),
}
#: The serving measurement the targets read: single-row p99 latency (with the reasons) with
#: SERVE_TARGET_LEVEL concurrent clients, and rows per second of 1,000-row requests of the deployed
#: champion without reasons (`explain=false`), at the best of the client levels. The rate with
#: reasons is reported beside it: exact SHAP of every row, not the prediction, bounds it.
SERVE_TARGET_LEVEL = 1


def get(run: dict[str, Any] | None, *keys: str) -> Any:
    """`run[k1][k2]...`, or None where a key is missing."""
    value: Any = run
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def growth(runs: dict[int, dict[str, Any]], *keys: str) -> float | None:
    """Time at the largest size over the time at the next smaller one."""
    sizes = sorted(runs)
    if len(sizes) < 2:
        return None
    big, small = get(runs[sizes[-1]], *keys), get(runs[sizes[-2]], *keys)
    return big / small if big and small else None


def summarize(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The headline numbers: the largest size's, and growth from the next smaller size."""
    largest = runs[max(runs)]
    xgb = get(largest, "scoring", "models", "xgboost") or {}
    champion = get(largest, "scoring", "models", "champion") or {}
    trained = largest.get("train") or {}
    train = {task: (r["seconds"] if r["status"] == "ok" else None) for task, r in trained.items()}
    return {
        "largest_orders": max(runs),
        "simulate_rows_per_s": get(largest, "simulate", "rows_per_s"),
        "dbt_build_s": get(largest, "dbt", "build_s"),
        "duckdb_direct_s": get(largest, "duckdb", "seconds"),
        "dbt_vs_duckdb_ratio": largest.get("dbt_vs_duckdb_ratio"),
        "dbt_vs_duckdb_cpu_ratio": largest.get("dbt_vs_duckdb_cpu_ratio"),
        "train_fast_s": train or None,
        "train_status": {t: r["status"] for t, r in trained.items()} or None,
        "scoring_model": xgb.get("model_name"),
        "scoring_path": xgb.get("scoring_path"),
        "scoring_rows_per_s": xgb.get("rows_per_s"),
        "scoring_rows_per_cpu_s": xgb.get("rows_per_cpu_s"),
        "scoring_peak_rss_mb": xgb.get("peak_rss_mb"),
        "scoring_champion_model": champion.get("model_name"),
        "scoring_champion_path": champion.get("scoring_path"),
        "scoring_champion_rows_per_s": champion.get("rows_per_s"),
        "scoring_champion_peak_rss_mb": champion.get("peak_rss_mb"),
        "dbt_growth": growth(runs, "dbt", "build_s"),
        "duckdb_growth": growth(runs, "duckdb", "seconds"),
        "scoring_growth": growth(runs, "scoring", "models", "xgboost", "seconds"),
        "scoring_champion_growth": growth(runs, "scoring", "models", "champion", "seconds"),
        "growth_sizes": sorted(runs)[-2:] if len(runs) > 1 else None,
        **_serving_summary(runs),
    }


def _serving_summary(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The serving headline numbers (from the size that measured the server)."""
    served = [r["serving"] for r in runs.values() if r.get("serving")]
    if not served:
        return {}
    models = served[0]["models"]
    levels = served[0]["levels"]
    level = SERVE_TARGET_LEVEL if SERVE_TARGET_LEVEL in levels else min(levels)

    def http(role: str, key: str) -> dict[str, Any]:
        return get(models, role, "http", key) or {}

    def best(role: str, kind: str) -> float | None:
        rates = [http(role, f"{kind}_{n}").get("rows_per_s") for n in served[0]["levels"]]
        return max((v for v in rates if v), default=None)

    return {
        "serve_champion_model": served[0].get("champion_model"),
        "serve_xgboost_p99_ms": http("xgboost", f"single_{level}").get("p99_ms"),
        "serve_champion_p99_ms": http("champion", f"single_{level}").get("p99_ms"),
        "serve_batch_rows_per_s": best("champion", "batch_no_reasons"),
        "serve_batch_reasons_rows_per_s": best("champion", "batch"),
        "serve_xgboost_batch_reasons_rows_per_s": best("xgboost", "batch"),
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
