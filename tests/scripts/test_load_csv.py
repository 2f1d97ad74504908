"""`python -m scripts.load_csv`: a summary on success, one line and exit code 2 on a refusal
(the loader itself: tests/ml/ingestion/test_csv.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml.core.cli import run
from scripts.load_csv import main
from tests.conftest import run_python


def _write(tmp_path: Path, content: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode())
    return path


def _wh(tmp_path: Path) -> Path:
    return tmp_path / "wh" / "warehouse.duckdb"


def _read(wh: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(sql).fetchall()


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`python -m scripts.load_csv argv` in-process, through the same error boundary."""
    with pytest.raises(SystemExit) as exc:
        run(main, "scripts.load_csv", argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_cli_prints_a_summary(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("WAREHOUSE_PATH", str(_wh(tmp_path)))
    path = _write(tmp_path, "id;Annual Income (k$);label\n0001;15;Y\n0002;;N\n")
    code, out, err = _cli([str(path), "--table", "raw.mall"], capsys)
    assert code == 0 and err == ""
    assert "created raw.mall" in out and "2 rows, 3 columns" in out
    assert "semicolon-delimited, utf-8, LF" in out
    assert "Annual Income (k$)  BIGINT  (1 missing)" in out
    assert "leading zeros" in out
    assert out.splitlines()[-1] == f"  into {_wh(tmp_path).resolve()}"


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["--table", "raw.t"], "a,b\n1,2\n3\n", "line 3: 1 field where the header has 2"),
        (["--table", "raw.t"], "", "the file is empty"),
        (["--table", "raw.t"], "a,b\n", "no data rows"),
        (["--table", "raw.t"], "a,a\n1,2\n", "duplicate column name"),
        (["--table", "raw.t"], "a\n1\x00\x00\n", "NUL byte"),
        (["--table", "marts.t"], "a\n1\n", "the project manages it"),
        (["--table", "raw.t", "--if-exists", "append"], "a\n1\n", "invalid choice"),
        ([], "a\n1\n", "the following arguments are required: --table"),
    ],
)
def test_cli_refusals_are_one_line(tmp_path, monkeypatch, capsys, args, content, message) -> None:
    monkeypatch.setenv("WAREHOUSE_PATH", str(_wh(tmp_path)))
    code, out, err = _cli([str(_write(tmp_path, content)), *args], capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


def test_cli_if_exists_fail(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("WAREHOUSE_PATH", str(_wh(tmp_path)))
    path = str(_write(tmp_path, "a\n1\n"))
    assert _cli([path, "--table", "raw.t", "--if-exists", "fail"], capsys)[0] == 0
    code, _, err = _cli([path, "--table", "raw.t", "--if-exists", "fail"], capsys)
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1


def test_cli_subprocess_loads_and_reports(tmp_path) -> None:
    wh = _wh(tmp_path)
    path = _write(tmp_path, "CustomerID,Genre,Spending Score (1-100)\n0001,Male,39\n0002,,81\n")
    proc = run_python("scripts.load_csv", str(path), "--table", "raw.mall", warehouse=wh)
    assert "created raw.mall" in proc.stdout and proc.stderr == ""
    assert _read(wh, "select column_name, data_type from information_schema.columns") == [
        ("CustomerID", "VARCHAR"),
        ("Genre", "VARCHAR"),
        ("Spending Score (1-100)", "BIGINT"),
    ]
    assert _read(wh, "select * from raw.mall") == [("0001", "Male", 39), ("0002", None, 81)]


def test_cli_subprocess_refuses_sql_injection(tmp_path) -> None:
    wh = _wh(tmp_path)
    wh.parent.mkdir(parents=True)
    with duckdb.connect(str(wh)) as con:
        con.execute("create schema ml; create table ml.model_runs as select 1 as run_id")
    path = _write(tmp_path, "a\n1\n")
    proc = run_python(
        "scripts.load_csv",
        str(path),
        "--table",
        'x"; drop table ml.model_runs; --',
        warehouse=wh,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "invalid table name" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert _read(wh, "select * from ml.model_runs") == [(1,)]
    assert _read(wh, "select count(*) from information_schema.tables") == [(1,)]
