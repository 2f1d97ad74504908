"""ml.bench.summary: the headline numbers, growth between the two largest sizes, the targets."""

from __future__ import annotations

import pytest

from ml.bench.summary import TARGETS, check_targets, get, summarize
from tests.ml.bench.fakes import fake_run


def test_summary_growth_and_targets() -> None:
    runs = {
        1_000_000: fake_run(1_000_000, 10.0, 1.0),
        10_000_000: fake_run(10_000_000, 80.0, 9.0),
    }
    summary = summarize(runs)
    assert summary["dbt_growth"] == pytest.approx(8.0)
    assert summary["scoring_growth"] == pytest.approx(9.0)
    assert summary["scoring_champion_growth"] == pytest.approx(9.0)
    assert summary["growth_sizes"] == [1_000_000, 10_000_000]
    assert summary["train_fast_s"] == {"loan_repayment": 50.0}
    assert summary["train_status"] == {"loan_repayment": "ok"}
    assert summary["scoring_path"] == "fast" and summary["scoring_champion_path"] == "generic"
    met = {t["metric"]: t["met"] for t in check_targets(summary)}
    assert set(met) == set(TARGETS)
    assert met["simulate_rows_per_s"] and met["scoring_rows_per_s"] and met["dbt_growth"]
    assert met["dbt_vs_duckdb_ratio"] is False


def test_one_size_has_no_growth_and_a_failed_task_no_time() -> None:
    run = fake_run(3000, 5.0, 0.5)
    run["train"]["loan_repayment"]["status"] = "timeout"
    summary = summarize({3000: run})
    assert summary["dbt_growth"] is None and summary["growth_sizes"] is None
    assert summary["train_fast_s"] == {"loan_repayment": None}
    met = {t["metric"]: t["met"] for t in check_targets(summary)}
    assert met["dbt_growth"] is None and met["scoring_peak_rss_mb"] is True


def test_get_walks_nested_keys() -> None:
    assert get({"a": {"b": 1}}, "a", "b") == 1
    assert get({"a": {"b": 1}}, "a", "c") is None and get(None, "a") is None
