"""Land any tidy CSV as a warehouse table: `python -m scripts.load_csv FILE --table raw.NAME`.

The table lands in the warehouse (`WAREHOUSE_PATH`) so that `python -m ml.train --table raw.NAME
--target COL` can train on it. How the file is read, typed and landed: `ml.ingestion.csv`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ml.core import config
from ml.core.cli import ArgumentParser, run
from ml.ingestion.csv import IF_EXISTS, load_csv, summary


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
