"""The warehouse interface on DuckDB: atomic writes, streaming, locks, names, typed errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pandas as pd
import pyarrow as pa
import pytest

from ml.core.errors import RelationNotFoundError, UserError, WarehouseLockedError
from ml.core.names import find_column, match_columns, parse_relation, quote_ident
from ml.core.tasks import validate_task_name
from ml.core.warehouse import open_warehouse


@pytest.fixture()
def wh(tmp_path):
    with open_warehouse(tmp_path / "w.duckdb") as warehouse:
        yield warehouse


def _leftovers(wh) -> list[str]:
    return [r.name for r in wh.relations() if r.name.startswith("__tmp")]


@pytest.mark.parametrize(
    "bad",
    ['x"; drop table ml.model_runs; --', "a.b.c", "ml.", "1abc.t", "ml.model runs", "", "ml.t;"],
)
def test_relation_names_are_validated(bad: str) -> None:
    with pytest.raises(UserError, match="invalid table name"):
        parse_relation(bad)


def test_identifiers_are_quoted() -> None:
    assert quote_ident("Annual Income (k$)") == '"Annual Income (k$)"'
    assert quote_ident('a"b') == '"a""b"'


@pytest.mark.parametrize("bad", ["../etc", "Loans", "a-b", "x" * 70, "1x", ""])
def test_task_names_are_validated(bad: str) -> None:
    with pytest.raises(UserError):
        validate_task_name(bad)


def test_columns_match_exactly_else_ignoring_case_and_blanks() -> None:
    assert find_column(["Loan_Status", "id"], "loan_status") == "Loan_Status"
    assert find_column([" Age ", "id"], "age") == " Age "
    assert find_column(["a", "A"], "a") == "a"  # the exact name wins
    assert find_column(["aB", "Ab"], "ab") is None  # two candidates: no guess
    assert match_columns(["X", "y"], ["x", "z"]) == {"x": "X"}
    with pytest.raises(UserError, match="ambiguous"):
        match_columns(["aB", "Ab"], ["ab"])
    with pytest.raises(UserError, match="more than one column"):
        match_columns(["a", "a"], ["a"])


def test_replace_tables_is_all_or_nothing(wh) -> None:
    wh.replace_table("ml.keep", pd.DataFrame({"a": [1, 2]}))
    wh.execute("create view ml.a_view as select 1 as x")
    # the first table is swapped inside the transaction, then replacing a view fails
    with pytest.raises(UserError, match="(?i)cannot write.*view"):
        wh.replace_tables(
            {"ml.keep": pd.DataFrame({"a": [9]}), "ml.a_view": pd.DataFrame({"x": [2]})}
        )
    assert wh.read_frame("ml.keep", order_by="a")["a"].tolist() == [1, 2]
    assert _leftovers(wh) == []


def test_arrow_tables_keep_their_types_and_dictionaries_become_text(wh) -> None:
    data = pa.table(
        {
            "n": pa.array([1, 2], pa.int32()),
            "when": pa.array([0, 1], pa.timestamp("us")),
            "kind": pa.array(["x", "y"]).dictionary_encode(),
        }
    )
    assert wh.replace_tables({"raw.t": data}) == {"raw.t": 2}
    assert wh.sql_types("raw.t") == {"n": "INTEGER", "when": "TIMESTAMP", "kind": "VARCHAR"}
    assert wh.describe("raw.t").field("kind").type == pa.string()


def test_append_rows_creates_then_appends_and_adds_columns(wh) -> None:
    assert wh.append_rows("quality.results", pd.DataFrame({"a": [1]})) == 1
    assert wh.append_rows("quality.results", pd.DataFrame({"b": ["x"], "a": [2]})) == 1
    got = wh.read_frame("quality.results", order_by="a")
    assert got["a"].tolist() == [1, 2] and got["b"].isna().tolist() == [True, False]


def test_a_table_writer_swaps_in_at_the_end_and_rolls_back_on_error(wh) -> None:
    wh.replace_table("raw.src", pd.DataFrame({"id": range(10), "v": [1.5] * 10}))
    schema = pa.schema([("id", pa.int64()), ("double_v", pa.float64())])
    for background in (True, False):
        with (
            wh.read_batches("raw.src", {"id": "id", "v": "v"}, batch_rows=3) as reader,
            wh.table_writer("ml.out", schema, background=background) as writer,
        ):
            for batch in reader:
                doubled = pa.compute.multiply(batch.column("v"), 2.0)
                writer.append(pa.table({"id": batch.column("id"), "double_v": doubled}))
        assert writer.rows == 10
        assert wh.read_frame("ml.out")["double_v"].tolist() == [3.0] * 10
    with pytest.raises(RuntimeError), wh.table_writer("ml.out", schema) as writer:
        writer.append(pa.table({"id": [99], "double_v": [0.0]}))
        raise RuntimeError("scoring failed half-way")
    assert wh.row_count("ml.out") == 10 and _leftovers(wh) == []


def test_decimals_stream_as_doubles_and_samples_are_seeded(wh) -> None:
    wh.execute("create schema raw")
    wh.execute("create table raw.d as select (i / 4)::decimal(10, 2) as x from range(100) t(i)")
    with wh.read_batches("raw.d", ["x"]) as reader:
        assert reader.schema.field("x").type == pa.float64()
    first, again = wh.sample_frame("raw.d", 10, seed=3), wh.sample_frame("raw.d", 10, seed=3)
    assert len(first) == 10 and first["x"].tolist() == again["x"].tolist()
    assert len(wh.sample_frame("raw.d", 1_000, seed=3)) == 100


def test_missing_and_unreadable_relations_raise_typed_errors(wh) -> None:
    with pytest.raises(RelationNotFoundError, match="raw.nope does not exist"):
        wh.read_frame("raw.nope")
    wh.replace_table("raw.t", pd.DataFrame({"a": [1]}))
    wh.execute("create view raw.v as select * from raw.t")
    wh.execute("drop table raw.t")
    with pytest.raises(UserError, match="cannot read raw.v"):
        wh.read_frame("raw.v")
    assert [(r.relation, r.kind) for r in wh.relations("RAW")] == [("raw.v", "view")]
    # a view whose cast fails only when it runs: every way of reading says so in one line
    wh.execute("create or replace view raw.v as select 'x'::varchar::integer as n")
    for read in (
        lambda: wh.sample_frame("raw.v", 10, seed=1),
        lambda: wh.read_arrow("raw.v"),
        lambda: wh.read_batches("raw.v").__enter__(),
    ):
        with pytest.raises(UserError, match="cannot read raw.v: Conversion Error"):
            read()
    with pytest.raises(UserError, match="cannot read the warehouse: Binder Error"):
        wh.query("select no_such_column from raw.v")
    schema = pa.schema([("n", pa.int64())])
    with (
        pytest.raises(UserError, match="cannot write raw.v"),
        wh.table_writer("raw.v", schema) as writer,
    ):
        writer.append(pa.table({"n": [1]}))
    assert _leftovers(wh) == []


def test_a_read_only_warehouse_must_exist(tmp_path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        open_warehouse(tmp_path / "none.duckdb", read_only=True)


def test_an_unknown_engine_is_refused(tmp_path) -> None:
    with pytest.raises(UserError, match="WAREHOUSE_ENGINE 'oracle'"):
        open_warehouse(tmp_path / "w.duckdb", engine="oracle")


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
            open_warehouse(path, timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait()


def test_history_and_shared_tables_keep_the_rows_of_other_runs_and_tasks(wh) -> None:
    assert wh.appended("ml.runs", pd.DataFrame({"run": [1]}))["run"].tolist() == [1]
    wh.replace_table("ml.runs", pd.DataFrame({"run": [1]}))
    assert wh.appended("ml.runs", pd.DataFrame({"run": [2]}))["run"].tolist() == [1, 2]
    wh.replace_table("ml.shared", pd.DataFrame({"task": ["a", "b", "a"], "v": [1, 2, 3]}))
    new = pd.DataFrame({"task": ["a"], "v": [9]})
    merged = wh.replaced_where("ml.shared", new, "task")
    assert sorted(zip(merged["task"], merged["v"], strict=True)) == [("a", 9), ("b", 2)]
    assert len(wh.replaced_where("ml.shared", new.iloc[:0], "task")) == 3
    assert wh.replaced_where("ml.none", new, "task").equals(new)
