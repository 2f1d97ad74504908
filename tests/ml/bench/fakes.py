"""Fake benchmark results for the tests of the summary and the reports."""

from __future__ import annotations

from ml.bench.summary import check_targets, summarize


def fake_run(orders: int, dbt_s: float, score_s: float) -> dict:
    """What `bench_size` returns, reduced to what the summary reads."""
    return {
        "orders": orders,
        "customers": orders // 10,
        "simulate": {"seconds": 1.0, "rows_per_s": 3e6, "raw_rows": orders},
        "dbt": {"build_s": dbt_s},
        "duckdb": {"seconds": dbt_s / 2},
        "dbt_vs_duckdb_ratio": 2.0,
        "train": {"loan_repayment": {"seconds": 50.0, "status": "ok", "steps": []}},
        "scoring": {
            "models": {
                "xgboost": {
                    "model_name": "xgboost",
                    "seconds": score_s,
                    "rows_per_s": 1.2e6,
                    "peak_rss_mb": 900.0,
                    "scoring_path": "fast",
                },
                "champion": {
                    "model_name": "stacking",
                    "seconds": 2 * score_s,
                    "rows_per_s": 6e5,
                    "peak_rss_mb": 1500.0,
                    "scoring_path": "generic",
                },
            }
        },
    }


def fake_result(runs: dict[int, dict], **extra) -> dict:
    """What `run_bench` returns for DuckDB's `runs` (and `extra` keys, e.g. "spark")."""
    summary = summarize(runs)
    return {
        **summary,
        "summary": summary,
        "targets": check_targets(summary),
        "started_at": "2026-01-01 00:00:00",
        "finished_at": "2026-01-01 01:00:00",
        "command": "python -m scripts.bench",
        "seed": 42,
        "sizes": sorted(runs),
        "machine": {"cores": 2, "memory_gb": 8.0, "platform": "Linux", "python": "3.11"},
        "load_average_end": [1.0, 1.0, 1.0],
        "versions": {"duckdb": "2.0.0"},
        "workdir": None,
        "runs": {str(k): v for k, v in runs.items()},
        **extra,
    }
