"""ml.bench.comparison and the report's Spark section, from synthetic results (no Spark run)."""

from __future__ import annotations

import json

import pytest

from ml.bench.comparison import compare_engines, line_fit
from ml.bench.markdown import markdown
from ml.bench.reports import write_reports
from ml.bench.summary import TARGETS
from tests.ml.bench.fakes import fake_result, fake_run

NODES = {"model": 16, "seed": 1, "test": 83, "unit_test": 0}  # 100 nodes


def _run(orders: int, dbt_s: float, score_s: float, first_s: float) -> dict:
    run = fake_run(orders, dbt_s, score_s)
    run["dbt"].update(before_first_node_s=first_s, nodes=NODES, execute_s=dbt_s - first_s)
    run["dbt"]["slowest"] = [{"node": "stg_customers", "dbt_s": 5.0}]
    return run


def _duckdb() -> dict[int, dict]:
    return {
        100_000: _run(100_000, 10.0, 1.0, 1.0),
        1_000_000: _run(1_000_000, 40.0, 4.0, 1.0),
        10_000_000: _run(10_000_000, 300.0, 40.0, 1.0),
    }


def _spark() -> dict[int, dict]:
    runs = {
        100_000: _run(100_000, 100.0, 10.0, 15.0),
        1_000_000: _run(1_000_000, 200.0, 20.0, 15.0),
    }
    for orders, run in runs.items():
        run["engine"] = "spark"
        run["train"]["loan_repayment"]["seconds"] = 70.0 if orders == 100_000 else 90.0
        for model in run["scoring"]["models"].values():
            model.update(scoring_path="distributed", rows=orders, process_s=30.0)
    return runs


def test_each_step_per_size_cost_per_row_growth_and_ratio() -> None:
    comparison = compare_engines(_duckdb(), _spark())
    assert comparison["sizes"] == [100_000, 1_000_000]
    assert comparison["growth_sizes"] == [100_000, 1_000_000]
    steps = {s["step"]: s for s in comparison["steps"]}
    assert list(steps) == [
        "simulate",
        "dbt build",
        "scoring xgboost",
        "scoring champion",
        "train --fast loan_repayment",
    ]
    dbt = steps["dbt build"]
    # DuckDB's 10M size is not a Spark size: it is not compared
    assert dbt["duckdb"]["seconds"] == {"100000": 10.0, "1000000": 40.0}
    assert dbt["spark"]["us_per_row"] == {"100000": pytest.approx(1000.0), "1000000": 200.0}
    assert dbt["spark"]["growth"] == pytest.approx(2.0)
    assert dbt["duckdb"]["growth"] == pytest.approx(4.0)
    assert dbt["spark_over_duckdb"] == {"100000": 10.0, "1000000": 5.0}
    fit = dbt["spark"]["fit"]
    assert fit["us_per_row"] == pytest.approx(100 / 0.9)
    assert fit["fixed_s"] == pytest.approx(100 - 100 / 9)
    train = steps["train --fast loan_repayment"]
    assert train["spark_over_duckdb"] == {"100000": 1.4, "1000000": 1.8}
    json.dumps(comparison)  # bench.json holds it as it is


def test_the_paragraph_reads_the_numbers() -> None:
    text = compare_engines(_duckdb(), _spark())["paragraph"]
    said = (
        "Spark took 5.0-10x DuckDB's time for the dbt build and 5.0-10x for scoring",
        # the fixed cost before the first node, and the time per node beside DuckDB's
        "Of Spark's 200 s dbt build at 1,000,000 orders, 15 s (8 %)",
        "(DuckDB: 1.0 s)",
        "100 nodes then took 1,850 ms of wall time each against 390 ms on DuckDB",
        "the dbt build grew 2.0x on Spark and 4.0x on DuckDB",
        "Spark 89 s + 111 µs/row, DuckDB 6.7 s + 33 µs/row",
        "scoring (xgboost) grew 2.0x on Spark",
        # Spark costs more per row here: more machines (4 like this one) or more data
        "On one machine DuckDB wins",
        "about 4 machines like this one",
        "larger than one machine's memory and disk",
        "Training loan_repayment (--fast) took 90 s on Spark against 50 s on DuckDB",
    )
    for sentence in said:
        assert sentence in text


def test_a_cheaper_spark_row_pays_back_its_fixed_cost() -> None:
    spark = _spark()
    spark[1_000_000]["dbt"]["build_s"] = 120.0  # 22 µs/row against DuckDB's 33
    text = compare_engines(_duckdb(), spark)["paragraph"]
    assert "would be paid back past about" in text and "DuckDB wins" in text


def test_one_size_has_no_growth_nor_fit() -> None:
    spark = {100_000: _spark()[100_000]}
    comparison = compare_engines(_duckdb(), spark)
    assert comparison["growth_sizes"] is None
    dbt = next(s for s in comparison["steps"] if s["step"] == "dbt build")
    assert dbt["spark"]["growth"] is None and dbt["spark"]["fit"] is None
    assert "fixed and per-row costs cannot be told apart" in comparison["paragraph"]
    assert "at 100,000 orders" in comparison["paragraph"]


def test_a_failed_spark_size_is_listed_not_compared() -> None:
    spark = _spark()
    spark[1_000_000] = {"orders": 1_000_000, "engine": "spark", "error": "dbt build failed\nx"}
    comparison = compare_engines(_duckdb(), spark)
    assert comparison["sizes"] == [100_000]
    assert comparison["failed"] == {"1000000": "dbt build failed\nx"}
    none = compare_engines(_duckdb(), {1_000_000: spark[1_000_000]})
    assert none["steps"] == [] and "did not complete any size" in none["paragraph"]


def test_the_champion_is_left_out_where_it_is_the_xgboost_model() -> None:
    duckdb, spark = _duckdb(), _spark()
    for run in [*duckdb.values(), *spark.values()]:
        models = run["scoring"]["models"]
        models["champion"] = models["xgboost"]
    steps = [s["step"] for s in compare_engines(duckdb, spark)["steps"]]
    assert "scoring xgboost" in steps and "scoring champion" not in steps


def test_line_fit() -> None:
    assert line_fit({10: 3.0}) is None
    fit = line_fit({1_000_000: 2.0, 2_000_000: 3.0})
    assert fit == {"fixed_s": pytest.approx(1.0), "us_per_row": pytest.approx(1.0)}


def _result(spark: dict[int, dict] | None) -> dict:
    runs = _duckdb()
    runs[10_000_000].update(train={}, scoring={"models": {}})  # its sections are tested elsewhere
    section = None
    if spark is not None:
        section = {
            "sizes": sorted(spark),
            "master": "local[2]",
            "runs": {str(k): v for k, v in spark.items()},
            "failed": [],
            "comparison": compare_engines(runs, spark),
        }
    result = fake_result(runs, spark=section)
    result["versions"].update({"pyspark": "4.3.0", "dbt-spark": "1.11.0"})
    return result


def test_bench_md_has_the_spark_table_beside_duckdb(tmp_path) -> None:
    result = _result(_spark())
    _, md_path, png = write_reports(result, tmp_path)
    md = md_path.read_text()
    shown = (
        "## Spark beside DuckDB",
        "Spark `local[2]` (pyspark 4.3.0",
        "| step | engine | 100,000 orders s | µs/row | 1,000,000 orders s | µs/row | growth "
        "(10x rows) |",
        "| dbt build | DuckDB | 10.0 | 100.0 | 40.0 | 40.0 | 4.00 |",
        "| dbt build | Spark | 100.0 | 1,000 | 200.0 | 200.0 | 2.00 |",
        "| dbt build | Spark / DuckDB | 10.0x |  | 5.0x |  |  |",
        "On one machine DuckDB wins",
        "15.0 s before the first node, 185.0 s from there running 100 nodes",
        "the worker 30.0 s with its Spark session",
    )
    for text in shown:
        assert text in md
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"
    # the targets are DuckDB's, unchanged
    assert {t["metric"] for t in result["targets"]} == set(TARGETS)
    assert md.count("| dbt_growth | <= 11 |") == 1


def test_without_spark_sizes_there_is_no_spark_section() -> None:
    assert "Spark" not in markdown(_result(None), None)
