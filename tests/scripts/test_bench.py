"""scripts.bench: the whole benchmark at a tiny size (no training), and its pure helpers."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest

from ml.errors import UserError
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
            "0",
            "--dbt-repeats",
            "2",
            "--output",
            str(output),
            "--workdir",
            str(workdir),
        ],
        timeout=600,
    )
    return {
        "json": json.loads((output / "bench.json").read_text()),
        "md": (output / "bench.md").read_text(),
        "output": output,
        "workdir": workdir,
        "stdout": proc.stdout,
        "repeats": 2,
    }


def test_bench_json_has_the_headline_numbers(tiny_bench) -> None:
    result = tiny_bench["json"]
    for key in TOP_LEVEL_NUMBERS:
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["train_fast_s"] is None  # --skip-train
    assert result["dbt_growth"] is None and result["scoring_growth"] is None  # one size
    assert result["sizes"] == [3000] and result["largest_orders"] == 3000
    assert {t["metric"] for t in result["targets"]} == set(bench.TARGETS)
    assert result["machine"]["cores"] >= 1 and result["versions"]["duckdb"]


def test_every_size_has_its_sections(tiny_bench) -> None:
    run = tiny_bench["json"]["runs"]["3000"]
    assert run["orders"] == 3000 and run["customers"] == 300
    sim = run["simulate"]
    assert sim["raw_rows"] == sum(v for k, v in sim["rows"].items() if k.startswith("raw."))
    assert sim["rows_per_s"] == pytest.approx(sim["raw_rows"] / sim["seconds"])
    dbt, duck = run["dbt"], run["duckdb"]
    assert dbt["build_s"] > dbt["execute_s"] > 0 and dbt["parse_s"] > 0
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
        assert model["stand_in"] and model["stats"]["fast"], model["stats"]["fallback_reason"]
        # 3,000 rows may be scored before numba has loaded: then xgboost scored them all
        compiled = model["stats"]["compiled_trees"]["xgboost"]
        assert compiled == "compiled" or compiled.startswith("not used"), compiled
        assert model["peak_rss_mb"] >= model["rss_after_load_mb"] > 0


def test_bench_md_states_machine_versions_and_results(tiny_bench) -> None:
    md = tiny_bench["md"]
    assert "# Benchmark" in md and "3,000 orders" in md
    assert "cores" in md and "GB RAM" in md and "duckdb 2." in md and "dbt-core" in md
    assert "![time against rows, log-log](bench.png)" in md
    assert (tiny_bench["output"] / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert "dbt_vs_duckdb_ratio" in md
    assert "xgboost trees: xgboost " in md
    # the warehouses are removed without --keep; progress lines were printed
    assert not any(tiny_bench["workdir"].iterdir())
    assert "[bench" in tiny_bench["stdout"] and "dbt build" in tiny_bench["stdout"]


@pytest.mark.parametrize(
    ("text", "sizes"),
    [("100000,1e6,10_000_000", [100_000, 1_000_000, 10_000_000]), ("50, 20,50", [20, 50])],
)
def test_parse_sizes(text, sizes) -> None:
    assert bench.parse_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "abc", "5", "1.5e3.2", "100.5"])
def test_parse_sizes_refuses_nonsense(text) -> None:
    with pytest.raises(UserError):
        bench.parse_sizes(text)


def test_dependency_order_follows_ephemeral_models() -> None:
    """A model reading an ephemeral model waits for what the ephemeral model reads."""
    manifest = {
        "nodes": {
            "model.p.a": {"depends_on": {"nodes": []}},
            "model.p.eph": {"depends_on": {"nodes": ["model.p.a"]}},  # ephemeral: not run
            "model.p.b": {"depends_on": {"nodes": ["model.p.eph"]}},
            "test.p.t": {"depends_on": {"nodes": ["model.p.b"]}},
            "seed.p.s": {"depends_on": {"macros": []}},
        }
    }
    # dbt's result order may list b before a (threads); the replay must not
    order = bench._dependency_order(["test.p.t", "model.p.b", "seed.p.s", "model.p.a"], manifest)
    assert order.index("model.p.a") < order.index("model.p.b") < order.index("test.p.t")
    assert sorted(order) == sorted(["test.p.t", "model.p.b", "seed.p.s", "model.p.a"])


def _fake_run(orders: int, dbt_s: float, score_s: float) -> dict:
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
                "xgboost": {"seconds": score_s, "rows_per_s": 1.2e6, "peak_rss_mb": 900.0},
                "champion": {"seconds": 2 * score_s, "rows_per_s": 6e5, "peak_rss_mb": 1500.0},
            }
        },
    }


def test_summary_growth_and_targets() -> None:
    runs = {
        1_000_000: _fake_run(1_000_000, 10.0, 1.0),
        10_000_000: _fake_run(10_000_000, 80.0, 9.0),
    }
    summary = bench.summarize(runs)
    assert summary["dbt_growth"] == pytest.approx(8.0)
    assert summary["scoring_growth"] == pytest.approx(9.0)
    assert summary["growth_sizes"] == [1_000_000, 10_000_000]
    assert summary["train_fast_s"] == {"loan_repayment": 50.0}
    assert summary["train_status"] == {"loan_repayment": "ok"}
    met = {t["metric"]: t["met"] for t in bench.check_targets(summary)}
    assert met["simulate_rows_per_s"] and met["scoring_rows_per_s"] and met["dbt_growth"]
    assert met["dbt_vs_duckdb_ratio"] is False


def test_peak_rss_is_the_workers_own_not_the_parents() -> None:
    """A worker started from a parent that once held 300 MB reports its own (small) peak."""
    import subprocess

    code = (
        "import subprocess, sys\n"
        "block = bytearray(300 * 1024 * 1024)\n"
        "block[::4096] = b'x' * len(block[::4096])\n"  # touch every page: resident, not just mapped
        "del block\n"
        "child = 'from scripts.bench import _peak_rss_mb; print(_peak_rss_mb())'\n"
        "print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True,"
        " check=True).stdout.strip())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    child_peak = float(out.stdout.strip())
    assert 1 < child_peak < 250, child_peak
    assert bench._peak_rss_mb() >= (bench._rss_mb() or 0)


def test_bench_builds_what_make_dbt_build_builds() -> None:
    """The bench's dbt flags are the Makefile's, so the ratio is the production build's."""
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", "dbt-build"],
        cwd=bench.ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    build = next(line for line in dry.stdout.splitlines() if " build --project-dir " in line)
    args = shlex.split(build)
    flags = args[args.index("--project-dir") + 2 :]  # after `--project-dir <dir>`
    assert tuple(flags) == bench.DBT_BUILD_FLAGS


def test_replay_runs_a_unit_test_just_before_its_model(tmp_path) -> None:
    """Should a build run unit tests, their SQL is replayed right before the model they test."""
    manifest = {
        "nodes": {
            "model.p.a": {
                "resource_type": "model",
                "depends_on": {"nodes": []},
                "config": {"materialized": "table"},
                "relation_name": '"w"."s"."a"',
                "compiled_code": "select 1 as x",
            },
            "test.p.t": {
                "resource_type": "test",
                "depends_on": {"nodes": ["model.p.a"]},
                "compiled_code": 'select * from "w"."s"."a" where x is null',
            },
        },
        "unit_tests": {"unit_test.p.a.u": {"depends_on": {"nodes": ["model.p.a"]}}},
    }
    results = {
        "results": [
            {"unique_id": "test.p.t", "status": "pass"},
            {"unique_id": "model.p.a", "status": "success"},
            {"unique_id": "unit_test.p.a.u", "status": "success", "compiled_code": "select 2"},
        ]
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "run_results.json").write_text(json.dumps(results))
    statements = bench.replay_statements(tmp_path)
    assert [(uid, kind) for uid, kind, _ in statements] == [
        ("unit_test.p.a.u", "unit_test"),
        ("model.p.a", "model"),
        ("test.p.t", "test"),
    ]
    assert "select 2" in statements[0][2] and "count(*)" in statements[0][2]
    assert statements[1][2].startswith('create or replace table "w"."s"."a" as')
