"""ml.bench.replay: dbt's compiled SQL, in dependency order, run in DuckDB alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ml.bench.replay import dependency_order, replay_statements, run_direct
from ml.core.warehouse import open_warehouse


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
    order = dependency_order(["test.p.t", "model.p.b", "seed.p.s", "model.p.a"], manifest)
    assert order.index("model.p.a") < order.index("model.p.b") < order.index("test.p.t")
    assert sorted(order) == sorted(["test.p.t", "model.p.b", "seed.p.s", "model.p.a"])


def _model(sql: str, materialized: str = "table", deps: tuple[str, ...] = ()) -> dict:
    name = sql.split("-- ")[-1]
    return {
        "resource_type": "model",
        "database": "w",
        "schema": "s",
        "depends_on": {"nodes": list(deps)},
        "config": {"materialized": materialized},
        "relation_name": f'"w"."s"."{name}"',
        "compiled_code": sql,
    }


def _test(sql: str, deps: tuple[str, ...]) -> dict:
    return {"resource_type": "test", "depends_on": {"nodes": list(deps)}, "compiled_code": sql}


def _write_target(target: Path, nodes: dict, results: list[dict], unit_tests: dict) -> None:
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes, "unit_tests": unit_tests}))
    (target / "run_results.json").write_text(json.dumps({"results": results}))


def test_replay_runs_a_unit_test_just_before_its_model(tmp_path) -> None:
    """Should a build run unit tests, their SQL is replayed right before the model they test."""
    nodes = {
        "model.p.a": _model("select 1 as x\n-- a"),
        "test.p.t": _test('select * from "w"."s"."a" where x is null', ("model.p.a",)),
    }
    results = [
        {"unique_id": "test.p.t", "status": "pass"},
        {"unique_id": "model.p.a", "status": "success"},
        {"unique_id": "unit_test.p.a.u", "status": "success", "compiled_code": "select 2"},
    ]
    unit_tests = {"unit_test.p.a.u": {"depends_on": {"nodes": ["model.p.a"]}}}
    _write_target(tmp_path, nodes, results, unit_tests)
    statements = replay_statements(tmp_path)
    assert [(uid, kind) for uid, kind, _ in statements] == [
        ("unit_test.p.a.u", "unit_test"),
        ("model.p.a", "model"),
        ("test.p.t", "test"),
    ]
    assert "select 2" in statements[0][2] and "count(*)" in statements[0][2]
    assert statements[1][2].startswith('create or replace table "w"."s"."a" as')


def test_run_direct_replays_through_the_warehouse_under_dbt_catalog(tmp_path) -> None:
    """The raw copy opens under dbt's catalog name; models build, a failing data test reports
    its count, a statement the engine refuses is recorded (not fatal), the rest still runs."""
    raw = tmp_path / "raw.duckdb"
    with open_warehouse(raw) as wh:
        wh.replace_table("raw.items", pd.DataFrame({"x": [1, 2, None]}))
    nodes = {
        "model.p.clean": _model('select x from "w"."raw"."items"\n-- clean'),
        "model.p.v": _model(
            'select x * 10 as y from "w"."s"."clean"\n-- v', "view", ("model.p.clean",)
        ),
        "model.p.eph": _model("select 1 as z\n-- eph", "ephemeral"),
        "test.p.not_null": _test(
            'select * from "w"."s"."clean" where x is null', ("model.p.clean",)
        ),
        "test.p.broken": _test("select * from no_such_table", ()),
        "test.p.ok": _test('select * from "w"."s"."v" where y < 0', ("model.p.v",)),
    }
    results = [
        {"unique_id": uid, "status": "success" if uid.startswith("model") else "pass"}
        for uid in ["test.p.ok", "model.p.v", "test.p.not_null", "model.p.clean", "test.p.broken"]
    ]
    _write_target(tmp_path / "target", nodes, results, {})
    out = run_direct(raw, tmp_path / "target")
    assert out["statements"] == {"model": 2, "test": 3}
    assert out["failing_tests"] == {"test.p.not_null": 1}
    assert (
        list(out["errors"]) == ["test.p.broken"]
        and "no_such_table" in out["errors"]["test.p.broken"]
    )
    assert set(out["node_s"]) == {uid for uid in nodes if uid != "model.p.eph"}
    assert out["seconds"] > 0 and not out["unit_tests_included"]
    with open_warehouse(raw, read_only=True) as wh:
        assert wh.read_frame("s.v")["y"].dropna().tolist() == [10, 20]
