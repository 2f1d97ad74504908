"""scripts.bench: the whole benchmark at a tiny size (no training), and its command line."""

from __future__ import annotations

import json
import sys

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


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`python -m scripts.bench --sizes 3000 --skip-train` into a temporary folder."""
    root = tmp_path_factory.mktemp("bench")
    output, workdir = root / "reports", root / "work"
    proc = run_cli(
        [
            sys.executable,
            "-m",
            "scripts.bench",
            "--sizes",
            "3000",
            "--skip-train",
            "--generic-max-rows",
            "3000",
            "--dbt-repeats",
            "2",
            "--output",
            str(output),
            "--workdir",
            str(workdir),
        ],
        timeout=900,
    )
    return {
        "json": json.loads((output / "bench.json").read_text()),
        "md": (output / "bench.md").read_text(),
        "output": output,
        "workdir": workdir,
        "stdout": proc.stdout,
        "repeats": 2,
    }


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizes", "abc"], "--sizes: 'abc' is not a number"),
        (["--tasks", "loan_repayment,nope"], "--tasks: unknown task 'nope'"),
        (["--dbt-repeats", "0"], "--dbt-repeats"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        run(bench.main, "scripts.bench", args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert message in err and len(err.strip().splitlines()) == 1
