"""The CSV loader: sniffing, exact header names, type inference, refusals, atomic writes.

Every CSV is generated here in tmp_path; the tests call `ml.ingestion.csv` in-process and read
what landed back with DuckDB itself (the command: tests/scripts/test_load_csv.py).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import random
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml.core.errors import UserError
from ml.core.warehouse import open_warehouse
from ml.ingestion.csv import CsvError, EmptyCsvError, check_table_name, load_csv, read_csv

TABLE = "raw.t"


def _write(tmp_path: Path, content: str | bytes, name: str = "data.csv", **kw: str) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode(kw.get("encoding", "utf-8"))
    path.write_bytes(content)
    return path


def _wh(tmp_path: Path) -> Path:
    return tmp_path / "wh" / "warehouse.duckdb"


def _types(wh: Path, relation: str = TABLE) -> dict[str, str]:
    schema, table = relation.split(".")
    with duckdb.connect(str(wh), read_only=True) as con:
        rows = con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, table],
        ).fetchall()
    return dict(rows)


def _rows(wh: Path, relation: str = TABLE) -> list[tuple]:
    with duckdb.connect(str(wh), read_only=True) as con:
        return con.execute(f"select * from {relation}").fetchall()


def _column(wh: Path, name: str, relation: str = TABLE) -> list:
    with duckdb.connect(str(wh), read_only=True) as con:
        names = [r[0] for r in con.execute(f"describe {relation}").fetchall()]
        idx = names.index(name)
    return [r[idx] for r in _rows(wh, relation)]


def _load(tmp_path: Path, content: str | bytes, **kw) -> tuple[Path, object]:
    """Load `content` into raw.t of a fresh warehouse; return the warehouse and the info."""
    wh = _wh(tmp_path)
    info = load_csv(_write(tmp_path, content), TABLE, warehouse=wh, **kw)
    return wh, info


def _one_column(tmp_path: Path, values: list[str]) -> tuple[str, list]:
    """Land `values` as column `v` (next to an id) and return its type and values in row order."""
    body = "".join(f'{i},"{v}"\n' if "," in v else f"{i},{v}\n" for i, v in enumerate(values))
    wh, _ = _load(tmp_path, "id,v\n" + body)
    return _types(wh)["v"], _column(wh, "v")


# --------------------------------------------------------------------------------------------
# Dialects and encodings


@pytest.mark.parametrize(
    ("delimiter", "name"), [(",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")]
)
def test_delimiter_is_sniffed(tmp_path, delimiter: str, name: str) -> None:
    d = delimiter
    text = (
        f'id{d}city{d}amount\n1{d}"Paris{d} France"{d}1.5\n2{d}Lyon{d}2.25\n3{d}"say ""hi"""{d}-3\n'
    )
    wh, info = _load(tmp_path, text)
    assert info.delimiter == delimiter and info.delimiter_name == name
    assert _types(wh) == {"id": "BIGINT", "city": "VARCHAR", "amount": "DOUBLE"}
    assert _rows(wh) == [(1, f"Paris{d} France", 1.5), (2, "Lyon", 2.25), (3, 'say "hi"', -3.0)]


def test_semicolon_file_with_decimal_commas_keeps_them_as_text(tmp_path) -> None:
    wh, info = _load(tmp_path, "a;b\n1,5;x\n2,25;y\n")
    assert info.delimiter == ";"
    assert _rows(wh) == [("1,5", "x"), ("2,25", "y")]


def test_utf8_bom_and_crlf(tmp_path) -> None:
    wh, info = _load(tmp_path, b"\xef\xbb\xbfname,n\r\nZo\xc3\xab,1\r\nM\xc3\xa1laga,2\r\n")
    assert info.encoding == "utf-8 with BOM" and info.line_ending == "CRLF"
    assert list(_types(wh)) == ["name", "n"]  # no BOM in the first name, no \r in the last
    assert _rows(wh) == [("Zoë", 1), ("Málaga", 2)]


def test_latin1_bytes_fall_back(tmp_path) -> None:
    wh, info = _load(tmp_path, "name;city\nZoë;Málaga\nJosé;Köln\n".encode("latin-1"))
    assert info.encoding == "latin-1"
    assert any("not valid UTF-8" in n for n in info.notes)
    assert _rows(wh) == [("Zoë", "Málaga"), ("José", "Köln")]


def test_cp1252_specials_are_decoded(tmp_path) -> None:
    wh, info = _load(tmp_path, "item,price\n“Café” menu,5 €\n".encode("cp1252"))
    assert info.encoding == "cp1252"
    assert _rows(wh) == [("“Café” menu", "5 €")]


def test_utf16_with_bom_from_excel(tmp_path) -> None:
    wh, info = _load(tmp_path, "name\tage\r\nZoë\t31\r\n".encode("utf-16"))
    assert info.encoding == "utf-16" and info.delimiter == "\t"
    assert _types(wh) == {"name": "VARCHAR", "age": "BIGINT"}
    assert _rows(wh) == [("Zoë", 31)]


def test_quoted_fields_with_delimiters_and_newlines(tmp_path) -> None:
    text = 'id,comment,n\r\n1,"line one\r\nline two, with comma",3\r\n2,"a\nb",4\r\n3,plain,5\r\n'
    wh, info = _load(tmp_path, text)
    assert info.rows == 3
    assert _column(wh, "comment") == ["line one\r\nline two, with comma", "a\nb", "plain"]
    assert _column(wh, "n") == [3, 4, 5]


def test_mixed_line_ends(tmp_path) -> None:
    wh, info = _load(tmp_path, 'a,b\n1,"x\r\ny"\r\n3,4\n5,z\r\n')
    assert info.line_ending == "mixed" and any("mixes CRLF and LF" in n for n in info.notes)
    assert _rows(wh) == [(1, "x\r\ny"), (3, "4"), (5, "z")]


def test_old_mac_cr_line_ends(tmp_path) -> None:
    wh, info = _load(tmp_path, "a,b\r1,2\r3,4\r")
    assert info.line_ending == "CR" and _rows(wh) == [(1, 2), (3, 4)]


def test_a_field_of_several_megabytes(tmp_path) -> None:
    wh, _ = _load(tmp_path, 'id,doc\n1,"' + "word, " * 600_000 + '"\n2,short\n')
    assert [len(v) for v in _column(wh, "doc")] == [3_600_000, 5]


def test_blank_lines_are_skipped(tmp_path) -> None:
    wh, info = _load(tmp_path, "\n\na,b\n1,2\n\n3,4\n\n")
    assert info.rows == 2 and _rows(wh) == [(1, 2), (3, 4)]


def test_single_column_file(tmp_path) -> None:
    wh, info = _load(tmp_path, "note\nhello, world\n\nbye\nNA\n\n\n")
    assert [c.name for c in info.columns] == ["note"]
    assert _rows(wh) == [("hello, world",), ("bye",), (None,)]  # blank lines skipped, NA kept


def test_file_name_with_glob_characters(tmp_path) -> None:
    path = _write(tmp_path, "a,b\n1,2\n", name="sales [2024] *.csv")
    _, info = read_csv(path)
    assert info.rows == 1


# --------------------------------------------------------------------------------------------
# Column names


def test_header_names_are_kept_exactly(tmp_path) -> None:
    names = ["Annual Income (k$)", "a.b", "Spending Score (1-100)", "Zoë $", 'say "x"', "ñ-ü"]
    header = ",".join(f'"{n.replace(chr(34), chr(34) * 2)}"' for n in names)
    wh, _ = _load(tmp_path, f"{header}\n1,2,3,4,5,6\n")
    assert list(_types(wh)) == names
    with open_warehouse(wh, read_only=True) as warehouse:
        df = warehouse.read_frame(TABLE, columns=["Annual Income (k$)", "a.b"])
    assert df.to_dict("records") == [{"Annual Income (k$)": 1, "a.b": 2}]


def test_header_names_are_trimmed(tmp_path) -> None:
    wh, _ = _load(tmp_path, "  id , \tname\t\n1,x\n")
    assert list(_types(wh)) == ["id", "name"]


def test_empty_header_names_become_column_n(tmp_path) -> None:
    wh, info = _load(tmp_path, ",a,\n0,x,\n1,y,\n")  # a pandas index and a trailing delimiter
    assert list(_types(wh)) == ["column_1", "a", "column_3"]
    assert any("column_1" in n for n in info.notes)
    assert _column(wh, "column_3") == [None, None]


@pytest.mark.parametrize("header", ["a,b,a", "Age,age", "x, x "])
def test_duplicate_header_is_refused(tmp_path, header: str) -> None:
    path = _write(tmp_path, header + "\n" + ",".join("1" * (header.count(",") + 1)) + "\n")
    with pytest.raises(CsvError, match="duplicate column name"):
        read_csv(path)


# --------------------------------------------------------------------------------------------
# Types


@pytest.mark.parametrize(
    ("values", "duck_type", "expected"),
    [
        (["1", "-2", "0"], "BIGINT", [1, -2, 0]),
        ([" 42 ", "7"], "BIGINT", [42, 7]),
        (["0", "1", "1"], "BIGINT", [0, 1, 1]),
        (["0001", "0002", "1234"], "VARCHAR", ["0001", "0002", "1234"]),
        (["02134", "90210"], "VARCHAR", ["02134", "90210"]),
        (["+4915112345678", "+33612345678"], "VARCHAR", ["+4915112345678", "+33612345678"]),
        (["1.5", "2", "-3e2", ".5"], "DOUBLE", [1.5, 2.0, -300.0, 0.5]),
        (["true", "FALSE", "True"], "BOOLEAN", [True, False, True]),
        (["true", "NA", " false ", ""], "BOOLEAN", [True, None, False, None]),
        (["1.5", "NaN", "", "2"], "DOUBLE", [1.5, None, None, 2.0]),
        (["2024-01-31", "N/A"], "DATE", [date(2024, 1, 31), None]),
        (["Y", "N", "Y"], "VARCHAR", ["Y", "N", "Y"]),
        (["Yes", "No"], "VARCHAR", ["Yes", "No"]),
        (["2024-01-31", "2023-12-01"], "DATE", [date(2024, 1, 31), date(2023, 12, 1)]),
        (
            ["2024-01-31 08:15:00", "2024-01-31T09:00", "2024-02-01"],
            "TIMESTAMP",
            [datetime(2024, 1, 31, 8, 15), datetime(2024, 1, 31, 9), datetime(2024, 2, 1)],
        ),
        (
            ["2024-01-31T08:15:00Z", "2024-01-31 10:15+02:00"],
            "TIMESTAMP WITH TIME ZONE",
            [datetime(2024, 1, 31, 8, 15, tzinfo=UTC)] * 2,
        ),
        (["2024-02-30", "2024-01-01"], "VARCHAR", ["2024-02-30", "2024-01-01"]),
        (["31/01/2024", "01/02/2024"], "VARCHAR", ["31/01/2024", "01/02/2024"]),
        (["0", "1", "3+"], "VARCHAR", ["0", "1", "3+"]),
        (["12", "12 kg"], "VARCHAR", ["12", "12 kg"]),
        (["1,234", "5"], "VARCHAR", ["1,234", "5"]),
        (
            ["-9223372036854775808", "9223372036854775807"],
            "BIGINT",
            [-9223372036854775808, 9223372036854775807],
        ),
        (
            ["99999999999999999999", "-12"],
            "VARCHAR",
            ["99999999999999999999", "-12"],
        ),
        (["99999999999999999999", "0.5"], "DOUBLE", [1e20, 0.5]),
        (["-1000000", "-0.001", "-5"], "DOUBLE", [-1e6, -0.001, -5.0]),
        (["x", " padded ", "NA"], "VARCHAR", ["x", " padded ", None]),
        (["None", "-", "?"], "VARCHAR", ["None", "-", "?"]),
    ],
)
def test_type_inference(tmp_path, values: list[str], duck_type: str, expected: list) -> None:
    got_type, got = _one_column(tmp_path, values)
    assert got_type == duck_type
    if duck_type == "TIMESTAMP WITH TIME ZONE":
        got = [v.astimezone(UTC) for v in got]
    assert got == expected


def test_missing_markers_become_null(tmp_path) -> None:
    markers = ["", "  ", "NA", "N/A", "n/a", "#N/A", "NaN", "nan", "null", "NULL"]
    got_type, got = _one_column(tmp_path, ["1", *markers, '""', "2"])
    assert got_type == "BIGINT"
    assert got == [1, *[None] * (len(markers) + 1), 2]


def test_infinities_keep_a_double_column(tmp_path) -> None:
    wh, info = _load(tmp_path, "x\n1.5\ninf\n-Infinity\nNaN\n")
    assert _types(wh) == {"x": "DOUBLE"}
    assert _column(wh, "x")[:3] == [1.5, math.inf, -math.inf]
    assert _column(wh, "x")[3] is None
    assert any("2 infinite values" in n for n in info.columns[0].notes)


def test_entirely_empty_column(tmp_path) -> None:
    wh, info = _load(tmp_path, "a,empty,b\n1,,x\n2,,y\n3,NA,z\n")
    assert _types(wh) == {"a": "BIGINT", "empty": "VARCHAR", "b": "VARCHAR"}
    assert _column(wh, "empty") == [None, None, None]
    assert info.columns[1].missing == 3


@pytest.mark.parametrize(
    ("late_value", "duck_type"),
    [
        ("007", "VARCHAR"),
        ("2.5", "DOUBLE"),
        ("many", "VARCHAR"),
        ("99999999999999999999", "VARCHAR"),
    ],
)
def test_inference_reads_every_row_not_a_sample(tmp_path, late_value: str, duck_type: str) -> None:
    values = [str(i) for i in range(1, 25_000)] + [late_value]
    wh, info = _load(tmp_path, "v\n" + "\n".join(values) + "\n")
    assert _types(wh) == {"v": duck_type}
    assert info.rows == 25_000


def test_pandas_dtypes_through_the_warehouse(tmp_path) -> None:
    text = "id,code,x,flag,d,label\n1,007,1.5,true,2024-01-01,Y\n2,010,,false,2024-01-02,N\n"
    wh, _ = _load(tmp_path, text)
    with open_warehouse(wh, read_only=True) as warehouse:
        df = warehouse.read_frame(TABLE)
    assert pd.api.types.is_integer_dtype(df["id"])
    assert pd.api.types.is_string_dtype(df["code"]) and df["code"].tolist() == ["007", "010"]
    assert pd.api.types.is_float_dtype(df["x"]) and df["x"].isna().tolist() == [False, True]
    assert pd.api.types.is_bool_dtype(df["flag"])
    assert pd.api.types.is_datetime64_any_dtype(df["d"])
    assert pd.api.types.is_string_dtype(df["label"])


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.lists(
            st.text(
                st.characters(blacklist_categories=["Cc", "Cs"], blacklist_characters="\ufeff")
                | st.sampled_from([",", ";", "\t", "|", '"', "\n", "\r", " "]),
                max_size=12,
            ),
            min_size=3,
            max_size=3,
        ),
        min_size=1,
        max_size=8,
    ),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_any_text_round_trips(tmp_path_factory, rows: list[list[str]], delimiter: str) -> None:
    """Whatever text a CSV writer quotes, the loader reads back exactly (as text)."""
    tmp = tmp_path_factory.mktemp("rt")
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["first col", "second.col", "third (x)"])
    writer.writerows([["v" + v for v in row] for row in rows])  # "v": never a number or NA
    table, info = read_csv(_write(tmp, buf.getvalue()))
    assert info.delimiter == delimiter
    assert info.types == dict.fromkeys(["first col", "second.col", "third (x)"], "VARCHAR")
    assert [list(r.values()) for r in table.to_pylist()] == [["v" + v for v in r] for r in rows]


# --------------------------------------------------------------------------------------------
# Refusals


BAD_FILES = {
    "empty": (b"", "the file is empty"),
    "blank lines": (b"\n\n  \n", "the file is empty"),
    "only a BOM": (b"\xef\xbb\xbf", "the file is empty"),
    "header only": (b"a,b,c\n", "has a header but no data rows"),
    "header only, no newline": (b"a,b,c", "has a header but no data rows"),
    "header and blank lines": (b"a,b,c\r\n\r\n\r\n", "has a header but no data rows"),
    "NUL bytes": (b"a,b\n1,2\x00\x00\x01\n", "NUL byte"),
    "gzip": (gzip.compress(b"a,b\n1,2\n", mtime=0), "gzip"),
    "xlsx": (b"PK\x03\x04" + bytes(200), "Excel"),
    "random bytes": (
        bytes(b or 1 for b in random.Random(1).randbytes(4000)),
        "not look like a text",
    ),
    "shift_jis": ("名前,年齢\n山田太郎,30\n田中花子,25\n".encode("shift_jis"), "save it as UTF-8"),
    "utf-8 mixed with latin-1": (
        ("name\n" + "Zoë Müller\n" * 5).encode() + b"Jos\xe9\n",
        "save it as UTF-8",
    ),
    "control characters": (
        b"id,v\n" + b"\x01\x02\x03\x04\x05\x06\x07\x08,x\n" * 20,
        "control characters",
    ),
}


@pytest.mark.parametrize(("content", "message"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_files_are_refused(tmp_path, content: bytes, message: str) -> None:
    with pytest.raises(CsvError, match=message):
        read_csv(_write(tmp_path, content))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n7,8,9,10\n", "line 4: 4 fields where the header has 3"),
        ("a,b,c\n1,2,3\n4,5\n", "line 3: 2 fields where the header has 3"),
        ("a,b,c\r\n1,2,3\r\n4,5\r\n", "line 3: 2 fields where the header has 3"),
        ('a,b\n"x\ny",1\n"p,q",2\n5\n', "line 5: 1 field where the header has 2"),
        ("\n\na,b\n1,2\n\n3\n", "line 6: 1 field where the header has 2"),
        ("a;b\n1;2\n" * 3 + "1;2;3\n", "line 7: 3 fields where the header has 2"),
        ('a,b\n1,"abc\n2,3\n', "line 2: a quoted field is never closed"),
    ],
)
def test_ragged_rows_are_refused_naming_the_line(tmp_path, content: str, message: str) -> None:
    with pytest.raises(CsvError, match=message):
        read_csv(_write(tmp_path, content))


def test_ragged_row_far_down_names_its_line(tmp_path) -> None:
    content = "a,b\n" + "1,2\n" * 30_000 + "1,2,3\n"
    with pytest.raises(CsvError, match="line 30002: 3 fields"):
        read_csv(_write(tmp_path, content))


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(CsvError, match="no such file"):
        read_csv(tmp_path / "nope.csv")
    with pytest.raises(CsvError, match="is a directory"):
        read_csv(tmp_path)


@pytest.mark.parametrize(
    "table",
    [
        'x"; drop table ml.model_runs; --',
        "raw.t; drop table ml.model_runs",
        "t",
        "a.b.c",
        "raw.",
        "raw.my-data",
        "raw.1st",
        "",
    ],
)
def test_bad_table_names_are_refused(tmp_path, table: str) -> None:
    wh = _wh(tmp_path)
    with pytest.raises(UserError, match="invalid table name"):
        load_csv(_write(tmp_path, "a\n1\n"), table, warehouse=wh)
    assert not wh.exists()


@pytest.mark.parametrize(
    "table",
    ["staging.t", "marts.t", "ml.model_runs", "sim.t", "quality.t", "main.t", "ML.t", "Marts.x"],
)
def test_managed_schemas_are_refused(tmp_path, table: str) -> None:
    with pytest.raises(UserError, match="the project manages it"):
        load_csv(_write(tmp_path, "a\n1\n"), table, warehouse=_wh(tmp_path))
    assert not _wh(tmp_path).exists()


@pytest.mark.parametrize("table", ["raw.customers", "raw.Orders", "RAW.loans"])
def test_simulator_tables_are_refused(tmp_path, table: str) -> None:
    with pytest.raises(UserError, match="the simulator writes it"):
        load_csv(_write(tmp_path, "a\n1\n"), table, warehouse=_wh(tmp_path))


def test_other_user_schemas_are_allowed(tmp_path) -> None:
    wh = _wh(tmp_path)
    load_csv(_write(tmp_path, "a\n1\n"), "byo.my_table", warehouse=wh)
    assert _rows(wh, "byo.my_table") == [(1,)]


def test_refused_file_writes_nothing(tmp_path) -> None:
    wh = _wh(tmp_path)
    with pytest.raises(CsvError):
        load_csv(_write(tmp_path, "a,b\n1\n"), TABLE, warehouse=wh)
    assert not wh.exists()


# --------------------------------------------------------------------------------------------
# Replacing and atomicity


def test_replace_swaps_the_table(tmp_path) -> None:
    wh, first = _load(tmp_path, "a,b\n1,x\n")
    assert not first.replaced
    info = load_csv(_write(tmp_path, "c\n2.5\n3\n", name="v2.csv"), TABLE, warehouse=wh)
    assert info.replaced and info.table == TABLE
    assert _types(wh) == {"c": "DOUBLE"} and _rows(wh) == [(2.5,), (3.0,)]


def test_if_exists_fail_refuses_and_keeps_the_table(tmp_path) -> None:
    wh, _ = _load(tmp_path, "a\n1\n")
    with pytest.raises(UserError, match="already exists"):
        load_csv(_write(tmp_path, "a\n2\n", name="v2.csv"), TABLE, if_exists="fail", warehouse=wh)
    # also when the name differs only in case (DuckDB names are case-insensitive)
    with pytest.raises(UserError, match="already exists"):
        load_csv(_write(tmp_path, "a\n2\n", name="v2.csv"), "RAW.T", if_exists="fail", warehouse=wh)
    assert _rows(wh) == [(1,)]


def test_if_exists_fail_loads_a_new_table(tmp_path) -> None:
    wh, info = _load(tmp_path, "a\n1\n", if_exists="fail")
    assert _rows(wh) == [(1,)] and not info.replaced


@pytest.mark.parametrize("bad", ["a,b\n1,2\n3\n", "", "a,a\n1,2\n", "a,b\n", "a\n\x00\x00\x00"])
def test_previous_version_survives_a_refused_reload(tmp_path, bad: str) -> None:
    wh, _ = _load(tmp_path, "id,name\n1,old\n2,older\n")
    with pytest.raises(UserError):
        load_csv(_write(tmp_path, bad, name="bad.csv"), TABLE, warehouse=wh)
    assert _types(wh) == {"id": "BIGINT", "name": "VARCHAR"}
    assert _rows(wh) == [(1, "old"), (2, "older")]
    with duckdb.connect(str(wh), read_only=True) as con:
        tables = con.execute("select table_name from information_schema.tables").fetchall()
    assert tables == [("t",)]  # no temporary table left behind


def test_a_view_is_not_replaced(tmp_path) -> None:
    wh = _wh(tmp_path)
    wh.parent.mkdir(parents=True)
    with duckdb.connect(str(wh)) as con:
        con.execute("create schema raw; create view raw.t as select 1 as a")
    with pytest.raises(UserError, match="is a view"):
        load_csv(_write(tmp_path, "a\n2\n"), TABLE, warehouse=wh)
    assert _rows(wh) == [(1,)]


def test_bad_if_exists_value(tmp_path) -> None:
    with pytest.raises(UserError, match="--if-exists"):
        load_csv(_write(tmp_path, "a\n1\n"), TABLE, if_exists="append", warehouse=_wh(tmp_path))


# --------------------------------------------------------------------------------------------
# The public helpers


@pytest.mark.parametrize("table", ["temp.t", "system.t", "memory.t", "warehouse_db.t", "TEMP.t"])
def test_duckdb_catalog_names_are_refused(table: str) -> None:
    with pytest.raises(UserError, match="DuckDB uses that name for a catalog"):
        check_table_name(table)


def test_a_valid_table_name_is_split() -> None:
    assert check_table_name(" raw.my_data ") == ("raw", "my_data")
    assert check_table_name("byo.T_2") == ("byo", "T_2")


@pytest.mark.parametrize("content", [b"", b"\n \n", b"a,b\n", b"a,b\r\n\r\n"])
def test_files_without_data_rows_raise_the_empty_error(tmp_path, content: bytes) -> None:
    # ml.predict tells an empty input apart from a broken one by this class
    with pytest.raises(EmptyCsvError):
        read_csv(_write(tmp_path, content))
