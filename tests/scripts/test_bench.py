"""scripts.bench: the whole benchmark at a tiny size (no training), on DuckDB and (marked spark)
beside Spark, and its command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ml.bench.dbt_build import DBT_SELECTOR
from ml.bench.summary import TARGETS
from ml.core.cli import run
from scripts import bench
from tests.conftest import run_cli

TOP_LEVEL_NUMBERS = (
    "simulate_rows_per_s",
    "dbt_build_s",
    "duckdb_direct_s",
    "dbt_vs_duckdb_ratio",
    "scoring_rows_per_s",
    "scoring_peak_rss_mb",
    "scoring_champion_rows_per_s",
    "scoring_champion_peak_rss_mb",
)


def _bench(root: Path, *args: str, env_extra: dict[str, str] | None = None) -> dict:
    """`python -m scripts.bench --sizes 3000 --skip-train ARGS` with its reports and warehouses
    under `root`: bench.json, bench.md, the folders and stdout."""
    output, workdir = root / "reports", root / "work"
    command = ["--sizes", "3000", "--skip-train", "--output", str(output), "--workdir"]
    proc = run_cli(
        [sys.executable, "-m", "scripts.bench", *command, str(workdir), *args],
        env_extra=env_extra,
        timeout=900,
    )
    return {
        "json": json.loads((output / "bench.json").read_text()),
        "md": (output / "bench.md").read_text(),
        "output": output,
        "workdir": workdir,
        "stdout": proc.stdout,
    }


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`python -m scripts.bench --sizes 3000 --skip-train --spark-sizes ''` (DuckDB only)."""
    args = ("--spark-sizes", "", "--generic-max-rows", "3000", "--dbt-repeats", "2")
    return {**_bench(tmp_path_factory.mktemp("bench"), *args), "repeats": 2}


@pytest.mark.slow
def test_bench_json_has_the_headline_numbers(tiny_bench) -> None:
    result = tiny_bench["json"]
    for key in TOP_LEVEL_NUMBERS:
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["train_fast_s"] is None  # --skip-train
    assert result["dbt_growth"] is None and result["scoring_growth"] is None  # one size
    assert result["sizes"] == [3000] and result["largest_orders"] == 3000
    assert result["scoring_path"] == result["scoring_champion_path"] == "fast"
    assert {t["metric"] for t in result["targets"]} == set(TARGETS)
    assert result["machine"]["cores"] >= 1 and result["versions"]["duckdb"]
    assert result["spark"] is None and "pyspark" not in result["versions"]  # --spark-sizes ''


@pytest.mark.slow
def test_every_size_has_its_sections(tiny_bench) -> None:
    run = tiny_bench["json"]["runs"]["3000"]
    assert run["orders"] == 3000 and run["customers"] == 300
    sim = run["simulate"]
    assert sim["raw_rows"] == sum(v for k, v in sim["rows"].items() if k.startswith("raw."))
    assert sim["rows_per_s"] == pytest.approx(sim["raw_rows"] / sim["seconds"])
    dbt, duck = run["dbt"], run["duckdb"]
    assert dbt["build_s"] > dbt["execute_s"] > 0 and dbt["parse_s"] > 0
    # dbt's own timings (run_results.json): threads, phases, the selection it ran
    assert dbt["threads"] >= 1 and dbt["compile_s_sum"] > 0 and dbt["before_first_node_s"] > 0
    assert dbt["selector"] == DBT_SELECTOR
    # every model, seed and data test dbt ran was replayed, without errors
    assert duck["errors"] == {}
    assert duck["statements"]["model"] == dbt["nodes"]["model"]
    assert duck["statements"]["test"] == dbt["nodes"]["test"]
    assert duck["statements"]["seed"] == dbt["nodes"]["seed"]
    # the production build, as `make dbt-build`: no unit tests
    assert dbt["nodes"]["unit_test"] == 0 and not duck["unit_tests_included"]
    assert run["dbt_vs_duckdb_ratio"] == pytest.approx(dbt["build_s"] / duck["seconds"])
    # the reported pair is the median of the repeated pairs
    pairs = run["dbt_vs_duckdb_pairs"]
    ratios = sorted(p["ratio"] for p in pairs)
    assert len(pairs) == tiny_bench["repeats"]
    assert run["dbt_vs_duckdb_ratio"] == pytest.approx(ratios[len(ratios) // 2], rel=1e-3)
    assert any(p["dbt_build_s"] == pytest.approx(dbt["build_s"], abs=1e-3) for p in pairs)
    scoring = run["scoring"]
    assert scoring["input"]["rows"] == 3000
    for role in ("champion", "xgboost"):
        model = scoring["models"][role]
        assert model["rows"] == model["rows_written"] == 3000
        assert model["stand_in"] and model["scoring_path"] == "fast", model["fallback_reason"]
        assert model["stats"]["path"] == "fast"
        # 3,000 rows may be scored before numba has loaded: then xgboost scored them all
        compiled = model["compiled_trees"]["xgboost"]
        assert compiled == "compiled" or compiled.startswith("not used"), compiled
        assert model["peak_rss_mb"] >= model["rss_after_load_mb"] > 0
        generic = model["generic"]
        assert generic["scoring_path"] == "generic" and generic["fallback_reason"]
        assert generic["rows_written"] == 3000


@pytest.mark.slow
def test_bench_md_states_machine_versions_and_results(tiny_bench) -> None:
    md = tiny_bench["md"]
    assert "# Benchmark" in md and "3,000 orders" in md
    assert "cores" in md and "GB RAM" in md and "duckdb 2." in md and "dbt-core" in md
    assert "![time against rows, log-log](bench.png)" in md
    assert (tiny_bench["output"] / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "dbt_vs_duckdb_ratio" in md
    assert "| scoring xgboost path | fast path |" in md
    assert "Scoring path: fast path; xgboost trees: xgboost " in md
    assert f"--selector {DBT_SELECTOR}" in md
    # the warehouses are removed without --keep; progress lines were printed
    assert not any(tiny_bench["workdir"].iterdir())
    assert "[bench" in tiny_bench["stdout"] and "dbt build" in tiny_bench["stdout"]


@pytest.fixture(scope="module")
def spark_bench(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`python -m scripts.bench --sizes 3000 --spark-sizes 3000 --skip-train`, DuckDB's part
    as short as it goes (one pair, no generic path), the folders kept: 2 to 3.5 minutes, most
    of it Spark's dbt build (JVM start-ups and ~160 nodes)."""
    args = ("--spark-sizes", "3000", "--dbt-repeats", "1", "--generic-max-rows", "0", "--keep")
    return _bench(
        tmp_path_factory.mktemp("spark-bench"),
        *args,
        env_extra={"WAREHOUSE_ENGINE": "spark"},  # a shell's engine: the bench picks its own
    )


@pytest.mark.slow
@pytest.mark.spark
def test_spark_runs_every_step_beside_duckdb(spark_bench) -> None:
    result = spark_bench["json"]
    # DuckDB's part and its targets as without Spark
    assert result["sizes"] == [3000] and {t["metric"] for t in result["targets"]} == set(TARGETS)
    assert result["runs"]["3000"]["dbt"]["selector"] == DBT_SELECTOR
    assert result["versions"]["pyspark"] and result["versions"]["dbt-spark"]
    spark = result["spark"]
    assert spark["sizes"] == [3000] and spark["failed"] == [] and spark["master"] == "local[2]"
    run = spark["runs"]["3000"]
    assert run["engine"] == "spark" and run["customers"] == 300
    sim = run["simulate"]
    assert sim["raw_rows"] == result["runs"]["3000"]["simulate"]["raw_rows"]  # same seed
    assert sim["process_s"] >= sim["seconds"] > 0
    dbt = run["dbt"]
    assert dbt["selector"] == DBT_SELECTOR and dbt["build_s"] > dbt["before_first_node_s"] > 0
    assert dbt["nodes"] == result["runs"]["3000"]["dbt"]["nodes"]  # the same build, both engines
    assert "duckdb" not in run and "dbt_vs_duckdb_pairs" not in run
    assert run["scoring"]["input"]["rows"] == 3000
    model = run["scoring"]["models"]["xgboost"]
    assert model["stand_in"] and model["rows"] == model["rows_written"] == 3000
    assert model["scoring_path"] == "distributed" and "generic" not in model
    assert model["process_s"] > model["seconds"] > 0 and model["engine_peak_rss_mb"] > 0


@pytest.mark.slow
@pytest.mark.spark
def test_the_spark_comparison_has_numbers_for_each_step(spark_bench) -> None:
    comparison = spark_bench["json"]["spark"]["comparison"]
    steps = {s["step"]: s for s in comparison["steps"]}
    assert set(steps) == {"simulate", "dbt build", "scoring xgboost"}  # the stand-in: one model
    for step in steps.values():
        for engine in ("duckdb", "spark"):
            assert step[engine]["seconds"]["3000"] > 0
            assert step[engine]["us_per_row"]["3000"] == pytest.approx(
                step[engine]["seconds"]["3000"] / 3000 * 1e6
            )
        assert step["spark_over_duckdb"]["3000"] > 0
    assert comparison["growth_sizes"] is None  # one size
    md = spark_bench["md"]
    assert "## Spark beside DuckDB" in md and "| dbt build | Spark | " in md
    assert "| dbt build | Spark / DuckDB | " in md and comparison["paragraph"] in md
    assert "DuckDB's time for the dbt build" in comparison["paragraph"]


@pytest.mark.slow
@pytest.mark.spark
def test_every_spark_step_ran_in_a_worker(spark_bench) -> None:
    """The bench process never opened the lakehouse: simulating and preparing the scoring ran
    in `ml.bench.step_worker` processes, scoring in `ml.bench.score_worker`."""
    folder = spark_bench["workdir"] / "spark-orders-3000"
    assert (folder / "lakehouse" / "metastore_db").is_dir()
    for name in ("simulate", "scoring-setup", "score-bench_scored_champion"):
        assert (folder / f"{name}.spec.json").exists(), name
    duckdb = spark_bench["workdir"] / "orders-3000"
    assert (duckdb / "warehouse.duckdb").is_file()  # DuckDB's size stayed DuckDB's
    assert not (duckdb / "simulate.spec.json").exists()  # ... and ran in the bench process
    assert "3,000 orders on Spark: dbt build" in spark_bench["stdout"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizes", "abc"], "--sizes: 'abc' is not a number"),
        (["--tasks", "loan_repayment,nope"], "--tasks: unknown task 'nope'"),
        (["--dbt-repeats", "0"], "--dbt-repeats"),
        (["--spark-sizes", "1e5,abc"], "--spark-sizes: 'abc' is not a number"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(bench.main, "scripts.bench", args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert message in err and len(err.strip().splitlines()) == 1
