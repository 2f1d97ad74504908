"""What `read_csv` found in a file and `load_csv` did with it, and the summary printed after."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml.core.text import plural

#: Delimiters the sniffer tries, in order of preference on a tie.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


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


def summary(info: CsvInfo) -> str:
    """The few lines the CLI prints after a load."""
    verb = "replaced" if info.replaced else "created"
    lines = [
        f"{verb} {info.table} from {info.path}: {plural(info.rows, 'row')}, "
        f"{plural(len(info.columns), 'column')} in {info.seconds:.1f}s",
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
