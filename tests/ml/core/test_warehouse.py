"""Artifacts are hash-checked before unpickling; warehouse writes are atomic; names are validated."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from ml import registry
from ml.errors import UserError, WarehouseLockedError
from ml.experiment import validate_task_name
from ml.warehouse import connect, parse_relation, quote_ident, session, write_table, write_tables


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture()
def artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTIFACTS_PATH", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"


def test_saved_model_loads_with_its_hash(artifacts) -> None:
    path, digest = registry.save_model({"weights": [1, 2]}, {"task": "t"}, "t", "run1", "m")
    assert path.parent == artifacts / "t" / "run1"
    model, meta = registry.load_verified(path, digest)
    assert model == {"weights": [1, 2]} and meta == {"task": "t"}
    assert (path.with_suffix(".json")).exists()


def test_changed_bytes_are_refused(artifacts) -> None:
    path, digest = registry.save_model({"weights": [1, 2]}, {}, "t", "run1", "m")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(registry.ArtifactIntegrityError, match="sha256"):
        registry.load_verified(path, digest)


def test_foreign_pickle_is_never_executed(artifacts, tmp_path) -> None:
    path, digest = registry.save_model({}, {}, "t", "run1", "m")
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(registry.ArtifactIntegrityError, match="refusing"):
        registry.load_verified(path, digest)
    assert not marker.exists()


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(registry.ArtifactIntegrityError, match="missing"):
        registry.load_verified(tmp_path / "nope.joblib", "0" * 64)


@pytest.mark.parametrize(
    "bad",
    ['x"; drop table ml.model_runs; --', "a.b.c", "ml.", "1abc.t", "ml.model runs", "", "ml.t;"],
)
def test_relation_names_are_validated(bad: str) -> None:
    with pytest.raises(UserError):
        parse_relation(bad)


def test_identifiers_are_quoted() -> None:
    assert quote_ident("Annual Income (k$)") == '"Annual Income (k$)"'
    assert quote_ident('a"b') == '"a""b"'


@pytest.mark.parametrize("bad", ["../etc", "Loans", "a-b", "x" * 70, "1x", ""])
def test_task_names_are_validated(bad: str) -> None:
    with pytest.raises(UserError):
        validate_task_name(bad)


def test_write_tables_is_all_or_nothing(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    with session(path) as con:
        write_table(con, pd.DataFrame({"a": [1, 2]}), "ml.keep")
        con.execute("create view ml.a_view as select 1 as x")
        # the first table is swapped inside the transaction, then replacing a view fails
        with pytest.raises(Exception, match="(?i)view"):
            write_tables(
                con, {"ml.keep": pd.DataFrame({"a": [9]}), "ml.a_view": pd.DataFrame({"x": [2]})}
            )
        assert con.execute("select a from ml.keep order by a").fetchall() == [(1,), (2,)]
        leftovers = con.execute(
            "select table_name from information_schema.tables where table_name like '__tmp%'"
        ).fetchall()
        assert leftovers == []


def test_a_held_warehouse_gives_a_clean_locked_error(tmp_path) -> None:
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(path)!r})
            con.execute("create table t as select 1")
            print("held", flush=True)
            time.sleep(30)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLockedError, match=r"locked by .*PID \d+"):
            connect(path, timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait()


def test_training_refuses_a_relation_whose_last_gate_run_failed(tmp_path) -> None:
    from ml.warehouse import require_passing_gate

    with session(tmp_path / "w.duckdb") as con:
        require_passing_gate(con, "marts.loan_features")  # no gate results yet: nothing to refuse
        con.execute("create schema quality")
        con.execute(
            "create table quality.check_results (run_id varchar, checked_at timestamp, "
            "table_name varchar, success boolean)"
        )
        con.execute(
            "insert into quality.check_results values "
            "('old', '2026-01-01 10:00', 'marts.loan_features', false), "
            "('new', '2026-01-02 10:00', 'marts.loan_features', true), "
            "('new', '2026-01-02 10:00', 'marts.customer_features', false)"
        )
        require_passing_gate(con, "marts.loan_features")  # the latest run passed
        with pytest.raises(UserError, match="marts.customer_features"):
            require_passing_gate(con, "marts.customer_features")
