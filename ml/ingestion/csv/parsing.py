"""Parsing a CSV file in DuckDB (in memory, no warehouse) into a typed Arrow table: `read_csv`.

Quotes are `"` and a quote inside a quoted field is doubled (RFC 4180); quoted fields may hold
delimiters and line breaks. CRLF, LF and CR line ends are all read, mixed ones too. Blank lines
are skipped. Every row must have as many fields as the header; the first one that does not is
refused with its line number in the file (1 = the header line).
"""

from __future__ import annotations

import csv
import re
import time
from dataclasses import replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ml.core.text import plural
from ml.core.warehouse.duckdb import scratch
from ml.ingestion.csv.dialect import Dialect, column_names, field_limit, sniff
from ml.ingestion.csv.encoding import CHUNK, Source, check_file, utf8_source
from ml.ingestion.csv.errors import CsvError, EmptyCsvError
from ml.ingestion.csv.inference import cast_sql, finish, infer_types, sql_literal
from ml.ingestion.csv.info import Column, CsvInfo

#: The longest record DuckDB reads (its default, 2 MB, is short for text with long documents).
_MAX_RECORD_BYTES = 1 << 26

_DUCK_LINE = re.compile(r"CSV Error on Line: (\d+)")
_DUCK_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _physical_line(source: Source, dialect: Dialect, record_no: int) -> int | None:
    """The file line where record `record_no` starts (DuckDB counts records, header = 1,
    blank lines included); None when the file has fewer records."""
    with source.text_path.open(encoding="utf-8-sig", newline="") as fh, field_limit():
        for _ in range(dialect.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=dialect.delimiter, skipinitialspace=True)
        count, start = 0, 1
        try:
            while True:
                start = reader.line_num + 1
                next(reader)
                count += 1
                if count == record_no:
                    return start + dialect.skip_lines + source.line_offset
        except (StopIteration, csv.Error):
            return None


def _first_bad_record(source: Source, dialect: Dialect, width: int) -> tuple[int, str] | None:
    """The first record that Python's csv module, reading strictly, finds malformed or of
    another width than the header: (its line in the file, the problem)."""
    with source.text_path.open(encoding="utf-8-sig", newline="") as fh, field_limit():
        for _ in range(dialect.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=dialect.delimiter, skipinitialspace=True, strict=True)
        start = 1
        try:
            next(reader)  # the header
            while True:
                start = reader.line_num + 1
                record = next(reader)
                if record and len(record) != width:
                    line = start + dialect.skip_lines + source.line_offset
                    return line, _count_problem(len(record), width)
        except StopIteration:
            return None
        except csv.Error as err:
            return start + dialect.skip_lines + source.line_offset, _quote_problem(str(err))


def _count_problem(found: int, width: int) -> str:
    return (
        f"{found} field{'s' if found != 1 else ''} where the header has {width} "
        "(a stray delimiter, an unquoted value, or a missing field?)"
    )


def _quote_problem(text: str) -> str:
    if "unexpected end of data" in text or "unterminated quote" in text:
        return 'a quoted field is never closed (a " without its closing ")'
    if "expected after" in text:
        return 'text after a closing quote (quote the whole field and double the " inside)'
    return f"malformed quoting ({text})"


def _duckdb_problem(err: duckdb.Error, source: Source, dialect: Dialect, path: Path) -> CsvError:
    """DuckDB's CSV error as one line naming the file line."""
    text = str(err)
    line_match, count_match = _DUCK_LINE.search(text), _DUCK_COUNT.search(text)
    if count_match:
        problem = _count_problem(int(count_match[2]), int(count_match[1]))
    elif "quote" in text:
        problem = _quote_problem(text)
    elif "Maximum line size" in text:
        problem = f"a record is longer than {_MAX_RECORD_BYTES >> 20} MiB (an unclosed quote?)"
    else:
        problem = text.splitlines()[0].removeprefix("Invalid Input Error: ")
    line = _physical_line(source, dialect, int(line_match[1])) if line_match else None
    return CsvError(f"{path}: {f'line {line}: ' if line else ''}{problem}")


def _normalise_line_ends(source: Source, dialect: Dialect, path: Path) -> None:
    """Rewrite the text with CRLF line ends throughout (Python's csv module reads mixed ones);
    quoted values keep their own line breaks. Only for files DuckDB cannot read as they are."""
    target = source.workdir / "normalised.csv"
    try:
        with (
            source.text_path.open(encoding="utf-8-sig", newline="") as src,
            target.open("w", encoding="utf-8", newline="") as dst,
            field_limit(),
        ):
            writer = csv.writer(dst, delimiter=dialect.delimiter, lineterminator="\r\n")
            writer.writerows(csv.reader(src, delimiter=dialect.delimiter))
    except csv.Error as err:
        raise CsvError(f"{path}: cannot be read as CSV ({err})") from None
    source.text_path = target
    source.mixed_line_ends = True
    source.notes.append("line ends normalised before reading (the file mixes CRLF and LF)")


def _cut_leading_blank_lines(source: Source, dialect: Dialect) -> Dialect:
    """Point `source` at a copy of its text without the leading blank lines."""
    target = source.workdir / "body.csv"
    with (
        source.text_path.open(encoding="utf-8-sig", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        for _ in range(dialect.skip_lines):
            src.readline()
        while chunk := src.read(CHUNK):
            dst.write(chunk)
    source.text_path = target
    source.line_offset += dialect.skip_lines
    return replace(dialect, skip_lines=0)


def _count_rows(con: duckdb.DuckDBPyConnection, width: int) -> int:
    if width == 1:  # DuckDB reads a blank line of a one-column file as a NULL field
        con.execute("delete from src where c0 is null")
    return int(con.execute("select count(*) from src").fetchall()[0][0])


def _has_data_records(source: Source, dialect: Dialect, width: int) -> bool:
    """True when Python's csv module finds a data record after the header (in a one-column
    file, a non-blank one)."""
    with source.text_path.open(encoding="utf-8-sig", newline="") as fh, field_limit():
        for _ in range(dialect.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=dialect.delimiter, skipinitialspace=True)
        try:
            next(reader)  # the header
            return any(record and (width > 1 or record[0].strip()) for record in reader)
        except (StopIteration, csv.Error):
            return False


def _load_text(
    con: duckdb.DuckDBPyConnection, source: Source, dialect: Dialect, width: int, path: Path
) -> int:
    """Read the file into table `src` of `con`, every field as text (`c0`..); its row count."""
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"

    def reader(source: Source) -> str:
        return (
            f"read_csv({sql_literal(str(source.text_path))}, auto_detect = false, "
            f"columns = {columns}, delim = {sql_literal(dialect.delimiter)}, quote = '\"', "
            f"escape = '\"', header = true, skip = {dialect.skip_lines}, strict_mode = true, "
            f"null_padding = false, encoding = 'utf-8', max_line_size = {_MAX_RECORD_BYTES})"
        )

    try:
        con.execute(f"create table src as select * from {reader(source)}")
    except duckdb.Error:
        # Name the first bad line as Python's csv module sees it. When it sees none, the file is
        # fine but DuckDB's strict reader is not (it fails on mixed CRLF and LF line ends):
        # rewrite the text with one kind of line end and read that.
        found = _first_bad_record(source, dialect, width)
        if found:
            raise CsvError(f"{path}: line {found[0]}: {found[1]}") from None
        _normalise_line_ends(source, dialect, path)
        try:
            con.execute(f"create table src as select * from {reader(source)}")
        except duckdb.Error as err:
            raise _duckdb_problem(err, source, dialect, path) from None
    rows = _count_rows(con, width)
    if rows == 0 and not source.mixed_line_ends and _has_data_records(source, dialect, width):
        # DuckDB reads no rows at all, without an error, when blank lines before the header and
        # the header itself end differently (`\n\na,b\r\n1,2\r\n`): the same cure
        _normalise_line_ends(source, dialect, path)
        con.execute("drop table src")
        try:
            con.execute(f"create table src as select * from {reader(source)}")
        except duckdb.Error as err:
            raise _duckdb_problem(err, source, dialect, path) from None
        rows = _count_rows(con, width)
    return rows


def _parse_and_type(
    source: Source, dialect: Dialect, names: list[str], path: Path
) -> tuple[pa.Table, list[Column]]:
    width = len(names)
    if dialect.skip_lines:
        # DuckDB's `skip` miscounts blank lines whose line ends differ from the rest of the file
        # (it then reads no rows, or shifts a field): cut them off instead
        dialect = _cut_leading_blank_lines(source, dialect)
    with scratch() as con:
        if _load_text(con, source, dialect, width, path) == 0:
            raise EmptyCsvError(f"{path}: has a header but no data rows")
        types = infer_types(con, width)
        select = ", ".join(
            f"{cast_sql(f'c{i}', t.duck_type, t.has_markers)} as c{i}" for i, t in enumerate(types)
        )
        raw = con.sql(f"select {select} from src").to_arrow_table()
    arrays = [
        finish(data, t.duck_type, t.has_markers) for data, t in zip(raw.columns, types, strict=True)
    ]
    table = pa.table(arrays, names=names)
    cols = []
    for name, inferred, data in zip(names, types, table.columns, strict=True):
        duck_type, notes = inferred.duck_type, inferred.notes
        if duck_type == "DOUBLE" and (inf := pc.sum(pc.is_inf(data)).as_py()):
            notes = (*notes, f"{plural(inf, 'infinite value')}")
        cols.append(Column(name, duck_type, data.null_count, notes))
    return table, cols


def read_csv(path: str | Path) -> tuple[pa.Table, CsvInfo]:
    """Read a CSV file into an Arrow table with inferred column types; refuse what cannot be read.

    Raises `CsvError` (a `UserError`) for a missing, unreadable, empty, binary, header-only or
    ragged file and for duplicate column names.
    """
    start = time.perf_counter()
    path = Path(path)
    check_file(path)
    with utf8_source(path) as source:
        dialect = sniff(source, path)
        names, name_notes = column_names(dialect.header, path)
        table, columns = _parse_and_type(source, dialect, names, path)
    info = CsvInfo(
        path=path,
        delimiter=dialect.delimiter,
        encoding=source.encoding,
        line_ending="mixed" if source.mixed_line_ends else dialect.line_ending,
        rows=table.num_rows,
        columns=tuple(columns),
        seconds=time.perf_counter() - start,
        notes=tuple(source.notes + name_notes),
    )
    return table, info
