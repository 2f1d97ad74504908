"""Hostile inputs to ml.predict, scripts.load_csv and ml.train.

Every case is either scored/loaded correctly or refused with exit code 2 and ONE stderr line
naming the problem: never a traceback, never a partial write (`ml.model_runs` unchanged, no
`__tmp_*`/`__write_*` table left, an output CSV complete or absent).

One warehouse is trained once for the module (`ml.train --fast --task loan_repayment`). Most cases
run in-process through the same error boundary as the command (`ml.core.cli.run`); a few run as real
subprocesses to prove the exit code and the single stderr line end to end.
"""

from __future__ import annotations

import codecs
import gzip
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.core.cli import run
from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.estimators.preprocessing import MAX_ABS_VALUE
from ml.ingestion.csv import load_csv
from ml.predict import main as predict_main
from ml.train import main as train_main
from ml.training.data import builtin_or_custom, prepare_task
from ml.training.zoo import base_estimator, make_pipeline
from scripts.load_csv import main as load_main
from tests.conftest import run_python

pytestmark = pytest.mark.slow  # whole flows: a trained tiny warehouse, every entry point

TASK = "loan_repayment"
ROWS = 12
LEFTOVER = re.compile(r"^__tmp_|^__write_")
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def trained(built_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The built warehouse after `ml.train --fast --task loan_repayment`, plus hostile objects:
    a view, an empty table, a view over a dropped table, tables for ml.train refusals."""
    workdir = tmp_path_factory.mktemp("hostile")
    warehouse = workdir / "warehouse.duckdb"
    shutil.copy(built_warehouse, warehouse)
    env = {"ARTIFACTS_PATH": str(workdir / "artifacts")}
    run_python(
        "ml.train", "--fast", "--task", TASK, "--seed", "3", "--explain-rows", "0",
        warehouse=warehouse, env_extra=env,
    )  # fmt: skip
    with duckdb.connect(str(warehouse)) as con:
        base = con.execute(
            "select * from marts.loan_features where loan_id > 100 order by loan_id limit ?", [ROWS]
        ).df()
        con.execute(
            """
            create schema if not exists raw;
            create view raw.loan_view as select * from marts.loan_features where loan_id <= 9;
            create table raw.no_loans as select * from marts.loan_features limit 0;
            create table raw.gone as select 1 as a;
            create view raw.broken as select * from raw.gone;
            drop table raw.gone;
            create view ml.a_view as select 1 as a;
            create table raw.byo as
            select
                i as "Applicant ID",
                i as prediction,
                random() * 100 as income,
                case when i % 17 = 0 then 'inf'::double when i % 19 = 0 then 1e308
                     when i % 23 = 0 then -1e30 else (i % 7)::double end as "weird; --num",
                null::double as all_missing,
                5 as constant,
                case when i % 3 = 0 then 'a' when i % 3 = 1 then 'b' end as kind,
                [i, i + 1] as a_list,
                timestamptz '2024-01-01 00:00+02' + to_days(i) as applied_at,
                case when (i * 7919) % 10 < 4 then 'Y' else 'N' end as "Approved?",
                'same' as one_class,
                case when i % 5 = 0 then 'inf'::double else i::double end as amount,
                'label ' || (i % 4) as label
            from range(120) t(i);
            create table raw.byo_empty as select * from raw.byo limit 0;
            """
        )
    return {"warehouse": warehouse, "env": env, "base": base.astype(object), "workdir": workdir}


@pytest.fixture()
def predict_env(trained, monkeypatch) -> dict:
    monkeypatch.setenv("WAREHOUSE_PATH", str(trained["warehouse"]))
    monkeypatch.setenv("ARTIFACTS_PATH", trained["env"]["ARTIFACTS_PATH"])
    return trained


def _state(warehouse: Path) -> tuple[list, list]:
    """The registry rows and every relation: what a refused command must leave as it was."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        runs = con.execute(
            "select run_id, task, model_name, artifact_sha256 from ml.model_runs order by all"
        ).fetchall()
        relations = con.execute(
            "select table_schema, table_name, table_type from information_schema.tables "
            "order by all"
        ).fetchall()
    return runs, relations


def _cli(main: Callable, prog: str, argv: list[str], capsys) -> tuple[int, str, str]:
    """`python -m prog argv` in-process, through the same error boundary as the command."""
    with pytest.raises(SystemExit) as exc:
        run(main, prog, argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def _assert_refused(code: int, out: str, err: str, keyword: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and keyword.lower() in lines[0].lower(), err
    assert "Traceback" not in err and out == ""


def _assert_scored(path: Path, rows: int) -> pd.DataFrame:
    scored = pd.read_csv(path, dtype={0: str})
    assert len(scored) == rows
    p = scored["probability"].to_numpy(dtype=float)
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert set(scored["prediction"]) <= {0, 1}
    assert not [f for f in path.parent.iterdir() if f.name.endswith(".tmp")], "temp file left"
    return scored


def _no_leftovers(warehouse: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select table_name from information_schema.tables").fetchall()
    names = [r[0] for r in rows]
    assert not [n for n in names if LEFTOVER.search(n)], names


# --------------------------------------------------------------------------------------------
# ml.predict --input: hostile CSV files


def _csv(frame: pd.DataFrame, sep: str = ",") -> bytes:
    return frame.to_csv(index=False, sep=sep).encode("utf-8")


def _with(col: str, values) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(base: pd.DataFrame) -> pd.DataFrame:
        out = base.copy()
        out[col] = values if not callable(values) else values(out[col])
        return out

    return change


@dataclass(frozen=True)
class Case:
    """A CSV built from the 12 base rows; `expect` is an int (rows scored) or a keyword."""

    build: Callable[[pd.DataFrame], bytes]
    expect: int | str
    warning: str | None = None  # a word the one warning line must hold
    ids: Callable[[pd.DataFrame], list[str]] | None = None  # expected ids, as text


def _ids(base: pd.DataFrame) -> list[str]:
    return [str(v) for v in base["loan_id"]]


def _some(values: list, n: int = ROWS) -> list:
    return (values * n)[:n]


CASES: dict[str, Case] = {
    # scored: what is reasonable to accept, with what was adjusted in one warning line
    "extra and injection-named columns": Case(
        lambda b: _csv(b.assign(extra="x", **{'x"; drop table ml.model_runs; --': 1})),
        ROWS,
        ids=_ids,
    ),
    "text in a numeric column, a minority": Case(
        lambda b: _csv(_with("credit_score", lambda s: ["abc", *s[1:]])(b)),
        ROWS,
        warning="credit_score",
    ),
    "NaN and infinities": Case(
        lambda b: _csv(_with("loan_amount", _some(["NaN", "inf", "-Infinity", 12000]))(b)),
        ROWS,
        warning="infinite",
    ),
    "huge and negative values": Case(
        lambda b: _csv(_with("annual_income", _some([1e308, -1e308, 1e30, -5, 1e15]))(b)),
        ROWS,
        warning="annual_income",
    ),
    "numbers overflowing a double": Case(
        lambda b: _csv(_with("loan_amount", _some(["1e400", "-1e400", "5000"]))(b)),
        ROWS,
        warning="infinite",
    ),
    "a column entirely empty": Case(
        lambda b: _csv(_with("debt_to_income", None)(b)), ROWS, warning="no values"
    ),
    "unseen categories": Case(
        lambda b: _csv(_with("purpose", _some(["space_travel", "car"]))(b)),
        ROWS,
        warning="space_travel",
    ),
    "duplicate ids": Case(
        lambda b: _csv(_with("loan_id", lambda s: [s[0], *s[:-1]])(b)),
        ROWS,
        warning="more than once",
        ids=lambda b: [str(b["loan_id"][0]), *map(str, b["loan_id"][:-1])],
    ),
    "UTF-8 BOM and CRLF": Case(
        lambda b: codecs.BOM_UTF8 + _csv(b).replace(b"\n", b"\r\n"), ROWS, ids=_ids
    ),
    "semicolon delimiter": Case(lambda b: _csv(b, sep=";"), ROWS, ids=_ids),
    "tab delimiter": Case(lambda b: _csv(b, sep="\t"), ROWS, ids=_ids),
    "latin-1 bytes": Case(
        lambda b: _with("purpose", "café")(b).to_csv(index=False).encode("latin-1"),
        ROWS,
        warning="café",
    ),
    "UTF-16 with a BOM": Case(lambda b: b.to_csv(index=False).encode("utf-16"), ROWS, ids=_ids),
    "a single row": Case(lambda b: _csv(b.head(1)), 1, ids=lambda b: _ids(b)[:1]),
    "blank lines and mixed line ends": Case(
        lambda b: b"\n\n" + _csv(b).replace(b"\n", b"\r\n", 3).replace(b"\n", b"\n\n", 2), ROWS
    ),
    "id and feature names in other case": Case(
        lambda b: _csv(b.rename(columns={"loan_id": "LOAN_ID", "credit_score": " Credit_Score "})),
        ROWS,
        ids=_ids,
    ),
    "ids as floats": Case(
        lambda b: _csv(_with("loan_id", lambda s: [f"{v}.0" for v in s])(b)), ROWS, ids=_ids
    ),
    "ids as text with leading zeros": Case(
        lambda b: _csv(_with("loan_id", lambda s: [f"{v:06d}" for v in s])(b)),
        ROWS,
        ids=lambda b: [f"{v:06d}" for v in b["loan_id"]],
    ),
    "no id column": Case(
        lambda b: _csv(b.drop(columns=["loan_id"])),
        ROWS,
        warning="numbered",
        ids=lambda b: [str(i) for i in range(1, ROWS + 1)],
    ),
    "booleans as text in a numeric column": Case(
        lambda b: _csv(_with("delinquencies_2y", _some(["true", "false"]))(b)), ROWS
    ),
    "quoted delimiters and line breaks in text": Case(
        lambda b: _csv(_with("purpose", _some(['car, "new"\nmodel', "car"]))(b)), ROWS
    ),
    # refused: one line naming the problem
    "an empty file": Case(lambda b: b"", "no rows to score"),
    "only empty lines": Case(lambda b: b"\n\r\n  \n", "no rows to score"),
    "a header only": Case(lambda b: _csv(b.head(0)), "no rows to score"),
    "a missing column": Case(lambda b: _csv(b.drop(columns=["debt_to_income"])), "debt_to_income"),
    "a numeric column of text": Case(
        lambda b: _csv(_with("credit_score", "excellent")(b)), "credit_score"
    ),
    "thousands separators": Case(
        lambda b: _csv(_with("loan_amount", lambda s: [f"{v:,.0f}" for v in s])(b)),
        "thousands separators",
    ),
    "decimal commas": Case(
        lambda b: _csv(
            _with("interest_rate", lambda s: [str(v).replace(".", ",") for v in s])(b), sep=";"
        ),
        "interest_rate",
    ),  # fmt: skip
    "dates in a numeric column": Case(
        lambda b: _csv(_with("credit_score", "2024-01-31")(b)), "credit_score"
    ),
    "binary garbage": Case(lambda b: bytes(range(256)) * 8, "text CSV"),
    "NUL bytes": Case(lambda b: _csv(b)[:300] + b"\x00" + _csv(b)[300:], "NUL"),
    "UTF-16 without a BOM": Case(lambda b: b.to_csv(index=False).encode("utf-16-le"), "NUL"),
    "a gzip file": Case(lambda b: gzip.compress(_csv(b), mtime=0), "gzip"),
    "non-Western bytes": Case(
        lambda b: "名前,年齢\n山田太郎,30\n田中花子,25\n".encode("shift_jis"), "UTF-8"
    ),
    "duplicate header names": Case(
        lambda b: _csv(b).replace(b"grade", b"purpose", 1), "duplicate column name"
    ),
    "the id twice, in different case": Case(
        lambda b: _csv(b.assign(LOAN_ID=b["loan_id"])), "duplicate column name"
    ),
    "very long header names": Case(
        lambda b: _csv(b.rename(columns={"grade": "g" * 5000})), "missing column 'grade'"
    ),
    "a ragged row": Case(lambda b: _csv(b) + b"1,2,3\n", "3 fields where the header has"),
    "an unclosed quote": Case(lambda b: _csv(b) + b'"oops,1\n', "never closed"),
}


@pytest.mark.parametrize("name", CASES)
def test_predict_csv(predict_env, tmp_path, capsys, name: str) -> None:
    case = CASES[name]
    wh, base = predict_env["warehouse"], predict_env["base"]
    before = _state(wh)
    src = tmp_path / "new rows é.csv"  # spaces and unicode in the path too
    src.write_bytes(case.build(base.copy()))
    out = tmp_path / "scored.csv"
    argv = ["--task", TASK, "--input", str(src), "--output", str(out)]
    code, stdout, err = _cli(predict_main, "ml.predict", argv, capsys)
    assert "Traceback" not in err
    if isinstance(case.expect, str):
        _assert_refused(code, stdout, err, case.expect)
        assert not out.exists()
    else:
        assert code == 0, err
        assert f"scored {case.expect:,} rows" in stdout
        scored = _assert_scored(out, case.expect)
        if case.ids:
            assert list(scored["loan_id"]) == case.ids(base)
        lines = err.strip().splitlines()
        assert len(lines) <= 1, err
        if case.warning:
            assert lines and "warning" in lines[0] and case.warning in lines[0], err
    assert _state(wh) == before


def test_predict_matches_the_training_scores_after_coercion(predict_env, tmp_path, capsys):
    """Numbers written as text with blanks are the same numbers: the same probabilities."""
    wh, base = predict_env["warehouse"], predict_env["base"]
    text = base.copy()
    text["credit_score"] = [f"  {v} " for v in text["credit_score"]]
    (tmp_path / "a.csv").write_bytes(_csv(base))
    (tmp_path / "b.csv").write_bytes(_csv(text))
    for name in ("a", "b"):
        argv = ["--task", TASK, "--input", str(tmp_path / f"{name}.csv"),
                "--output", str(tmp_path / f"{name}.out.csv")]  # fmt: skip
        assert _cli(predict_main, "ml.predict", argv, capsys)[0] == 0
    a, b = (pd.read_csv(tmp_path / f"{n}.out.csv") for n in ("a", "b"))
    np.testing.assert_allclose(a["probability"], b["probability"])
    with duckdb.connect(str(wh), read_only=True) as con:
        stored = con.execute(
            f"select probability from ml.{TASK}_predictions where loan_id in "
            f"(select unnest(?::bigint[])) order by loan_id",
            [list(map(int, base["loan_id"]))],
        ).fetchall()
    np.testing.assert_allclose(a["probability"], [r[0] for r in stored], atol=1e-6)


# --------------------------------------------------------------------------------------------
# ml.predict: arguments, tables, outputs

#: name -> (arguments replacing the defaults, rows scored or a keyword of the refusal)
ARG_CASES: dict[str, tuple[dict[str, str], int | str]] = {
    "unknown task": ({"--task": "nope"}, "no deployed model for task 'nope'"),
    "task like injection": ({"--task": "x'; drop table ml.model_runs; --"}, "invalid task name"),
    "table like injection": ({"--table": 'x"; drop table ml.model_runs; --'}, "invalid table name"),
    "a view": ({"--table": "raw.loan_view"}, 9),
    "a table with zero rows": ({"--table": "raw.no_loans"}, "no rows to score"),
    "a view over a dropped table": ({"--table": "raw.broken"}, "cannot read raw.broken"),
    "a table that does not exist": ({"--table": "raw.nope"}, "does not exist"),
    "write-table like injection": (
        {"--write-table": 'ml.x"; drop table ml.model_runs; --'}, "invalid table name"
    ),
    "write-table ml.model_runs": ({"--write-table": "ml.model_runs"}, "ml.train owns"),
    "write-table ml.Model_Runs": ({"--write-table": "ml.Model_Runs"}, "ml.train owns"),
    "write-table ML.model_runs": ({"--write-table": "ML.model_runs"}, "ml.train owns"),
    "write-table a task's predictions": (
        {"--write-table": f"ml.{TASK}_predictions"}, "ml.train owns"
    ),
    "write-table a view": ({"--write-table": "ml.a_view"}, "is a view"),
    "write-table outside ml": ({"--write-table": "marts.loan_features"}, "schema ml"),
    "output in a missing folder": ({"--output": "{tmp}/no/such/out.csv"}, "no such folder"),
    "output is a directory": ({"--output": "{tmp}"}, "directory"),
    "output is the warehouse": ({"--output": "{warehouse}"}, "the warehouse file"),
    "input is a directory": ({"--input": "{tmp}"}, "is a directory"),
    "input does not exist": ({"--input": "{tmp}/nope.csv"}, "no such file"),
    "input path too long": ({"--input": "{tmp}/" + "x" * 300 + ".csv"}, "cannot be read"),
}  # fmt: skip


@pytest.mark.parametrize("name", ARG_CASES)
def test_predict_arguments(predict_env, tmp_path, capsys, name: str) -> None:
    changes, expect = ARG_CASES[name]
    wh = predict_env["warehouse"]
    (tmp_path / "in.csv").write_bytes(_csv(predict_env["base"]))
    args = {"--task": TASK, "--input": "{tmp}/in.csv", "--output": "{tmp}/out.csv"}
    if "--table" in changes:
        del args["--input"]
    if "--write-table" in changes:
        del args["--output"]
    args.update(changes)
    argv = [
        part.replace("{tmp}", str(tmp_path)).replace("{warehouse}", str(wh))
        for pair in args.items()
        for part in pair
    ]
    before = _state(wh)
    code, out, err = _cli(predict_main, "ml.predict", argv, capsys)
    if isinstance(expect, str):
        _assert_refused(code, out, err, expect)
        assert _state(wh) == before
        assert not (tmp_path / "out.csv").exists()
    else:
        assert code == 0 and len(err.strip().splitlines()) <= 1, err
        _assert_scored(tmp_path / "out.csv", expect)


def test_write_table_is_all_or_nothing(predict_env, tmp_path, capsys) -> None:
    wh, base = predict_env["warehouse"], predict_env["base"]
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(_csv(base))
    bad.write_bytes(_csv(_with("credit_score", "n/a but text")(base)))
    args = ["--task", TASK, "--write-table", "ml.hostile_scores", "--input"]
    code, out, err = _cli(predict_main, "ml.predict", [*args, str(good)], capsys)
    assert code == 0 and "wrote ml.hostile_scores (12 rows)" in out, err
    runs, relations = _state(wh)
    code, out, err = _cli(predict_main, "ml.predict", [*args, str(bad)], capsys)
    _assert_refused(code, out, err, "credit_score")
    assert _state(wh) == (runs, relations)  # the earlier scores are still there, untouched
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute("select count(*) from ml.hostile_scores").fetchone() == (ROWS,)
    _no_leftovers(wh)


def test_a_refused_input_leaves_an_existing_output_alone(predict_env, tmp_path, capsys) -> None:
    out = tmp_path / "scored.csv"
    out.write_text("the previous results\n")
    (tmp_path / "bad.csv").write_bytes(_csv(predict_env["base"].drop(columns=["grade"])))
    argv = ["--task", TASK, "--input", str(tmp_path / "bad.csv"), "--output", str(out)]
    _assert_refused(*_cli(predict_main, "ml.predict", argv, capsys), "grade")
    assert out.read_text() == "the previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "scored.csv"]


def test_output_through_a_symlink_replaces_its_target(predict_env, tmp_path, capsys) -> None:
    (tmp_path / "in.csv").write_bytes(_csv(predict_env["base"]))
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    argv = ["--task", TASK, "--input", str(tmp_path / "in.csv"), "--output", str(link)]
    assert _cli(predict_main, "ml.predict", argv, capsys)[0] == 0
    assert link.is_symlink()
    _assert_scored(target, ROWS)


@pytest.mark.skipif(AS_ROOT, reason="root reads and writes regardless of permissions")
def test_unreadable_input_and_unwritable_output(predict_env, tmp_path, capsys) -> None:
    src = tmp_path / "in.csv"
    src.write_bytes(_csv(predict_env["base"]))
    src.chmod(0)
    argv = ["--task", TASK, "--input", str(src), "--output", str(tmp_path / "o.csv")]
    _assert_refused(*_cli(predict_main, "ml.predict", argv, capsys), "permission denied")
    src.chmod(0o644)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    argv = ["--task", TASK, "--input", str(src), "--output", str(locked / "o.csv")]
    _assert_refused(*_cli(predict_main, "ml.predict", argv, capsys), "cannot write")
    locked.chmod(0o755)
    assert not list(locked.iterdir())


# --------------------------------------------------------------------------------------------
# End to end: the real commands' exit codes and their single stderr line


def test_subprocess_scores_huge_values_with_one_warning_line(trained, tmp_path) -> None:
    src = tmp_path / "huge.csv"
    src.write_bytes(_csv(_with("annual_income", _some([1e308, -1e308, "inf", 50_000]))(
        trained["base"])))  # fmt: skip
    out = tmp_path / "scored.csv"
    proc = run_python(
        "ml.predict", "--task", TASK, "--input", str(src), "--output", str(out),
        warehouse=trained["warehouse"], env_extra=trained["env"],
    )  # fmt: skip
    assert f"scored {ROWS} rows" in proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ml.predict: warning: annual_income: 9 values")
    _assert_scored(out, ROWS)


@pytest.mark.parametrize(
    ("args", "keyword"),
    [
        (["--input", "{empty}", "--output", "{out}"], "no rows to score"),
        (["--input", "{good}", "--write-table", 'ml.x"; drop table ml.model_runs; --'],
         "invalid table name"),
    ],
)  # fmt: skip
def test_subprocess_refusals_are_one_line(trained, tmp_path, args, keyword) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "good.csv").write_bytes(_csv(trained["base"]))
    paths = {"empty": tmp_path / "empty.csv", "good": tmp_path / "good.csv",
             "out": tmp_path / "out.csv"}  # fmt: skip
    before = _state(trained["warehouse"])
    proc = run_python(
        "ml.predict", "--task", TASK, *[a.format(**paths) for a in args],
        warehouse=trained["warehouse"], env_extra=trained["env"], check=False,
    )  # fmt: skip
    _assert_refused(proc.returncode, proc.stdout, proc.stderr, keyword)
    assert _state(trained["warehouse"]) == before
    assert not paths["out"].exists()


# --------------------------------------------------------------------------------------------
# ml.train: what a bring-your-own table can hold


TRAIN_CASES: dict[str, tuple[list[str], str]] = {
    "a single-class target": (["--table", "raw.byo", "--target", "one_class"], "single value"),
    "a text target as regression": (
        ["--table", "raw.byo", "--target", "label", "--problem", "regression"],
        "is text",
    ),
    "an infinite regression target": (
        ["--table", "raw.byo", "--target", "amount", "--problem", "regression"],
        "infinite",
    ),
    "a table with zero rows": (["--table", "raw.byo_empty", "--target", "Approved?"], "no rows"),
    "a view over a dropped table": (["--table", "raw.broken", "--target", "a"], "cannot read"),
    "--table like injection": (
        ["--table", 'x"; drop table ml.model_runs; --', "--target", "a"],
        "invalid table name",
    ),
    "--target like injection": (
        ["--table", "raw.byo", "--target", 'x"; drop table ml.model_runs; --'],
        "is not in",
    ),
    "--id like injection": (
        ["--table", "raw.byo", "--target", "Approved?", "--id", "x'); drop table ml.x; --"],
        "is not in",
    ),
    "--task like injection": (
        ["--table", "raw.byo", "--target", "Approved?", "--task", "x; drop table ml.model_runs"],
        "invalid task name",
    ),
    "--task with a line break": (
        ["--table", "raw.byo", "--target", "Approved?", "--task", "byo\n"],
        "invalid task name",
    ),
    "an id named like a predictions column": (
        ["--table", "raw.byo", "--target", "Approved?", "--id", "prediction"],
        "predictions table",
    ),
    "the id is the target": (
        ["--table", "raw.byo", "--target", "Approved?", "--id", "approved?"],
        "both the target",
    ),
}


@pytest.mark.parametrize("name", TRAIN_CASES)
def test_train_refusals(predict_env, capsys, name: str) -> None:
    args, keyword = TRAIN_CASES[name]
    before = _state(predict_env["warehouse"])
    code, out, err = _cli(train_main, "ml.train", [*args, "--fast"], capsys)
    _assert_refused(code, out, err, keyword)
    assert _state(predict_env["warehouse"]) == before


def test_train_reads_a_hostile_table_into_finite_features(predict_env) -> None:
    """An all-missing column is dropped and reported; a constant, infinite, 1e308, list and
    time-zone column become features the models accept (checked by fitting two of them)."""
    spec = builtin_or_custom(None, "raw.byo", "approved?", "applicant id", "auto")
    with open_warehouse(read_only=True) as wh:
        data = prepare_task(wh, spec)
    assert (data.spec.target, data.id_column) == ("Approved?", "Applicant ID")  # any case
    assert data.features.dropped["all_missing"] == "entirely missing"
    assert {"weird; --num", "constant", "applied_at"} <= set(data.features.numeric)
    assert "a_list" in data.features.categorical
    X = data.X_all[list(data.features.numeric)].to_numpy(dtype=float)
    finite = X[~np.isnan(X)]
    assert np.isfinite(finite).all() and (np.abs(finite) <= MAX_ABS_VALUE).all()
    y = data.y
    for name in ("linear", "xgboost"):
        model = make_pipeline(data.features, base_estimator(name, "binary", y, seed=0))
        proba = model.fit(data.X_all.iloc[data.labelled], y).predict_proba(data.X_all)[:, 1]
        assert np.isfinite(proba).all()


def test_refused_table_names_never_reach_sql(predict_env) -> None:
    for table in ['raw.t"; drop table ml.model_runs; --', "raw\n.t", "raw.t; select 1"]:
        with pytest.raises(UserError, match="invalid table name"):
            builtin_or_custom(None, table, "y", None, "auto")
    assert _state(predict_env["warehouse"])[0]  # the registry is still there


# --------------------------------------------------------------------------------------------
# scripts.load_csv: the classes tests/scripts/test_load_csv.py does not cover


@pytest.mark.parametrize(
    ("table", "keyword"),
    [
        ("temp.t", "DuckDB uses that name"),
        ("system.t", "DuckDB uses that name"),
        ("memory.t", "DuckDB uses that name"),
        ("warehouse_db.t", "DuckDB uses that name"),
        ("raw\n.t", "invalid table name"),
        ("raw.t\x00", "invalid table name"),
        ("raw.t;drop table ml.model_runs", "invalid table name"),
    ],
)
def test_load_csv_refuses_reserved_and_malformed_table_names(tmp_path, table, keyword) -> None:
    wh = tmp_path / "wh.duckdb"
    (tmp_path / "a.csv").write_text("a\n1\n")
    with pytest.raises(UserError, match=keyword):
        load_csv(tmp_path / "a.csv", table, warehouse=wh)
    assert not wh.exists()


def test_load_csv_hostile_names_and_paths(tmp_path, monkeypatch, capsys) -> None:
    wh = tmp_path / "wh.duckdb"
    monkeypatch.setenv("WAREHOUSE_PATH", str(wh))
    with duckdb.connect(str(wh)) as con:
        con.execute("create schema ml; create table ml.model_runs as select 1 as run_id")
    folder = tmp_path / "dir with spaces ü"
    folder.mkdir()
    src = folder / "données (1).csv"
    long_name = "n" * 10_000
    src.write_text(f'"x""; drop table ml.model_runs; --",{long_name},y\n1,2,3\n')
    code, out, err = _cli(load_main, "scripts.load_csv", [str(src), "--table", "raw.t"], capsys)
    assert code == 0 and err == "" and "created raw.t" in out
    with duckdb.connect(str(wh), read_only=True) as con:
        names = [r[0] for r in con.execute("describe raw.t").fetchall()]
        assert names == ['x"; drop table ml.model_runs; --', long_name, "y"]
        assert con.execute("select * from ml.model_runs").fetchall() == [(1,)]
    too_long = str(tmp_path / ("x" * 300 + ".csv"))
    code, out, err = _cli(load_main, "scripts.load_csv", [too_long, "--table", "raw.u"], capsys)
    _assert_refused(code, out, err, "cannot be read")
    code, out, err = _cli(load_main, "scripts.load_csv", ["/dev/null", "--table", "raw.u"], capsys)
    _assert_refused(code, out, err, "not a regular file")
    (tmp_path / "h.csv").write_bytes("a,b\r\n".encode("utf-16"))
    code, out, err = _cli(
        load_main, "scripts.load_csv", [str(tmp_path / "h.csv"), "--table", "raw.u"], capsys
    )
    _assert_refused(code, out, err, "no data rows")
    _no_leftovers(wh)


@pytest.mark.skipif(AS_ROOT, reason="root reads files regardless of permissions")
def test_load_csv_unreadable_file(tmp_path, capsys) -> None:
    src = tmp_path / "a.csv"
    src.write_text("a\n1\n")
    src.chmod(0)
    with pytest.raises(UserError, match="permission denied"):
        load_csv(src, "raw.t", warehouse=tmp_path / "wh.duckdb")
