"""The text of a CSV file: its delimiter, header, leading blank lines and line ending.

The delimiter is sniffed among comma, semicolon, tab and pipe on the first 64 KiB: the one that
gives the header and every row the same number of fields (more than one) wins; ties go in that
order. Header names are kept exactly as written, only trimmed; an empty one becomes `column_N`;
duplicates (compared case-insensitively, as SQL compares names) are refused.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ml.ingestion.csv.encoding import Source
from ml.ingestion.csv.errors import CsvError, EmptyCsvError
from ml.ingestion.csv.info import DELIMITERS

_SAMPLE_CHARS = 1 << 16
_MAX_SAMPLE_CHARS = 1 << 24


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
def field_limit() -> Iterator[None]:
    old = csv.field_size_limit()
    csv.field_size_limit(1 << 30)
    try:
        yield
    finally:
        csv.field_size_limit(old)


_LEADING_BLANKS = re.compile(r"(?:[ \t]*(?:\r\n|\n|\r))*")


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    header: list[str]
    skip_lines: int
    line_ending: str


def sniff(source: Source, path: Path) -> Dialect:
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
        with field_limit():
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
    return Dialect(best, records[0], skip, ending)


def column_names(fields: Sequence[str], path: Path) -> tuple[list[str], list[str]]:
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
