"""`python -m scripts.query`: one query, printed as a table or CSV, read-only unless --write.
(On Spark: tests/integration/test_spark_flow.py runs it on the built lakehouse.)"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from ml.core.cli import run
from ml.core.warehouse import open_warehouse
from scripts.query import main


@pytest.fixture()
def warehouse(tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("WAREHOUSE_ENGINE", "duckdb")
    monkeypatch.setenv("WAREHOUSE_PATH", str(path))
    frame = pd.DataFrame({"id": range(1, 6), "name": ["a", "b", None, "d", "e,f"]})
    with open_warehouse(path) as wh:
        wh.replace_table("marts.things", frame)
    return path


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        run(main, "scripts.query", argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_table_shows_rows_nulls_and_the_count(warehouse, capsys) -> None:
    code, out, _ = _cli(["select * from marts.things order by id"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["id", "name"]
    assert lines[3].split() == ["3", "NULL"]
    assert lines[-1] == "(5 rows)"


def test_max_rows_cuts_the_table_and_says_so(warehouse, capsys) -> None:
    code, out, _ = _cli(["--max-rows", "2", "select * from marts.things order by id"], capsys)
    assert code == 0
    assert len(out.splitlines()) == 4
    assert out.splitlines()[-1] == "(5 rows, 2 shown: --max-rows 0 shows all)"


def test_csv_prints_every_row_quoted_where_needed(warehouse, capsys) -> None:
    code, out, _ = _cli(
        ["--format", "csv", "--max-rows", "1", "select * from marts.things"], capsys
    )
    assert code == 0
    back = pd.read_csv(io.StringIO(out))
    assert back["id"].tolist() == [1, 2, 3, 4, 5]
    assert back["name"].tolist()[-1] == "e,f"


def test_an_empty_result_shows_its_columns(warehouse, capsys) -> None:
    code, out, _ = _cli(["select id, name from marts.things where id > 99"], capsys)
    assert code == 0
    assert out.splitlines() == ["id  name", "(0 rows)"]


@pytest.mark.parametrize(
    "sql", ["drop table marts.things", "select 1; delete from marts.things", "create schema x"]
)
def test_writing_is_refused_without_write(warehouse, capsys, sql: str) -> None:
    code, out, err = _cli([sql], capsys)
    assert code == 2 and not out
    assert len(err.splitlines()) == 1 and "scripts.query: error:" in err
    with open_warehouse(warehouse, read_only=True) as wh:
        assert wh.row_count("marts.things") == 5


def test_write_runs_a_statement(warehouse, capsys) -> None:
    code, _, _ = _cli(["--write", "delete from marts.things where id = 1"], capsys)
    assert code == 0
    with open_warehouse(warehouse, read_only=True) as wh:
        assert wh.row_count("marts.things") == 4


def test_a_bad_query_is_one_line(warehouse, capsys) -> None:
    code, _, err = _cli(["select * from marts.nothing_here"], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and "nothing_here" in err
