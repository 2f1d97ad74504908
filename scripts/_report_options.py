"""The command-line options the report commands share: where the page goes, how many rows it
draws, the seed of its samples, and whether its plots are embedded or written as PNG files."""

from __future__ import annotations

from pathlib import Path

from ml.core.cli import ArgumentParser, non_negative_int, positive_int
from ml.core.config import PROJECT_ROOT


def report_parser(prog: str, doc: str, output: Path, holds: str) -> ArgumentParser:
    """A parser described by the first line of `doc`, with `--output DIR`: the folder (default
    `output`) for `holds`."""
    parser = ArgumentParser(prog=prog, description=doc.split("\n")[0])
    where = output.relative_to(PROJECT_ROOT).as_posix()
    parser.add_argument(
        "--output",
        type=Path,
        default=output,
        metavar="DIR",
        help=f"folder for {holds} (default: {where} in the repository)",
    )
    return parser


def add_limit(
    parser: ArgumentParser, flag: str, default: int, what: str, *, zero: str = ""
) -> None:
    """A count option `flag N` (`what` it counts); 0 is allowed when `zero` says what it means."""
    parser.add_argument(
        flag,
        type=non_negative_int if zero else positive_int,
        default=default,
        metavar="N",
        help=f"{what}{f', 0: {zero}' if zero else ''} (default {default:,})",
    )


def add_drawing_options(
    parser: ArgumentParser, seed: int, seeds: str, figures: str = "DIR/figures/"
) -> None:
    """`--seed` (default `seed`, the seed of `seeds`) and `--png-files` (into `figures`)."""
    parser.add_argument(
        "--seed", type=non_negative_int, default=seed, help=f"seed of {seeds} (default {seed})"
    )
    parser.add_argument(
        "--png-files",
        action="store_true",
        help=f"write the plots as PNG files in {figures} instead of embedding them",
    )
