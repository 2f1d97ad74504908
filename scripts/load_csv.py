"""Land any tidy CSV as a warehouse table: `python -m scripts.load_csv FILE --table raw.NAME`.

The table lands in the warehouse (`WAREHOUSE_PATH`) so that `python -m ml.train --table raw.NAME
--target COL` can train on it. What the loader decides, so that nothing about the result is a
surprise:

Reading
- Encoding: UTF-8 (with or without a BOM) and UTF-16 with a BOM are read as such. A file that is
  not valid UTF-8 is read as Windows-1252 (cp1252, which is latin-1 plus the printable characters
  Windows puts in 0x80-0x9F); the summary says which. A file with NUL bytes, many control
  characters, runs of non-ASCII bytes that no Western text has (another legacy encoding, or
  binary data), or the signature of gzip/zip/Excel/Parquet is refused.
- Delimiter: sniffed among comma, semicolon, tab and pipe on the first 64 KiB: the one that gives
  the header and every row the same number of fields (more than one) wins; ties go in that order.
  Quotes are `"` and a quote inside a quoted field is doubled (RFC 4180); quoted fields may hold
  delimiters and line breaks. CRLF, LF and CR line ends are all read, mixed ones too. Blank
  lines are skipped, also in a one-column file (where a line of just `""` is skipped too).
- Every row must have as many fields as the header; the first one that does not is refused with
  its line number in the file (1 = the header line).

Column names
- Kept exactly as written (dots, spaces, parentheses, `$`, unicode), only trimmed of surrounding
  whitespace and a BOM; SQL always quotes them.
- An empty name (the index column pandas and R write, or a trailing delimiter) becomes
  `column_N`, N its 1-based position, and the summary says so: refusing would only send the user
  to an editor for a name they never chose.
- Duplicate names are refused, compared case-insensitively, because SQL column names are.

Types, per column, over every row (not a sample)
- Missing: an empty or whitespace-only field and `NA`, `N/A`, `#N/A`, `NaN`, `NULL` (any case)
  are NULL in every column. `None`, `-` and `?` are values.
- BIGINT when every value is an integer (`-12`, `0`), with no leading zero and no `+` sign: `0001`,
  zip codes and `+49...` phone numbers stay text, so no zero or sign is lost. A column of integers
  some beyond the BIGINT range stays text (such long digit strings are identifiers: account and
  card numbers), never an error and never a rounded number; among decimals they are DOUBLE.
- DOUBLE when every value is a decimal number (`1.5`, `.5`, `1e-3`, integers too) or an infinity
  (`inf`, `-inf`, `Infinity`, any case). Infinities are kept as +/-Infinity (they are what the
  file says; the summary counts them so that a model step can decide), not turned into NULL.
  A number that overflows a double (`1e400`) is an infinity too.
- BOOLEAN only when every value is `true` or `false` (any case). `Y`/`N`, `Yes`/`No` stay text
  (they are labels, and a model treats a two-valued text column as a class anyway); `0`/`1` stay
  BIGINT.
- DATE for ISO dates (`2024-01-31`), TIMESTAMP for ISO date-times (`2024-01-31 08:15[:00[.123]]`,
  `T` allowed) mixed with ISO dates, TIMESTAMP WITH TIME ZONE when every value carries an offset
  (`Z`, `+02:00`). Other date formats (`31/01/2024`) are ambiguous and stay text.
- Everything else is VARCHAR, with the text exactly as in the file (numbers mixed with words,
  like `3+` in a Dependents column, keep the whole column as text). A column with no values at all
  is VARCHAR, all NULL. Decimal commas (`3,14`) and thousands separators stay text.

Writing
- `--table` must be `schema.name` of letters, digits and `_`. The project's own schemas (staging,
  marts, ml, sim, quality, main, DuckDB's system schemas and catalog names: temp, system, memory,
  warehouse_db) and the simulator's tables
  (raw.customers, raw.orders, raw.loans) are refused: dbt, training and the simulator own them.
  `raw` is the place for your data; any other schema of your own is allowed too.
- `--if-exists replace` (the default, so a load can be re-run) swaps the new table in atomically;
  `--if-exists fail` refuses when the table exists. A refused load writes nothing: the file is
  read and checked completely before the warehouse is opened, and a previous version of the table
  stays as it was.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import functools
import io
import operator
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ml import config
from ml.cli import ArgumentParser, run
from ml.errors import UserError
from ml.warehouse import CATALOG, parse_relation, session, write_table


class CsvError(UserError):
    """The file cannot be loaded as a CSV table as it is (missing, binary, ragged, empty...)."""


class EmptyCsvError(CsvError):
    """The file has no data rows: it is empty, blank, or a header alone."""


#: Schemas that dbt, training, the quality gate or DuckDB itself own; a CSV never lands there.
MANAGED_SCHEMAS = frozenset(
    {"staging", "marts", "ml", "sim", "quality", "main", "information_schema", "pg_catalog"}
)
#: Names DuckDB gives its catalogs (the warehouse file is attached as CATALOG): a schema of that
#: name would be ambiguous in SQL, so a CSV never lands there either.
RESERVED_SCHEMAS = frozenset({"temp", "system", "memory", CATALOG})
#: Tables the simulator writes and dbt reads as sources; a CSV must not replace them.
PROTECTED_TABLES = frozenset({"raw.customers", "raw.orders", "raw.loans"})
#: Delimiters the sniffer tries, in order of preference on a tie.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
#: Field texts that mean "missing" in every column (compared trimmed and case-insensitively).
MISSING_MARKERS = ("", "na", "n/a", "#n/a", "nan", "null")
IF_EXISTS = ("replace", "fail")

_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")
_CHUNK = 1 << 20
_SAMPLE_CHARS = 1 << 16
_MAX_SAMPLE_CHARS = 1 << 24
# Control bytes that have no business in a text file (NUL is checked on its own).
_CONTROL_BYTES = bytes(b for b in range(1, 32) if b not in b"\t\n\r\x0b\x0c\x1a") + b"\x7f"
_MAX_CONTROL_SHARE = 0.01
_SIGNATURES = {
    b"\x1f\x8b": "a gzip archive: decompress it first",
    b"PK\x03\x04": "a zip archive or an Excel .xlsx workbook: export the sheet as CSV",
    b"\xd0\xcf\x11\xe0": "an Excel .xls workbook: export the sheet as CSV",
    b"PAR1": "a Parquet file, not a CSV",
    b"BZh": "a bzip2 archive: decompress it first",
    b"\xfd7zXZ": "an xz archive: decompress it first",
}
_HIGH_BYTES = bytes(range(0x80, 0x100))
_HIGH_RUNS = re.compile(rb"[\x80-\xff]{2,}")
_C1_BYTES = re.compile(rb"[\x80-\x9f]")  # where cp1252 and latin-1 differ
# cp1252 with its five undefined bytes read as latin-1, so that any byte string decodes.
_CP1252_TABLE = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))
# Regular expressions (RE2, full match) for the text of one field; DuckDB's casts ignore the
# surrounding blanks these allow.
_B = r"[ \t\r\n]*"
_MISSING_RE = _B + "((?i)" + "|".join(re.escape(m) for m in MISSING_MARKERS if m) + ")?" + _B
_EXP = r"([eE][+-]?[0-9]+)"
_SMALL_INT_RE = _B + r"-?(0|[1-9][0-9]{0,17})" + _B  # 18 digits always fit a BIGINT
_LONG_INT_RE = _B + r"-?[1-9][0-9]{18,}" + _B
_LEADING_ZERO_RE = _B + r"-?0[0-9]+(\.[0-9]*)?" + _EXP + "?" + _B
# A decimal point or an exponent, no leading zero: exclusive of the integer patterns above.
_DECIMAL_RE = _B + rf"-?(((0|[1-9][0-9]*)\.[0-9]*|\.[0-9]+){_EXP}?|(0|[1-9][0-9]*){_EXP})" + _B
_INF_RE = _B + r"-?(?i)(inf|infinity)" + _B
_BOOL_RE = _B + r"(?i)(true|false)" + _B
_DATE_RE = _B + r"[0-9]{4}-[0-9]{2}-[0-9]{2}" + _B
_DATETIME_RE = _B + r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
_ZONED_RE = _DATETIME_RE + r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)" + _B
_DATETIME_RE += _B
#: The longest record DuckDB reads (its default, 2 MB, is short for text with long documents).
_MAX_RECORD_BYTES = 1 << 26
#: Rows read to guess each column's kind before one pass over all rows checks the guess.
_SAMPLE_ROWS = 10_000

# Kinds of a single field, as bit flags OR-ed over a column.
_INT, _LEADING_ZERO, _HUGE_INT, _FLOAT, _INF, _BOOL, _DATE_K, _DATETIME_K, _ZONED, _TEXT = (
    1 << k for k in range(10)
)


@dataclass(frozen=True)
class Column:
    """One landed column: its name, DuckDB type, how many values are missing, and why (notes)."""

    name: str
    type: str
    missing: int
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CsvInfo:
    """What `read_csv` found in a file, and where `load_csv` put it."""

    path: Path
    delimiter: str
    encoding: str
    line_ending: str
    rows: int
    columns: tuple[Column, ...]
    seconds: float
    notes: tuple[str, ...] = ()
    table: str | None = None
    replaced: bool = False

    @property
    def delimiter_name(self) -> str:
        """`comma`, `semicolon`, `tab` or `pipe`."""
        return DELIMITERS.get(self.delimiter, repr(self.delimiter))

    @property
    def types(self) -> dict[str, str]:
        """Column name -> DuckDB type."""
        return {c.name: c.type for c in self.columns}


@dataclass
class _Source:
    """The file as UTF-8 text DuckDB can read (the file itself, or a transcoded temporary copy)."""

    text_path: Path
    encoding: str
    workdir: Path
    notes: list[str] = field(default_factory=list)
    mixed_line_ends: bool = False
    line_offset: int = 0  # blank lines cut from the start of the file (for line numbers)


# --------------------------------------------------------------------------------------------
# Bytes: existence, binary, encoding


def _check_file(path: Path) -> None:
    try:
        if not path.exists():
            raise CsvError(f"{path}: no such file")
        if path.is_dir():
            raise CsvError(f"{path}: is a directory, not a CSV file")
        if not path.is_file():
            raise CsvError(f"{path}: is not a regular file")
    except OSError as err:  # a name too long, a folder on the way that cannot be searched
        raise CsvError(f"{path}: cannot be read ({err.strerror or err})") from None
    if not os.access(path, os.R_OK):
        raise CsvError(f"{path}: cannot be read (permission denied)")


def _open_bytes(path: Path) -> io.BufferedReader:
    try:
        return path.open("rb")
    except OSError as err:
        raise CsvError(f"{path}: cannot be read ({err.strerror})") from None


def _refuse_binary(path: Path, why: str) -> CsvError:
    return CsvError(f"{path}: does not look like a text CSV file ({why})")


def _scan_bytes(path: Path) -> tuple[str, int | None]:
    """The encoding of the file (`utf-8`, `utf-8-sig`, `utf-16`, else `cp1252`) and, for
    cp1252, the offset of its first byte that is not UTF-8; refuse empty and binary files."""
    with _open_bytes(path) as fh:
        head = fh.read(8)
        if not head.strip(b" \t\r\n"):
            rest = fh.read(1)
            if not rest:
                raise EmptyCsvError(f"{path}: the file is empty")
            fh.seek(0)
        for magic, what in _SIGNATURES.items():
            if head.startswith(magic):
                raise CsvError(f"{path}: is {what}")
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            return "utf-16", None
        fh.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        utf8, first_bad, offset, controls = True, None, 0, 0
        while chunk := fh.read(_CHUNK):
            if b"\x00" in chunk:
                raise _refuse_binary(path, f"NUL byte at offset {offset + chunk.index(0)}")
            controls += len(chunk) - len(chunk.translate(None, _CONTROL_BYTES))
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as err:
                    utf8, first_bad = False, offset + err.start
            offset += len(chunk)
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as err:
                utf8, first_bad = False, offset - len(err.object) + err.start
    if controls > _MAX_CONTROL_SHARE * offset:
        raise _refuse_binary(path, f"{controls:,} control characters in {offset:,} bytes")
    if utf8:
        return ("utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"), None
    return "cp1252", first_bad


def _transcode(path: Path, encoding: str, first_bad: int | None, target: Path) -> str:
    """Write `path` as UTF-8 to `target`; return the encoding's display name.

    A cp1252 file whose non-ASCII bytes mostly come in runs is refused: Western text has
    single accented letters between ASCII ones, while UTF-8 (a file mixing encodings), the
    other legacy encodings and binary data have runs.
    """
    utf16 = encoding == "utf-16"
    decoder = codecs.getincrementaldecoder("utf-16")()
    c1_seen, high, in_runs = False, 0, 0
    try:
        with _open_bytes(path) as src, target.open("w", encoding="utf-8", newline="") as dst:
            while True:
                chunk = src.read(_CHUNK)
                if utf16:
                    text = decoder.decode(chunk, final=not chunk)
                    if "\x00" in text:
                        raise _refuse_binary(path, "NUL character in UTF-16 text")
                else:
                    text = codecs.charmap_decode(chunk, "strict", _CP1252_TABLE)[0]
                    c1_seen = c1_seen or _C1_BYTES.search(chunk) is not None
                    high += len(chunk) - len(chunk.translate(None, _HIGH_BYTES))
                    in_runs += sum(map(len, _HIGH_RUNS.findall(chunk)))
                dst.write(text)
                if not chunk:
                    break
    except UnicodeDecodeError as err:
        raise CsvError(
            f"{path}: starts with a UTF-16 mark but is not valid UTF-16 ({err.reason})"
        ) from None
    if utf16:
        return "utf-16"
    if high >= 8 and in_runs > 0.5 * high:
        raise _refuse_binary(
            path,
            f"not UTF-8 (first bad byte at offset {first_bad}), nor latin-1/cp1252 text; "
            "save it as UTF-8",
        )
    return "cp1252" if c1_seen else "latin-1"


@contextlib.contextmanager
def _utf8_source(path: Path) -> Iterator[_Source]:
    """The file as UTF-8 under a plain temporary name (DuckDB treats `*?[` in paths as globs)."""
    encoding, first_bad = _scan_bytes(path)
    with tempfile.TemporaryDirectory(prefix="load_csv_") as tmp:
        text_path = Path(tmp) / "data.csv"
        notes: list[str] = []
        if encoding in ("utf-8", "utf-8-sig"):
            try:
                text_path.symlink_to(path.resolve())
            except OSError:
                text_path = path.resolve()
            label = "utf-8 with BOM" if encoding == "utf-8-sig" else "utf-8"
        else:
            label = _transcode(path, encoding, first_bad, text_path)
            if first_bad is not None:
                notes.append(f"not valid UTF-8 (first at byte {first_bad:,}): read as {label}")
        yield _Source(text_path, label, Path(tmp), notes)


# --------------------------------------------------------------------------------------------
# Text: dialect and header


def _records(text: str, delimiter: str) -> list[list[str]]:
    """The CSV records of `text` (blank lines dropped); the last one may be cut off."""
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quotechar='"',
        doublequote=True,
        skipinitialspace=True,
    )
    out: list[list[str]] = []
    with contextlib.suppress(csv.Error):
        for record in reader:
            if record:
                out.append(record)
    return out


@contextlib.contextmanager
def _field_limit() -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(1 << 30)
    try:
        yield
    finally:
        csv.field_size_limit(old)


_LEADING_BLANKS = re.compile(r"(?:[ \t]*(?:\r\n|\n|\r))*")


@dataclass(frozen=True)
class _Dialect:
    delimiter: str
    header: list[str]
    skip_lines: int
    line_ending: str


def _sniff(source: _Source, path: Path) -> _Dialect:
    """Delimiter, raw header fields, leading blank lines and line ending from the file's start."""
    size = _SAMPLE_CHARS
    while True:
        with source.text_path.open(encoding="utf-8-sig", newline="") as fh:
            sample = fh.read(size)
            truncated = fh.read(1) != ""
        blanks = _LEADING_BLANKS.match(sample)
        body = sample[blanks.end() if blanks else 0 :]
        if not truncated and not body.strip():
            raise EmptyCsvError(f"{path}: the file is empty (no header line)")
        with _field_limit():
            by_delim = {d: _records(body, d) for d in DELIMITERS}
        if truncated:
            by_delim = {d: r[:-1] for d, r in by_delim.items()}
        if (
            all(len(r) >= 2 for r in by_delim.values())
            or not truncated
            or size >= _MAX_SAMPLE_CHARS
        ):
            break
        size *= 4

    def score(d: str) -> tuple[bool, float, int]:
        recs = by_delim[d]
        if not recs:
            return (False, 0.0, 0)
        width, rows = len(recs[0]), [len(r) for r in recs[1:]]
        share = sum(w == width for w in rows) / len(rows) if rows else 1.0
        return (width > 1 and share == 1.0, share if width > 1 else 0.0, width)

    best = max(DELIMITERS, key=score)
    if score(best)[2] <= 1:  # one column: take a delimiter the file does not use
        best = next((d for d in DELIMITERS if d not in body), ",")
    records = by_delim[best]
    if not records:
        raise CsvError(f"{path}: cannot read a header line (an unclosed quote?)")
    skip = len(re.findall(r"\r\n|\n|\r", blanks.group(0))) if blanks else 0
    newline = re.search(r"\r\n|\n|\r", body)
    ending = {"\r\n": "CRLF", "\n": "LF", "\r": "CR"}[newline.group(0)] if newline else "none"
    return _Dialect(best, records[0], skip, ending)


def _column_names(fields: Sequence[str], path: Path) -> tuple[list[str], list[str]]:
    """Trimmed header names, `column_N` for empty ones; refuse duplicates."""
    names, notes, seen = [], [], {}
    for i, raw in enumerate(fields, start=1):
        name = raw.strip().strip("\ufeff").strip()
        if not name:
            name = f"column_{i}"
            notes.append(f"column {i} has no name in the header: named {name}")
        key = name.casefold()
        if key in seen:
            first = seen[key]
            same = "" if names[first - 1] == name else f" and {names[first - 1]!r}"
            raise CsvError(
                f"{path}: duplicate column name {name!r}{same} (columns {first} and {i}); "
                "column names must be unique, ignoring case"
            )
        seen[key] = i
        names.append(name)
    return names, notes


# --------------------------------------------------------------------------------------------
# Parsing and type inference in DuckDB


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_DUCK_LINE = re.compile(r"CSV Error on Line: (\d+)")
_DUCK_COUNT = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _physical_line(source: _Source, dialect: _Dialect, record_no: int) -> int | None:
    """The file line where record `record_no` starts (DuckDB counts records, header = 1,
    blank lines included); None when the file has fewer records."""
    with source.text_path.open(encoding="utf-8-sig", newline="") as fh, _field_limit():
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


def _first_bad_record(source: _Source, dialect: _Dialect, width: int) -> tuple[int, str] | None:
    """The first record that Python's csv module, reading strictly, finds malformed or of
    another width than the header: (its line in the file, the problem)."""
    with source.text_path.open(encoding="utf-8-sig", newline="") as fh, _field_limit():
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


def _duckdb_problem(err: duckdb.Error, source: _Source, dialect: _Dialect, path: Path) -> CsvError:
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


def _match(c: str, regex: str) -> str:
    return f"regexp_full_match({c}, {_literal(regex)})"


def _branches(c: str) -> dict[int, str]:
    """SQL `when` branches that give field `c` its kind flag. Their patterns are mutually
    exclusive, so they may be tried in any order (the most common kind first is cheapest: a
    CASE evaluates a branch only on the rows no earlier branch took)."""

    def cast_or(duck_type: str, ok: int, failed: int) -> str:
        return f"case when try_cast({c} as {duck_type}) is null then {failed} else {ok} end"

    return {
        _INT: f"when {_match(c, _SMALL_INT_RE)} then {_INT}",
        _LEADING_ZERO: f"when {_match(c, _LEADING_ZERO_RE)} then {_LEADING_ZERO}",
        _HUGE_INT: f"when {_match(c, _LONG_INT_RE)} then {cast_or('bigint', _INT, _HUGE_INT)}",
        _FLOAT: f"when {_match(c, _DECIMAL_RE)} then "
        f"case when isinf(try_cast({c} as double)) then {_INF} else {_FLOAT} end",
        _INF: f"when {_match(c, _INF_RE)} then {_INF}",
        _BOOL: f"when {_match(c, _BOOL_RE)} then {_BOOL}",
        _DATE_K: f"when {_match(c, _DATE_RE)} then {cast_or('date', _DATE_K, _TEXT)}",
        _DATETIME_K: f"when {_match(c, _DATETIME_RE)} then "
        f"{cast_or('timestamp', _DATETIME_K, _TEXT)}",
        _ZONED: f"when {_match(c, _ZONED_RE)} then {cast_or('timestamptz', _ZONED, _TEXT)}",
    }


def _kind_sql(c: str, first: Sequence[int] = ()) -> str:
    """SQL: the kind flag of field `c`: 0 when missing, `_TEXT` when no other kind fits; the
    branches of the kinds in `first` are tried first."""
    branches = _branches(c)
    order = [k for k in first if k in branches] + [k for k in branches if k not in first]
    body = "\n        ".join(branches[k] for k in order)
    return f"case when {_is_missing(c)} then 0\n        {body}\n        else {_TEXT} end"


def _is_missing(c: str) -> str:
    return f"({c} is null or {_match(c, _MISSING_RE)})"


def _decide(mask: int) -> tuple[str, tuple[str, ...]]:
    """DuckDB type and notes for a column whose non-missing fields have the OR-ed kinds `mask`."""
    numeric = _INT | _HUGE_INT | _FLOAT | _INF
    if mask == 0:
        return "VARCHAR", ("no values (all missing)",)
    if mask == _BOOL:
        return "BOOLEAN", ()
    if mask == _INT:
        return "BIGINT", ()
    if mask & _LEADING_ZERO and not mask & ~(numeric | _LEADING_ZERO):
        return "VARCHAR", ("numbers with leading zeros: kept as text",)
    if mask & _HUGE_INT and not mask & ~(_INT | _HUGE_INT):
        return "VARCHAR", ("integers beyond the BIGINT range: kept as text",)
    if not mask & ~numeric:
        return "DOUBLE", ()
    if not mask & ~_DATE_K:
        return "DATE", ()
    if not mask & ~(_DATE_K | _DATETIME_K):
        return "TIMESTAMP", ()
    if mask == _ZONED:
        return "TIMESTAMP WITH TIME ZONE", ()
    return "VARCHAR", ()


def _cast_sql(c: str, duck_type: str, has_markers: bool) -> str:
    """SQL: field `c` as `duck_type` (text and booleans are finished by `_finish`).

    The inference checked that every value that is not missing casts, so a cast that fails
    is a missing marker. (No CASE here: DuckDB sets one up per column, which is slow for
    thousands of columns.)
    """
    if duck_type in ("VARCHAR", "BOOLEAN"):
        return c
    return f"{'try_cast' if has_markers else 'cast'}({c} as {duck_type})"


def _finish(data: pa.ChunkedArray, duck_type: str, has_markers: bool) -> pa.ChunkedArray:
    """The column from `_cast_sql` with missing markers as nulls and booleans as booleans."""
    if duck_type == "BOOLEAN":
        word = pc.utf8_lower(pc.utf8_trim_whitespace(data))
        return pc.if_else(
            pc.equal(word, "true"), True, pc.if_else(pc.equal(word, "false"), False, None)
        )
    if not has_markers:
        return data
    if duck_type == "VARCHAR":
        missing = pc.match_substring_regex(data, f"^(?:{_MISSING_RE})$")
    elif duck_type == "DOUBLE":
        missing = pc.is_nan(data)  # `NaN` is a marker; a value is never NaN
    else:
        return data
    return pc.if_else(missing, pa.scalar(None, data.type), data)


@dataclass(frozen=True)
class _Inferred:
    duck_type: str
    notes: tuple[str, ...]
    has_markers: bool  # some non-null field is a missing marker or blank


def _infer_types(con: duckdb.DuckDBPyConnection, width: int) -> list[_Inferred]:
    """Type, notes and missing markers of every column `c0..` of `src`, over all rows.

    The fields are unpivoted into one long column (NULLs, the empty fields, drop out), so that
    one kind expression serves any number of columns. The first rows give each column's likely
    kinds; a column with text (or leading-zero codes) there is text whatever follows and only
    needs its missing markers found. The other columns get one pass over all rows, grouped by
    their likely kinds, which are tested first.
    """

    def by_column(columns: Sequence[int] | None, first: Sequence[int], aggs: str) -> list[tuple]:
        relation = (
            f"select * from src limit {_SAMPLE_ROWS}"
            if columns is None
            else f"select {', '.join(f'c{i}' for i in columns)} from src"
        )
        return con.execute(
            f"select col, {aggs} from (select col, v, {_kind_sql('v', first)} as k "
            f"from (unpivot ({relation}) on columns(*) into name col value v)) group by all"
        ).fetchall()

    counts: dict[int, dict[int, int]] = {i: {} for i in range(width)}
    for col, kind, n in by_column(None, (), "k, count(*)"):
        counts[int(col[1:])][int(kind)] = int(n)
    masks = dict.fromkeys(range(width), 0)  # 0 stays for a column without any value
    markers = dict.fromkeys(range(width), False)
    text: list[int] = []
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, seen in counts.items():
        mask = functools.reduce(operator.or_, seen, 0)
        if mask & (_TEXT | _LEADING_ZERO):
            masks[i] = mask
            text.append(i)
        else:
            first = tuple(sorted((k for k in seen if k), key=lambda k: -seen[k]))
            groups.setdefault(first, []).append(i)
    for first, columns in groups.items():
        for col, mask, blank in by_column(columns, first, "bit_or(k), bool_or(k = 0)"):
            masks[int(col[1:])], markers[int(col[1:])] = int(mask or 0), bool(blank)
    if text:
        for col, blank in by_column(text, (), f"bool_or({_is_missing('v')})"):
            markers[int(col[1:])] = bool(blank)
    return [_Inferred(*_decide(masks[i]), markers[i]) for i in range(width)]


def _normalise_line_ends(source: _Source, dialect: _Dialect, path: Path) -> None:
    """Rewrite the text with CRLF line ends throughout (Python's csv module reads mixed ones);
    quoted values keep their own line breaks. Only for files DuckDB cannot read as they are."""
    target = source.workdir / "normalised.csv"
    try:
        with (
            source.text_path.open(encoding="utf-8-sig", newline="") as src,
            target.open("w", encoding="utf-8", newline="") as dst,
            _field_limit(),
        ):
            writer = csv.writer(dst, delimiter=dialect.delimiter, lineterminator="\r\n")
            writer.writerows(csv.reader(src, delimiter=dialect.delimiter))
    except csv.Error as err:
        raise CsvError(f"{path}: cannot be read as CSV ({err})") from None
    source.text_path = target
    source.mixed_line_ends = True
    source.notes.append("line ends normalised before reading (the file mixes CRLF and LF)")


def _cut_leading_blank_lines(source: _Source, dialect: _Dialect) -> _Dialect:
    """Point `source` at a copy of its text without the leading blank lines."""
    target = source.workdir / "body.csv"
    with (
        source.text_path.open(encoding="utf-8-sig", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        for _ in range(dialect.skip_lines):
            src.readline()
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
    source.text_path = target
    source.line_offset += dialect.skip_lines
    return replace(dialect, skip_lines=0)


def _count_rows(con: duckdb.DuckDBPyConnection, width: int) -> int:
    if width == 1:  # DuckDB reads a blank line of a one-column file as a NULL field
        con.execute("delete from src where c0 is null")
    return int(con.execute("select count(*) from src").fetchall()[0][0])


def _has_data_records(source: _Source, dialect: _Dialect, width: int) -> bool:
    """True when Python's csv module finds a data record after the header (in a one-column
    file, a non-blank one)."""
    with source.text_path.open(encoding="utf-8-sig", newline="") as fh, _field_limit():
        for _ in range(dialect.skip_lines):
            fh.readline()
        reader = csv.reader(fh, delimiter=dialect.delimiter, skipinitialspace=True)
        try:
            next(reader)  # the header
            return any(record and (width > 1 or record[0].strip()) for record in reader)
        except (StopIteration, csv.Error):
            return False


def _parse_and_type(
    source: _Source, dialect: _Dialect, names: list[str], path: Path
) -> tuple[pa.Table, list[Column]]:
    width = len(names)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width)) + "}"
    if dialect.skip_lines:
        # DuckDB's `skip` miscounts blank lines whose line ends differ from the rest of the file
        # (it then reads no rows, or shifts a field): cut them off instead
        dialect = _cut_leading_blank_lines(source, dialect)

    def reader(source: _Source) -> str:
        return (
            f"read_csv({_literal(str(source.text_path))}, auto_detect = false, "
            f"columns = {columns}, delim = {_literal(dialect.delimiter)}, quote = '\"', "
            f"escape = '\"', header = true, skip = {dialect.skip_lines}, strict_mode = true, "
            f"null_padding = false, encoding = 'utf-8', max_line_size = {_MAX_RECORD_BYTES})"
        )

    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"create table src as select * from {reader(source)}")
        except duckdb.Error:
            # Name the first bad line as Python's csv module sees it. When it sees none, the
            # file is fine but DuckDB's strict reader is not (it fails on mixed CRLF and LF
            # line ends): rewrite the text with one kind of line end and read that.
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
            # DuckDB reads no rows at all, without an error, when blank lines before the header
            # and the header itself end differently (`\n\na,b\r\n1,2\r\n`): the same cure
            _normalise_line_ends(source, dialect, path)
            con.execute("drop table src")
            try:
                con.execute(f"create table src as select * from {reader(source)}")
            except duckdb.Error as err:
                raise _duckdb_problem(err, source, dialect, path) from None
            rows = _count_rows(con, width)
        if rows == 0:
            raise EmptyCsvError(f"{path}: has a header but no data rows")
        types = _infer_types(con, width)
        select = ", ".join(
            f"{_cast_sql(f'c{i}', t.duck_type, t.has_markers)} as c{i}" for i, t in enumerate(types)
        )
        raw = con.sql(f"select {select} from src").to_arrow_table()
    finally:
        con.close()
    arrays = [
        _finish(data, t.duck_type, t.has_markers)
        for data, t in zip(raw.columns, types, strict=True)
    ]
    table = pa.table(arrays, names=names)
    cols = []
    for name, inferred, data in zip(names, types, table.columns, strict=True):
        duck_type, notes = inferred.duck_type, inferred.notes
        if duck_type == "DOUBLE" and (inf := pc.sum(pc.is_inf(data)).as_py()):
            notes = (*notes, f"{_plural(inf, 'infinite value')}")
        cols.append(Column(name, duck_type, data.null_count, notes))
    return table, cols


# --------------------------------------------------------------------------------------------
# Public API


def read_csv(path: str | Path) -> tuple[pa.Table, CsvInfo]:
    """Read a CSV file into an Arrow table with inferred column types; refuse what cannot be read.

    Raises `CsvError` (a `UserError`) for a missing, unreadable, empty, binary, header-only or
    ragged file and for duplicate column names.
    """
    start = time.perf_counter()
    path = Path(path)
    _check_file(path)
    with _utf8_source(path) as source:
        dialect = _sniff(source, path)
        names, name_notes = _column_names(dialect.header, path)
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


def check_table_name(table: str) -> tuple[str, str]:
    """Validate `--table`: `schema.name` of plain identifiers, outside the managed schemas."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table.strip()):
        raise UserError(
            f"invalid table name {table!r}: use schema.name (e.g. raw.my_data) "
            "with letters, digits and _ only"
        )
    schema, name = parse_relation(table)
    if schema.lower() in MANAGED_SCHEMAS:
        raise UserError(
            f"refusing to write into schema {schema!r}: the project manages it "
            f"({', '.join(sorted(MANAGED_SCHEMAS - {'information_schema', 'pg_catalog'}))}); "
            "load into raw (e.g. raw.my_data) or a schema of your own"
        )
    if schema.lower() in RESERVED_SCHEMAS:
        raise UserError(
            f"refusing to write into schema {schema!r}: DuckDB uses that name for a catalog; "
            "load into raw (e.g. raw.my_data) or a schema of your own"
        )
    if f"{schema}.{name}".lower() in PROTECTED_TABLES:
        raise UserError(
            f"refusing to replace {schema}.{name}: the simulator writes it and dbt reads it; "
            f"choose another name, e.g. raw.my_{name.lower()}"
        )
    return schema, name


def _existing(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> str | None:
    """`BASE TABLE`, `VIEW` or None for `schema.name` (matched case-insensitively, as DuckDB does)."""
    rows = con.execute(
        "select table_type from information_schema.tables "
        "where table_catalog = current_database() "
        "and lower(table_schema) = lower(?) and lower(table_name) = lower(?)",
        [schema, name],
    ).fetchall()
    return str(rows[0][0]) if rows else None


def load_csv(
    path: str | Path,
    table: str,
    if_exists: str = "replace",
    warehouse: str | Path | None = None,
) -> CsvInfo:
    """Read `path` and write it to `table` (`schema.name`) in the warehouse, atomically.

    `if_exists` is `replace` (swap the new table in) or `fail` (refuse when the table exists).
    `warehouse` defaults to `WAREHOUSE_PATH`. Nothing is written when anything is refused.
    """
    if if_exists not in IF_EXISTS:
        raise UserError(f"--if-exists must be one of {', '.join(IF_EXISTS)}, got {if_exists!r}")
    schema, name = check_table_name(table)
    relation = f"{schema}.{name}"
    data, info = read_csv(path)
    start = time.perf_counter()
    with session(warehouse) as con:
        kind = _existing(con, schema, name)
        if kind == "VIEW":
            raise UserError(
                f"{relation} is a view in the warehouse, not a table: refusing to replace it"
            )
        if kind and if_exists == "fail":
            raise UserError(
                f"table {relation} already exists (--if-exists fail); "
                "use --if-exists replace to overwrite it"
            )
        try:
            write_table(con, data, relation)
        except duckdb.Error as err:  # rolled back: the warehouse is as it was
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"cannot write {relation}: {first}") from None
    return replace(
        info,
        table=relation,
        replaced=kind is not None,
        seconds=info.seconds + time.perf_counter() - start,
    )


# --------------------------------------------------------------------------------------------
# CLI


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def summary(info: CsvInfo) -> str:
    """The few lines the CLI prints after a load."""
    verb = "replaced" if info.replaced else "created"
    lines = [
        f"{verb} {info.table} from {info.path}: {_plural(info.rows, 'row')}, "
        f"{_plural(len(info.columns), 'column')} in {info.seconds:.1f}s",
        f"  {info.delimiter_name}-delimited, {info.encoding}, {info.line_ending} line ends",
    ]
    lines += [f"  note: {n}" for n in info.notes]
    width = min(max(len(c.name) for c in info.columns), 40)
    for c in info.columns:
        extra = [f"{c.missing:,} missing"] if c.missing and c.missing < info.rows else []
        extra += list(c.notes)
        tail = f"  ({'; '.join(extra)})" if extra else ""
        lines.append(f"  {c.name:<{width}}  {c.type}{tail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: load a CSV into the warehouse and print a summary."""
    parser = ArgumentParser(prog="python -m scripts.load_csv", description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="the CSV file (delimiter and encoding are sniffed)")
    parser.add_argument(
        "--table", required=True, help="where to land it: schema.name, e.g. raw.my_data"
    )
    parser.add_argument(
        "--if-exists",
        choices=IF_EXISTS,
        default="replace",
        help="replace the table atomically (default) or fail when it exists",
    )
    args = parser.parse_args(argv)
    info = load_csv(args.file, args.table, args.if_exists)
    print(summary(info))
    print(f"  into {config.warehouse_path()}")
    return 0


if __name__ == "__main__":
    run(main, "scripts.load_csv")
