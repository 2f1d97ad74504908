"""The bytes of a CSV file: does it exist, is it text, and which encoding; then the file as UTF-8.

UTF-8 (with or without a BOM) and UTF-16 with a BOM are read as such. A file that is not valid
UTF-8 is read as Windows-1252 (cp1252, latin-1 plus the printable characters Windows puts in
0x80-0x9F). A file with NUL bytes, many control characters, runs of non-ASCII bytes that no
Western text has (another legacy encoding, or binary data), or the signature of
gzip/zip/Excel/Parquet is refused.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ml.ingestion.csv.errors import CsvError, EmptyCsvError

#: Bytes read at a time.
CHUNK = 1 << 20
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


@dataclass
class Source:
    """The file as UTF-8 text DuckDB can read (the file itself, or a transcoded temporary copy)."""

    text_path: Path
    encoding: str
    workdir: Path
    notes: list[str] = field(default_factory=list)
    mixed_line_ends: bool = False
    line_offset: int = 0  # blank lines cut from the start of the file (for line numbers)


def check_file(path: Path) -> None:
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
        while chunk := fh.read(CHUNK):
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
                chunk = src.read(CHUNK)
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
def utf8_source(path: Path) -> Iterator[Source]:
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
        yield Source(text_path, label, Path(tmp), notes)
